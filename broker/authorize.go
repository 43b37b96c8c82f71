package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"

	"github.com/latchkeyid/latchkey/broker/oauth2"
	"github.com/latchkeyid/latchkey/storage"
)

// SupportedScopes are the scopes Latchkey knows.
var SupportedScopes = []string{"openid", "profile", "email", "groups", "offline_access"}

// Step names the page the browser goes to next.
type Step string

const (
	StepLogin         Step = "login"
	StepConsent       Step = "consent"
	StepSelectAccount Step = "select-account"
)

// Result is what a step of the login answers. Exactly one of Redirect,
// Next and Page is set.
type Result struct {
	// Redirect sends the browser back to the client (a code or an error).
	Redirect *Redirect
	// Next sends the browser to one of our pages for RequestID.
	Next      Step
	RequestID string
	// Page is an error shown in the browser: the client or redirect URI
	// could not be trusted, or the request was lost.
	Page *PageError

	// Cookies the answer sets or clears.
	Cookies
}

// Redirect is an authorization response to deliver to the client.
type Redirect struct {
	URI    string
	Mode   string // query or form_post
	Params url.Values
}

// URL is the redirect URI with the parameters added to its query. The
// registered URI's own query is kept byte for byte (RFC 6749 §3.1.2: it
// MUST be retained); the parameters follow it.
func (r *Redirect) URL() string {
	uri, frag, hasFrag := strings.Cut(r.URI, "#")
	if enc := r.Params.Encode(); enc != "" {
		switch {
		case !strings.Contains(uri, "?"):
			uri += "?" + enc
		case strings.HasSuffix(uri, "?") || strings.HasSuffix(uri, "&"):
			uri += enc
		default:
			uri += "&" + enc
		}
	}
	if hasFrag {
		uri += "#" + frag
	}
	return uri
}

// PageError is an error page. Status is the HTTP status; Message is safe
// to show.
type PageError struct {
	Status  int
	Title   string
	Message string
	Err     error // logged
}

func pageErr(status int, title, msg string, err error) Result {
	return Result{Page: &PageError{Status: status, Title: title, Message: msg, Err: err}}
}

