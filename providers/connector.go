package providers

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/latchkeyid/latchkey/internal/clock"
)

// Connector is an open connector. Everything else it can do is a
// capability found by type assertion (CallbackConnector, PasswordConnector,
// RefreshConnector, LogoutConnector).
type Connector interface {
	// ID is the connector's id (stable, used in links and routes).
	ID() string
	// Name is the display name shown on the login page and on error pages.
	Name() string
}

// Info is what the broker knows about a connector besides its
// type-specific config: the id and the display name of the connector
// record.
type Info struct {
	ID   string
	Name string
}

// Type is a connector type: it validates a connector's config and opens
// connectors from it. Types are registered in a Registry built in cmd.
type Type interface {
	// Validate checks a connector's config (the JSON object under the
	// connector's `config` key) and returns every problem at once. Paths
	// are relative to that object ("clientID", "scopes[1]",
	// "claimMapping.email"; "" for the object itself).
	Validate(config json.RawMessage) []FieldProblem
	// Open returns a connector for a config that Validate accepted. It
	// does no network I/O: upstreams are contacted lazily, so an upstream
	// that is down does not stop Latchkey from starting.
	Open(ctx context.Context, info Info, config json.RawMessage, deps Deps) (Connector, error)
}

// Registry maps a connector type name ("oidc", "oauth2", "local", ...) to
// its Type. cmd builds it; there is no global registry.
type Registry map[string]Type

// Deps are what the broker hands every connector it opens.
type Deps struct {
	// HTTPClient is the hardened outbound client (internal/httpclient).
	// Every upstream call goes through it (connectors may wrap its
	// Transport to add retries and a circuit breaker, never replace it).
	HTTPClient *http.Client
	// Clock checks token lifetimes.
	Clock clock.Clock
	// Logger receives the connector's logs; nil discards.
	Logger *slog.Logger
	// Sealer encrypts what a connector must read back later (upstream
	// refresh tokens in Identity.ConnectorData). *secretbox.Keyring
	// satisfies it.
	Sealer Sealer
}

// Sealer encrypts and decrypts small secrets with authenticated
// additional data (the same additional data must be given to Open).
type Sealer interface {
	Seal(plaintext, additionalData []byte) (string, error)
	Open(sealed string, additionalData []byte) ([]byte, error)
}

// FieldProblem is one problem in a connector's config.
type FieldProblem struct {
	// Path is relative to the connector's config object.
	Path    string
	Message string
}

// String returns "path: message", or the message alone when Path is empty.
func (p FieldProblem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}
