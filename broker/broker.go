package broker

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/latchkeyid/latchkey/broker/token"
	"github.com/latchkeyid/latchkey/internal/clock"
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

	Clock  clock.Clock
	Rand   io.Reader
	Logger *slog.Logger
}

// LocalConnectorID names the local password connector.
const LocalConnectorID = "local"

// Broker is the OIDC provider core.
type Broker struct {
	issuer   string
	store    Store
	eph      storage.Ephemeral
	sessions *session.Store
	tokens   *token.Issuer
	password providers.PasswordConnector
	reqTTL   time.Duration
	codeTTL  time.Duration
	atTTL    time.Duration
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
		clock: o.Clock, rand: o.Rand, log: o.Logger,
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
