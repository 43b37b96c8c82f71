package broker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/latchkeyid/latchkey/broker/token"
	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/internal/httpclient"
	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/session"
	"github.com/latchkeyid/latchkey/storage"
)

// Store is the durable data the broker reads and writes.
type Store interface {
	GetClient(ctx context.Context, id string) (storage.Client, error)
	GetUser(ctx context.Context, id string) (storage.User, error)
	GetConsent(ctx context.Context, userID, clientID string) (storage.Consent, error)
	PutConsent(ctx context.Context, c storage.Consent) error
	AppendEvent(ctx context.Context, e storage.Event) error

	CreateRefreshToken(ctx context.Context, t storage.RefreshToken) error
	GetRefreshToken(ctx context.Context, hash string) (storage.RefreshToken, error)
	RotateRefreshToken(ctx context.Context, hash string, at time.Time, successor storage.RefreshToken) error
	RevokeRefreshFamily(ctx context.Context, familyID string, at time.Time) (int64, error)
	RevokeRefreshTokensBySID(ctx context.Context, clientID, sid string, at time.Time) (int64, error)
	// Tx lets a change and the audit event describing it commit together.
	Tx(ctx context.Context, fn func(ctx context.Context, tx storage.Durable) error) error
}

// Options configure a Broker.
type Options struct {
	Issuer    string
	Store     Store
	Ephemeral storage.Ephemeral
	Sessions  *session.Store
	Tokens    *token.Issuer
	// Password is the local password connector (connector id "local").
	Password providers.PasswordConnector

	AuthRequestTTL time.Duration // default 10m
	CodeTTL        time.Duration // default 60s
	AccessTokenTTL time.Duration // how long a redeemed-code marker lives; default 1h

	// RefreshKey derives the successor of a rotated refresh token
	// (HMAC-SHA256), so that every replica answers concurrent refreshes of
	// one token with the same successor. All replicas must share it (cmd
	// derives it with DeriveRefreshKey from the first key-encryption key).
	// At least 32 bytes; empty means a random key of this process, which
	// is right for one replica only.
	RefreshKey []byte
	// RefreshGraceWindow is how long after a rotation the rotated token
	// still answers with the same successor; 0 means no grace at all
	// (CONTRACTS.md tokens.refreshGraceWindow).
	RefreshGraceWindow time.Duration
	// RefreshIdleTTL ends a refresh token not used for that long (from its
	// issue); default 30 days. RefreshAbsoluteTTL ends a family that long
	// after the code exchange that started it; default 90 days.
	RefreshIdleTTL     time.Duration
	RefreshAbsoluteTTL time.Duration

	// Limits are the rate limits and lockout; zero value: none.
	Limits Limits

	// HTTPClient fetches client jwks_uri documents (private_key_jwt) and
	// delivers back-channel logout tokens. It must be the hardened client
	// of internal/httpclient; nil makes a default one.
	HTTPClient *http.Client
	// JWKSCacheTTL is how long a fetched client JWKS is used; default 5m.
	JWKSCacheTTL time.Duration
	// ClientCacheTTL is how long a client read for client authentication
	// or an authorization request is reused before it is read again (see
	// DefaultClientCacheTTL); 0 reads it on every request.
	ClientCacheTTL time.Duration
	// BatchTokenEvents writes token.issued audit events in the background,
	// batched, instead of in the request (broker/eventqueue.go); the caller
	// then calls WaitEvents before closing the store.
	BatchTokenEvents bool

	// BackchannelAttempts is how many times a logout token is POSTed to a
	// client that fails (network error, 5xx, 408, 429); default 4.
	// BackchannelBackoff is the wait before the second attempt, doubling
	// after each; default 1s.
	BackchannelAttempts int
	BackchannelBackoff  time.Duration
	// Upstream ends upstream sessions when an SSO session ends; nil until
	// a connector supports it (see UpstreamLogout).
	Upstream UpstreamLogout
	// Federation signs users in through upstream connectors (login page
	// chooser, /callback/{id}, upstream refresh); zero: none.
	Federation Federation
	// MFA turns on second factors (broker/mfa.go); nil: none, and
	// acr_values above one factor are unmet.
	MFA *MFAOptions
	// Accounts turns on the local account's e-mail flows and password
	// change (broker/account.go); nil: none.
	Accounts *AccountOptions

	Clock  clock.Clock
	Rand   io.Reader
	Logger *slog.Logger
}

// LocalConnectorID names the local password connector.
const LocalConnectorID = "local"

