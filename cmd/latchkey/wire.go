package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/broker/keys"
	"github.com/latchkeyid/latchkey/broker/token"
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
func (a *app) newBroker(km *keys.Manager, hasher *local.Hasher) (*broker.Broker, error) {
	t := a.cfg.Tokens
	issuer, err := token.New(token.Options{
		Issuer: a.cfg.Issuer, Signer: km, IDTokenTTL: t.IDTokenTTL, AccessTokenTTL: t.AccessTokenTTL, Clock: a.clock,
	})
	if err != nil {
		return nil, fmt.Errorf("token issuer: %w", err)
	}
	return broker.New(broker.Options{
		Issuer:         a.cfg.Issuer,
		Store:          a.db,
		Ephemeral:      a.eph,
		Sessions:       session.NewStore(a.eph, session.Options{Clock: a.clock}),
		Tokens:         issuer,
		Password:       local.New(localAccounts{a.db}, hasher, a.log),
		AuthRequestTTL: t.AuthRequestTTL,
		CodeTTL:        t.CodeTTL,
		AccessTokenTTL: t.AccessTokenTTL,
		Clock:          a.clock,
		Logger:         a.log,
	})
}
