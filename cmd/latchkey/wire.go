package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/latchkeyid/latchkey/internal/config"
	"github.com/latchkeyid/latchkey/internal/ratelimit"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/broker/keys"
	"github.com/latchkeyid/latchkey/broker/token"
	"github.com/latchkeyid/latchkey/internal/httpclient"
	"github.com/latchkeyid/latchkey/providers/local"
	"github.com/latchkeyid/latchkey/session"
	"github.com/latchkeyid/latchkey/storage"
)

// localAccounts adapts the durable store to the local connector's
// Accounts interface.
type localAccounts struct{ db storage.Durable }

func (l localAccounts) AccountByUsername(ctx context.Context, username string) (local.Account, error) {
	u, err := l.db.GetUserByUsername(ctx, username)
	if errors.Is(err, storage.ErrNotFound) {
		return local.Account{}, local.ErrNoAccount
	}
	if err != nil {
		return local.Account{}, fmt.Errorf("load user: %w", err)
	}
	return local.Account{
		ID: u.ID, Username: u.Username, Email: u.Email, EmailVerified: u.EmailVerified,
		Name: u.Name, Groups: u.Groups, PasswordHash: u.PasswordHash, Disabled: u.Disabled,
	}, nil
}

// newBroker builds the OIDC core over the app's stores and keys.
func (a *app) newBroker(km *keys.Manager, hasher *local.Hasher, conns *broker.Connectors) (*broker.Broker, error) {
	t := a.cfg.Tokens
	issuer, err := token.New(token.Options{
		Issuer: a.cfg.Issuer, Signer: km, IDTokenTTL: t.IDTokenTTL, AccessTokenTTL: t.AccessTokenTTL, Clock: a.clock,
	})
	if err != nil {
		return nil, fmt.Errorf("token issuer: %w", err)
	}
	// One refresh successor key for every replica, derived from the first
	// key-encryption key (which every replica has). Putting a new key
	// first changes it: refresh tokens stay valid, but a refresh inside
	// the grace window on a replica with the other key is refused.
	refreshKey, err := broker.DeriveRefreshKey(a.cfg.Keys.EncryptionKeys[0].Key.Reveal())
	if err != nil {
		return nil, fmt.Errorf("keys.encryptionKeys[0]: %w", err)
	}
	o := a.cfg.Outbound
	limits, err := a.brokerLimits()
	if err != nil {
		return nil, err
	}
	mfaOpts, err := mfaOptions(a.cfg, a.keyring, a.db, a.clock)
	if err != nil {
		return nil, err
	}
	if err := a.addOTPFactors(mfaOpts); err != nil { // notify.go
		return nil, err
	}
	accts, err := a.accountOptions(hasher) // notify.go
	if err != nil {
		return nil, err
	}
	return broker.New(broker.Options{
		Limits:             limits,
		Federation:         broker.Federation{Connectors: conns, Store: a.db},
		MFA:                mfaOpts,
		Accounts:           accts,
		Issuer:             a.cfg.Issuer,
		Store:              a.db,
		Ephemeral:          a.eph,
		Sessions:           session.NewStore(a.eph, session.Options{Clock: a.clock}),
		Tokens:             issuer,
		Password:           local.New(localAccounts{a.db}, hasher, a.log),
		AuthRequestTTL:     t.AuthRequestTTL,
		CodeTTL:            t.CodeTTL,
		AccessTokenTTL:     t.AccessTokenTTL,
		RefreshKey:         refreshKey,
		RefreshGraceWindow: t.RefreshGraceWindow,
		RefreshIdleTTL:     t.RefreshIdleTTL,
		RefreshAbsoluteTTL: t.RefreshAbsoluteTTL,
		ClientCacheTTL:     broker.DefaultClientCacheTTL,
		BatchTokenEvents:   true,
		HTTPClient: httpclient.New(httpclient.Options{
			Timeout: o.Timeout, MaxBodyBytes: o.MaxBodyBytes.Int64(), AllowedNetworks: o.AllowedNetworks, Logger: a.log,
		}),
		Clock:  a.clock,
		Logger: a.log,
	})
}

// tokenLimitBatch is how many events of one key a fail-open rate limit
// counts in process before adding them to the shared store.
const tokenLimitBatch = 32

// brokerLimits builds the rate limits and the lockout from limits.* over
// the ephemeral store, so every replica shares them.
func (a *app) brokerLimits() (broker.Limits, error) {
	l := a.cfg.Limits
	rule := func(name string, r config.LimitRule) ratelimit.Rule {
		return ratelimit.Rule{Name: name, Limit: r.Limit, Window: r.Window, FailOpen: r.FailOpen}
	}
	rules := ratelimit.Rules{
		LoginIP:           rule(ratelimit.NameLoginIP, l.LoginPerIP),
		LoginAccount:      rule(ratelimit.NameLoginAccount, l.LoginPerAccount),
		FactorAccount:     rule(ratelimit.NameFactorAccount, l.FactorPerAccount),
		TokenClient:       rule(ratelimit.NameTokenClient, l.TokenPerClient),
		RecoveryAccount:   rule(ratelimit.NameRecoveryAccount, l.RecoveryPerAccount),
		RegistrationIP:    rule(ratelimit.NameRegistrationIP, l.RegistrationPerIP),
		EnrollmentAccount: rule(ratelimit.NameEnrollmentAccount, l.EnrollmentPerAccount),
		OTPSendAccount:    rule(ratelimit.NameOTPSendAccount, l.OTPSendPerAccount),
		RecoveryIP:        rule(ratelimit.NameRecoveryIP, l.RecoveryPerIP),
		// registration.address
		RegistrationAddress: rule(ratelimit.NameRegistrationAddress, l.RegistrationPerAddress),
	}
	if err := rules.Validate(); err != nil {
		return broker.Limits{}, fmt.Errorf("limits: %w", err)
	}
	opts := ratelimit.Options{Clock: a.clock, Logger: a.log}
	// Fail-open rules (the token endpoint's) count in batches
	// (internal/ratelimit/batch.go): one store write per tokenLimitBatch
	// grants of a busy client instead of one per grant.
	batched := opts
	batched.Batch = tokenLimitBatch
	out := broker.Limits{Limiter: ratelimit.New(a.eph, batched), Rules: rules}
	if l.Lockout.Threshold > 0 {
		lo, err := ratelimit.NewLockout(a.eph, ratelimit.LockoutPolicy{
			Threshold: l.Lockout.Threshold, Base: l.Lockout.BaseDelay, Max: l.Lockout.MaxDelay, QuietPeriod: l.Lockout.QuietPeriod,
		}, opts)
		if err != nil {
			return broker.Limits{}, fmt.Errorf("limits.lockout: %w", err)
		}
		out.Lockout = lo
	}
	return out, nil
}