// Broker is the OIDC provider core.
type Broker struct {
	limits   Limits
	issuer   string
	store    Store
	eph      storage.Ephemeral
	sessions *session.Store
	tokens   *token.Issuer
	password providers.PasswordConnector
	reqTTL   time.Duration
	codeTTL  time.Duration
	atTTL    time.Duration
	refresh  refreshPolicy
	http     *http.Client
	jwks     *jwksCache
	clients  *clientCache
	events   *eventQueue
	bc       *backchannel
	upstream UpstreamLogout
	fed      Federation
	mfa      *mfaEngine
	acct     *accounts
	clock    clock.Clock
	rand     io.Reader
	log      *slog.Logger
}

// New returns a Broker.
func New(o Options) (*Broker, error) {
	switch {
	case o.Issuer == "":
		return nil, errors.New("broker: Issuer is required")
	case o.Store == nil || o.Ephemeral == nil || o.Sessions == nil || o.Tokens == nil:
		return nil, errors.New("broker: Store, Ephemeral, Sessions and Tokens are required")
	}
	b := &Broker{
		issuer: o.Issuer, store: o.Store, eph: o.Ephemeral, sessions: o.Sessions, tokens: o.Tokens,
		password: o.Password, reqTTL: o.AuthRequestTTL, codeTTL: o.CodeTTL, atTTL: o.AccessTokenTTL,
		clock: o.Clock, rand: o.Rand, log: o.Logger, upstream: o.Upstream, fed: o.Federation,
		bc: &backchannel{attempts: o.BackchannelAttempts, backoff: o.BackchannelBackoff},
	}
	if b.bc.attempts <= 0 {
		b.bc.attempts = DefaultBackchannelAttempts
	}
	if b.bc.backoff <= 0 {
		b.bc.backoff = DefaultBackchannelBackoff
	}
	if b.reqTTL <= 0 {
		b.reqTTL = 10 * time.Minute
	}
	if b.codeTTL <= 0 {
		b.codeTTL = 60 * time.Second
	}
	if b.atTTL <= 0 {
		b.atTTL = time.Hour
	}
	if b.clock == nil {
		b.clock = clock.Real{}
	}
	if b.rand == nil {
		b.rand = rand.Reader
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.refresh = refreshPolicy{key: o.RefreshKey, grace: o.RefreshGraceWindow, idle: o.RefreshIdleTTL, absolute: o.RefreshAbsoluteTTL}
	switch {
	case len(b.refresh.key) == 0:
		b.refresh.key = make([]byte, 32)
		if _, err := io.ReadFull(b.rand, b.refresh.key); err != nil {
			return nil, fmt.Errorf("broker: random refresh key: %w", err)
		}
	case len(b.refresh.key) < 32:
		return nil, errors.New("broker: RefreshKey must be at least 32 bytes")
	}
	if b.refresh.grace < 0 || b.refresh.idle < 0 || b.refresh.absolute < 0 {
		return nil, errors.New("broker: refresh token lifetimes must not be negative")
	}
	if b.refresh.idle == 0 {
		b.refresh.idle = DefaultRefreshIdleTTL
	}
	if b.refresh.absolute == 0 {
		b.refresh.absolute = DefaultRefreshAbsoluteTTL
	}
	b.limits = o.Limits
	mfaEngine, err := newMFAEngine(o.MFA, b.clock)
	if err != nil {
		return nil, err
	}
	b.mfa = mfaEngine
	if b.acct, err = newAccounts(o.Accounts); err != nil {
		return nil, err
	}
	b.http = o.HTTPClient
	if b.http == nil {
		b.http = httpclient.New(httpclient.Options{Logger: b.log})
	}
	ttl := o.JWKSCacheTTL
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	b.jwks = &jwksCache{ttl: ttl, entries: map[string]jwksEntry{}}
	b.events = &eventQueue{on: o.BatchTokenEvents}
	b.clients = &clientCache{ttl: max(o.ClientCacheTTL, 0), entries: map[string]clientEntry{}}
	return b, nil
}

// Issuer returns the issuer identifier.
func (b *Broker) Issuer() string { return b.issuer }

// AuthRequestTTL is how long a started login may take (the binding cookie
// lives as long).
func (b *Broker) AuthRequestTTL() time.Duration { return b.reqTTL }

func (b *Broker) now() time.Time { return b.clock.Now().UTC() }

// audit writes an event; a failure is logged, not returned, because the
// change it describes has already happened in the ephemeral store.
func (b *Broker) audit(ctx context.Context, e storage.Event) {
	if e.Time.IsZero() {
		e.Time = b.now()
	}
	if err := b.store.AppendEvent(ctx, e); err != nil {
		b.log.ErrorContext(ctx, "write audit event", slog.String("type", e.Type), slog.Any("error", err))
	}
}