// Authorize validates an authorization request (the parameters of GET or
// POST /authorize), stores it, and runs the dispatcher. parseErr is the
// caller's finding that a parameter other than client_id and redirect_uri
// was repeated (params then holds first values): it is answered to the
// verified redirect URI. binding is the browser's binding cookie ("" if
// none), bs its session cookies.
func (b *Broker) Authorize(ctx context.Context, params map[string]string, parseErr *oauth2.Error, binding string, bs BrowserSessions) Result {
	ar, perr := oauth2.ParseAuthorizeRequest(params)
	if parseErr != nil {
		perr = parseErr
	}
	// Client and redirect URI first: until both are verified, errors go to
	// a page, never to a redirect.
	clientID := params["client_id"]
	if clientID == "" {
		return pageErr(400, "Invalid request", "The request does not name a client (client_id is missing).", nil)
	}
	client, err := b.getClient(ctx, clientID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && client.Disabled) {
		return pageErr(400, "Unknown application", "The application that sent you here is not registered.", fmt.Errorf("client %q: %w", clientID, storage.ErrNotFound))
	}
	if err != nil {
		return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", fmt.Errorf("load client %q: %w", clientID, err))
	}
	redirectURI := params["redirect_uri"]
	if redirectURI == "" {
		return pageErr(400, "Invalid request", "The request does not say where to return (redirect_uri is missing).", nil)
	}
	if !oauth2.MatchRedirectURI(client.RedirectURIs, redirectURI, client.ApplicationType == "native") {
		return pageErr(400, "Invalid redirect", "The address to return to is not registered for this application.", fmt.Errorf("client %q: redirect_uri %q not registered", clientID, redirectURI))
	}
	mode := ar.ResponseMode
	if mode == "" {
		mode = oauth2.ResponseModeQuery
	}
	fail := func(e *oauth2.Error) Result {
		if e.Cause != nil {
			b.log.InfoContext(ctx, "authorization request refused", slog.String("client_id", clientID), slog.String("error", e.Code), slog.Any("cause", e.Cause))
		}
		if mode != oauth2.ResponseModeFormPost {
			mode = oauth2.ResponseModeQuery
		}
		return Result{Redirect: &Redirect{URI: redirectURI, Mode: mode, Params: e.Params(ar.State, b.issuer)}}
	}
	if perr != nil {
		return fail(perr)
	}

	// Client-dependent checks.
	if !slices.Contains(grantTypes(client), "authorization_code") {
		return fail(oauth2.ErrUnauthorizedClient("the client may not use the authorization code flow", nil))
	}
	if ar.CodeChallenge == "" {
		if client.Public || requirePKCE(client) {
			return fail(oauth2.ErrInvalidRequest("code_challenge is required (PKCE with S256)", nil))
		}
	} else if err := oauth2.ValidateChallenge(ar.CodeChallenge, ar.CodeChallengeMethod); err != nil {
		if e, ok := oauth2.As(err); ok {
			return fail(e)
		}
		return fail(oauth2.ErrInvalidRequest("invalid code_challenge", err))
	}
	var registered []string
	if client.Scope != "" {
		registered = strings.Fields(client.Scope)
	}
	scopes, err := oauth2.FilterScopes(ar.Scopes, SupportedScopes, registered)
	if err != nil {
		if e, ok := oauth2.As(err); ok {
			return fail(e)
		}
		return fail(oauth2.ErrInvalidScope("invalid scope", err))
	}
	if !slices.Contains(scopes, "openid") {
		// Latchkey is an OpenID provider; plain OAuth authorization is
		// not offered through the browser flow.
		return fail(oauth2.ErrInvalidScope("the openid scope is required", nil))
	}
	if ar.ConnectorID != "" {
		_, open := b.fed.Connectors.Get(ar.ConnectorID)
		if (ar.ConnectorID != LocalConnectorID && !open) || (len(client.AllowedConnectors) > 0 && !slices.Contains(client.AllowedConnectors, ar.ConnectorID)) {
			return fail(oauth2.ErrInvalidRequest("unknown or not allowed connector_id", nil))
		}
	}

	res := Result{}
	if !validBinding(binding) {
		binding, err = b.randomToken(32)
		if err != nil {
			return fail(oauth2.ErrServerError("", err))
		}
		res.Binding = binding
	}
	id, err := b.randomToken(24)
	if err != nil {
		return fail(oauth2.ErrServerError("", err))
	}
	req := &AuthRequest{
		ID: id, ClientID: client.ID, RedirectURI: redirectURI, ResponseMode: mode, Scopes: scopes,
		State: ar.State, Nonce: ar.Nonce, CodeChallenge: ar.CodeChallenge, CodeChallengeMethod: ar.CodeChallengeMethod,
		Prompt: ar.Prompt, MaxAge: ar.MaxAge, LoginHint: ar.LoginHint, UILocales: ar.UILocales,
		ACRValues: ar.ACRValues, Claims: ar.Claims, ConnectorID: ar.ConnectorID,
		BindingHash: sha256Hex(binding), CreatedAt: b.now(),
	}
	next := b.dispatch(ctx, req, client, bs.normalize())
	next.Binding = res.Binding
	return next
}

// validBinding accepts a cookie value we could have made.
func validBinding(v string) bool {
	if len(v) != 43 {
		return false
	}
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func grantTypes(c storage.Client) []string {
	if len(c.GrantTypes) == 0 {
		return []string{"authorization_code", "refresh_token"}
	}
	return c.GrantTypes
}

func requirePKCE(c storage.Client) bool { return c.RequirePKCE == nil || *c.RequirePKCE }

func firstParty(c storage.Client) bool { return c.FirstParty == nil || *c.FirstParty }

// errorRedirect answers the client with an error.
func (b *Broker) errorRedirect(req *AuthRequest, e *oauth2.Error) Result {
	return Result{Redirect: &Redirect{URI: req.RedirectURI, Mode: req.ResponseMode, Params: e.Params(req.State, b.issuer)}}
}
