package providers

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"slices"
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

// LoginRequest is what the broker hands a CallbackConnector to start an
// upstream login. The broker generates State, Nonce and the PKCE verifier
// (whose S256 challenge is CodeChallenge), stores them with the auth
// request, and hands them back in the CallbackRequest.
type LoginRequest struct {
	// CallbackURL is where the upstream returns the browser (the
	// redirect_uri registered at the upstream).
	CallbackURL string
	// State is the opaque value the upstream returns with the browser.
	State string
	// Nonce binds the upstream ID token to this login (OpenID Connect);
	// connectors without ID tokens ignore it.
	Nonce string
	// CodeChallenge is BASE64URL(SHA-256(verifier)), sent upstream with
	// code_challenge_method=S256 when the connector uses PKCE.
	CodeChallenge string
	// LoginHint and Prompt are passed on from the app's request where the
	// upstream understands them; empty means none.
	LoginHint string
	Prompt    string
}

// CallbackRequest is the upstream's answer at the callback URL.
type CallbackRequest struct {
	// CallbackURL is LoginRequest.CallbackURL, sent again at the token
	// endpoint as redirect_uri.
	CallbackURL string
	// Query holds the callback's parameters: the URL query, or the form
	// for response_mode=form_post.
	Query url.Values
	// State, Nonce and CodeVerifier are the values the broker stored when
	// it called LoginURL. The connector checks Query's state against State
	// (the broker found the auth request by it already; this is defence in
	// depth) and the ID token's nonce against Nonce.
	State        string
	Nonce        string
	CodeVerifier string
}

// CallbackConnector signs the user in by a round trip of the browser to the
// upstream.
type CallbackConnector interface {
	// LoginURL returns the upstream URL to send the browser to. An
	// upstream that cannot be reached (discovery) yields an error matching
	// ErrUpstreamUnavailable.
	LoginURL(ctx context.Context, req LoginRequest) (string, error)
	// HandleCallback turns the upstream's answer into an Identity. Errors:
	// *UpstreamError when the upstream answered with an error (the user
	// cancelled: access_denied); ErrInvalidCallback (wrapped) when a check
	// failed (state, issuer, nonce, ID token, a code the upstream refuses);
	// ErrUpstreamUnavailable (an *UnavailableError) when the upstream could
	// not be reached in time; *DeniedError when the connector's rules
	// refuse the user; anything else is a server error.
	HandleCallback(ctx context.Context, req CallbackRequest) (Identity, error)
}

// RefreshConnector re-checks an identity at the upstream when the app
// refreshes its tokens: a user removed or disabled upstream stops being
// refreshed.
type RefreshConnector interface {
	// Refresh returns the identity as the upstream sees it now (with
	// updated ConnectorData), or an error when the upstream no longer
	// vouches for the user: ErrUpstreamUserGone when it refuses the user
	// (invalid_grant), *DeniedError when the connector's rules now refuse
	// the user, ErrUpstreamUnavailable when it cannot be reached. The
	// caller runs at most one Refresh per session at a time (an upstream
	// refresh token spent twice trips the upstream's reuse detection) and
	// stores the returned ConnectorData in place of the old.
	Refresh(ctx context.Context, id Identity) (Identity, error)
}

// LogoutConnector ends the user's session at the upstream.
type LogoutConnector interface {
	// LogoutURL returns the upstream logout URL for the browser, which the
	// upstream returns to postLogoutURL; "" means the upstream has nothing
	// to log out of.
	LogoutURL(ctx context.Context, id Identity, postLogoutURL string) (string, error)
}

// LogValue keeps state, nonce and the PKCE challenge out of structured
// logs.
func (r LoginRequest) LogValue() slog.Value {
	return slog.GroupValue(slog.String("callback_url", r.CallbackURL), slog.Bool("login_hint", r.LoginHint != ""),
		slog.String("prompt", r.Prompt))
}

// LogValue keeps the code, state, nonce and PKCE verifier out of
// structured logs: only the names of the callback's parameters appear.
func (r CallbackRequest) LogValue() slog.Value {
	names := make([]string, 0, len(r.Query))
	for k := range r.Query {
		names = append(names, k)
	}
	slices.Sort(names)
	return slog.GroupValue(slog.String("callback_url", r.CallbackURL), slog.Any("params", names))
}

// String is LogValue's text, so %v does not print secrets either.
func (r CallbackRequest) String() string { return "providers.CallbackRequest" + r.LogValue().String() }

// GoString is String, for %#v.
func (r CallbackRequest) GoString() string { return r.String() }

// String is LogValue's text, so %v does not print secrets either.
func (r LoginRequest) String() string { return "providers.LoginRequest" + r.LogValue().String() }

// GoString is String, for %#v.
func (r LoginRequest) GoString() string { return r.String() }
