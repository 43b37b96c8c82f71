package providers

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
)

var (
	// ErrInvalidCredentials is the one error for every login the user got
	// wrong: unknown user, wrong password, disabled account. The caller
	// shows one message, so the answer does not reveal which usernames
	// exist or which accounts are disabled.
	ErrInvalidCredentials = errors.New("invalid username or password")
	// ErrBusy means the connector has no capacity left (all password
	// hashing slots stayed taken for the whole queue wait). The caller
	// answers 503 Service Unavailable with a Retry-After header.
	ErrBusy = errors.New("too many concurrent logins, try again later")
)

// Identity is what a connector learned about the user from the upstream.
// The broker links it to a local user by (connector id, Subject).
type Identity struct {
	// Subject is the user's stable id at the upstream (for the local
	// connector: the Latchkey user id). It never changes for a user, unlike
	// Username and Email.
	Subject       string
	Username      string
	Email         string
	EmailVerified bool
	Name          string
	Groups        []string
	// AMR lists the authentication methods the upstream used (RFC 8176
	// values; the local password connector says ["pwd"]).
	AMR []string
	// ConnectorData is opaque to everyone but the connector that made it;
	// a RefreshConnector reads it back in Refresh. It may hold upstream
	// tokens: the broker stores it encrypted and never logs it.
	ConnectorData []byte
}

// LogValue leaves ConnectorData out of structured logs: it may hold
// upstream tokens.
func (id Identity) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("subject", id.Subject),
		slog.String("username", id.Username),
		slog.String("email", id.Email),
		slog.Bool("email_verified", id.EmailVerified),
		slog.Any("amr", id.AMR),
	)
}

// PasswordConnector checks a username and password the broker collected in
// its own form.
type PasswordConnector interface {
	// Login returns the user's Identity, ErrInvalidCredentials for any
	// wrong input (unknown user, wrong password, disabled account), ErrBusy
	// when out of capacity, or another (server) error.
	Login(ctx context.Context, username, password string) (Identity, error)
}

// CallbackConnector signs the user in by a round trip of the browser to the
// upstream.
type CallbackConnector interface {
	// LoginURL returns the upstream URL to send the browser to. The
	// upstream returns the browser to callbackURL carrying state.
	LoginURL(ctx context.Context, callbackURL, state string) (string, error)
	// HandleCallback turns the request that arrived at callbackURL into an
	// Identity. The caller has already checked state against the stored
	// auth request.
	HandleCallback(ctx context.Context, callbackURL string, r *http.Request) (Identity, error)
}

// RefreshConnector re-checks an identity at the upstream when the app
// refreshes its tokens: a user removed or disabled upstream stops being
// refreshed.
type RefreshConnector interface {
	// Refresh returns the identity as the upstream sees it now (with
	// updated ConnectorData), or an error when the upstream no longer
	// vouches for the user.
	Refresh(ctx context.Context, id Identity) (Identity, error)
}

// LogoutConnector ends the user's session at the upstream.
type LogoutConnector interface {
	// LogoutURL returns the upstream logout URL for the browser, which the
	// upstream returns to postLogoutURL; "" means the upstream has nothing
	// to log out of.
	LogoutURL(ctx context.Context, id Identity, postLogoutURL string) (string, error)
}
