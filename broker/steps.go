package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"

	"github.com/latchkeyid/latchkey/broker/oauth2"
	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/session"
	"github.com/latchkeyid/latchkey/storage"
)

// LoginView is what the login page shows for a request.
type LoginView struct {
	RequestID  string
	CSRF       string
	ClientName string
	LoginHint  string
	// Password: the password form is offered (PasswordConnectors is not
	// empty).
	Password bool
	// PasswordConnectors are the connectors the password form can check
	// (local first when allowed, then each allowed upstream
	// PasswordConnector such as ldap); the form offers a choice when
	// there is more than one.
	PasswordConnectors []UpstreamView
	// PasswordConnector is the one chosen when the form is shown again
	// after a failed attempt ("" for the first).
	PasswordConnector string
	// ForgotPassword: the page links to the password reset
	// (/account/forgot; account e-mail is configured).
	ForgotPassword bool
	// Register: the page links to self-registration (/account/register,
	// broker/register.go).
	Register bool
	// Upstreams are the connector buttons, in storage order (the client's
	// allowed_connectors and the request's connector_id respected).
	Upstreams []UpstreamView
	// PasskeyOptions, when set, are the options of a passkey sign-in
	// (WebAuthn request options as JSON; broker/webauthn.go).
	PasskeyOptions string
	// Redirect, when set, is where the browser goes instead of the page:
	// connector_id or login_hint chose the upstream, whose login has
	// started.
	Redirect string
	// RedirectPost, when set, is such a start that the browser must POST
	// (a SAML AuthnRequest in the HTTP-POST binding): an auto-submitting
	// form to RedirectPost.URI with RedirectPost.Params.
	RedirectPost *Redirect
}

// ConsentView is what the consent page shows.
type ConsentView struct {
	RequestID  string
	CSRF       string
	ClientName string
	Scopes     []string
}

// requestPage loads a request for one of our pages, or the page error to
// show instead.
func (b *Broker) requestPage(ctx context.Context, id, binding string) (*AuthRequest, storage.Client, *PageError) {
	req, err := b.loadRequest(ctx, id, binding)
	switch {
	case errors.Is(err, errRequestExpired):
		return nil, storage.Client{}, expiredPage(err)
	case errors.Is(err, errWrongBrowser):
		return nil, storage.Client{}, &PageError{Status: 400, Title: "Sign-in not recognised", Message: "The sign-in request was started in another browser. Go back to the application and start again in this browser.", Err: err}
	case err != nil:
		return nil, storage.Client{}, &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}
	}
	client, err := b.getClient(ctx, req.ClientID)
	if err != nil || client.Disabled {
		return nil, storage.Client{}, &PageError{Status: 400, Title: "Unknown application", Message: "The application that sent you here is no longer registered.", Err: err}
	}
	return req, client, nil
}

// expiredPage is the page for a request that is gone.
func expiredPage(err error) *PageError {
	return &PageError{Status: 400, Title: "Sign-in expired", Message: "The sign-in request has expired or was already completed. Go back to the application and start again.", Err: err}
}

func clientName(c storage.Client) string {
	if c.Name != "" {
		return c.Name
	}
	return c.ID
}

// LoginPage returns what the login page shows: the password form when
// "local" is allowed and a button per allowed upstream connector. When
// connector_id or login_hint pick an upstream (or it is the only way in),
// the upstream login starts at once and the view's Redirect says where.
func (b *Broker) LoginPage(ctx context.Context, id, binding string) (LoginView, *PageError) {
	req, client, perr := b.requestPage(ctx, id, binding)
	if perr != nil {
		return LoginView{}, perr
	}
	if req.PendingLink != nil {
		return LoginView{Redirect: "/" + string(StepLink) + "?req=" + url.QueryEscape(req.ID)}, nil
	}
	view := b.loginView(req, client, binding, req.LoginHint)
	if cid := b.skipChooser(ctx, req, view); cid != "" {
		res := b.beginUpstream(ctx, req, client, cid, RequestMeta{})
		if res.Page != nil {
			return LoginView{}, res.Page
		}
		if res.Redirect.Mode == oauth2.ResponseModeFormPost {
			view.RedirectPost = res.Redirect
		} else {
			view.Redirect = res.Redirect.URL()
		}
		return view, nil
	}
	if err := b.offerPasskey(ctx, req, &view); err != nil {
		return LoginView{}, &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}
	}
	return view, nil
}

// ErrBadCredentials is the one message for a failed password login.
var ErrBadCredentials = errors.New("incorrect username or password")

// ErrBusy: too many password checks at once; try again shortly.
var ErrBusy = errors.New("the server is busy; try again in a moment")

// PasswordLogin is PasswordLoginWith through the local connector.
func (b *Broker) PasswordLogin(ctx context.Context, id, binding, csrf string, bs BrowserSessions, username, password string, meta RequestMeta) (Result, LoginView, error) {
	return b.PasswordLoginWith(ctx, id, binding, csrf, bs, LocalConnectorID, username, password, meta)
}

// PasswordLoginWith checks a username and password for request id through
// password connector connectorID ("" or "local": the local connector;
// otherwise an allowed upstream PasswordConnector such as ldap, whose
// identity is linked to a user as for callback connectors) and, on
// success, signs the browser in (see signIn) and continues the login. bs
// are the browser's session cookies. The login limits and lockout apply
// to every password connector alike. A failure returns ErrBadCredentials
// or ErrBusy with the login view to render again, or a page error.
func (b *Broker) PasswordLoginWith(ctx context.Context, id, binding, csrf string, bs BrowserSessions, connectorID, username, password string, meta RequestMeta) (Result, LoginView, error) {
	req, client, perr := b.requestPage(ctx, id, binding)
	if perr != nil {
		return Result{Page: perr}, LoginView{}, nil
	}
	if !checkCSRF(binding, id, csrf) {
		return pageErr(400, "Form expired", "The form was not valid for this sign-in. Go back to the application and start again.", errors.New("csrf token mismatch")), LoginView{}, nil
	}
	if connectorID == "" {
		connectorID = LocalConnectorID
	}
	view := b.loginView(req, client, binding, username)
	view.PasswordConnector = connectorID
	var (
		pc providers.PasswordConnector
		up Upstream
	)
	if connectorID == LocalConnectorID {
		pc = b.password
	} else if u, ok := b.fed.Connectors.Get(connectorID); ok {
		up = u
		pc, _ = u.Connector.(providers.PasswordConnector)
	}
	if pc == nil || !slices.ContainsFunc(view.PasswordConnectors, func(v UpstreamView) bool { return v.ID == connectorID }) {
		return pageErr(400, "Not available", "Password sign-in is not available for this application.", fmt.Errorf("password connector %q unknown or not allowed", truncate(connectorID, 64))), LoginView{}, nil
	}
	if err := b.checkLoginLimits(ctx, username, meta.IP); err != nil {
		var rl *RateLimitedError
		if errors.As(err, &rl) {
			return Result{}, view, rl
		}
		return pageErr(503, "Temporarily unavailable", "Sign-in is temporarily unavailable. Please try again in a moment.", err), LoginView{}, nil
	}
	ident, err := pc.Login(ctx, username, password)
	switch {
	case errors.Is(err, providers.ErrInvalidCredentials):
		b.loginFailed(ctx, username, meta)
		b.audit(ctx, storage.Event{Type: "user.login.failed", ClientID: client.ID, ConnectorID: connectorID,
			IP: meta.IP, UserAgent: meta.UserAgent, RequestID: meta.RequestID, Data: map[string]any{"username": truncate(username, 64)}})
		if err := b.offerPasskey(ctx, req, &view); err != nil { // the page offers the passkey again
			b.log.WarnContext(ctx, "offer a passkey", slog.Any("error", err))
		}
		return Result{}, view, ErrBadCredentials
	case errors.Is(err, providers.ErrBusy):
		return Result{}, view, ErrBusy
	case err != nil && connectorID != LocalConnectorID:
		return b.upstreamFailed(ctx, req, client, up, err, meta), LoginView{}, nil
	case err != nil:
		return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err), LoginView{}, nil
	}
	b.loginSucceeded(ctx, username)
	if connectorID != LocalConnectorID {
		if len(ident.AMR) == 0 {
			ident.AMR = []string{"pwd"}
		}
		return b.upstreamSignedIn(ctx, req, client, bs, up, ident, meta, linkModeFor(req)), LoginView{}, nil
	}
	if b.requireVerifiedEmail() && ident.Email != "" && !ident.EmailVerified { // broker/register.go
		return Result{}, view, b.refuseUnverified(ctx, req, ident.Subject, ident.Email, meta)
	}
	if perr := req.checkProof(ident.Subject); perr != nil {
		return Result{Page: perr}, LoginView{}, nil
	}
	cookies, sess, err := b.signIn(ctx, req, bs, ident.Subject, LocalConnectorID, ident.AMR, meta)
	if err != nil {
		return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err), LoginView{}, nil
	}
	b.audit(ctx, storage.Event{Type: "user.login.succeeded", Actor: "user:" + ident.Subject, UserID: ident.Subject,
		ClientID: client.ID, ConnectorID: LocalConnectorID, IP: meta.IP, UserAgent: meta.UserAgent, RequestID: meta.RequestID,
		Data: map[string]any{"sid": sess.SID, "amr": ident.AMR}})
	req.UserID, req.AuthTime, req.AMR, req.SID, req.LoginConnID = ident.Subject, sess.AuthTime, sess.AMR, sess.SID, LocalConnectorID
	req.SessionCookie = cookies.SessionCookie
	res := b.dispatch(ctx, req, client, BrowserSessions{Active: cookies.SessionCookie, Others: cookies.Others})
	res.Cookies = mergeCookies(res.Cookies, cookies)
	return res, LoginView{}, nil
}

// signIn records a sign-in of userID in a browser holding bs and returns
// the cookies to set and the session. The session cookie value always
// changes (session fixation; see session.Store.Renew).
//
//   - The active session is the same user's: it continues (same sid).
//   - Another account of this browser is that user's: it continues and
//     becomes the active one; the previous active one stays as another
//     account.
//   - A new user after "use another account" on the chooser: a new
//     session, and the previous active one stays as another account.
//   - A new user otherwise: a new session, and the previous active one
//     ends (reason "replaced"), which notifies its clients.
func (b *Broker) signIn(ctx context.Context, req *AuthRequest, bs BrowserSessions, userID, connectorID string, amr []string, meta RequestMeta) (Cookies, session.Session, error) {
	bs = bs.normalize()
	accts, err := b.accounts(ctx, bs)
	if err != nil {
		return Cookies{}, session.Session{}, err
	}
	var active *account
	base := ""
	for i := range accts {
		a := &accts[i]
		if a.active {
			active = a
		}
		if a.sess.UserID == userID && base == "" {
			base = a.cookie
		}
	}
	keepActive := active != nil && active.cookie != base && (base != "" || req.AddAccount)
	endActive := active != nil && active.cookie != base && !keepActive
	cookie, sess, err := b.sessions.RenewOn(ctx, base, userID, connectorID, amr, session.Device{IP: meta.IP, UserAgent: truncate(meta.UserAgent, 256)})
	if err != nil {
		return Cookies{}, session.Session{}, err
	}
	if endActive {
		if _, _, _, err := b.endSession(ctx, active.sess.SID, ReasonReplaced, "user:"+userID, meta); err != nil {
			b.log.ErrorContext(ctx, "end the replaced session", slog.Any("error", err))
		}
	}
	c := Cookies{SessionCookie: cookie}
	first := ""
	if keepActive {
		first = active.cookie
	}
	others := withOthers(bs.Others, first, base, bs.Active)
	if !slices.Equal(others, bs.Others) {
		c.SetOthers, c.Others = true, others
	} else {
		c.Others = bs.Others
	}
	return c, sess, nil
}

// mergeCookies is a with the cookies b sets and a does not.
func mergeCookies(a, b Cookies) Cookies {
	if a.Binding == "" {
		a.Binding = b.Binding
	}
	if a.SessionCookie == "" && !a.ClearSession {
		a.SessionCookie, a.ClearSession = b.SessionCookie, b.ClearSession
	}
	if !a.SetOthers {
		a.SetOthers, a.Others = b.SetOthers, b.Others
	}
	return a
}

// ConsentPage returns what the consent page shows.
func (b *Broker) ConsentPage(ctx context.Context, id, binding string) (ConsentView, *PageError) {
	req, client, perr := b.requestPage(ctx, id, binding)
	if perr != nil {
		return ConsentView{}, perr
	}
	if req.UserID == "" {
		return ConsentView{}, &PageError{Status: 400, Title: "Sign in first", Message: "Sign in before granting access.", Err: errors.New("consent before login")}
	}
	return ConsentView{RequestID: req.ID, CSRF: CSRFToken(binding, req.ID), ClientName: clientName(client), Scopes: req.Scopes}, nil
}

// Consent records the user's answer on the consent page and continues.
func (b *Broker) Consent(ctx context.Context, id, binding, csrf, sessionCookie string, approve bool, meta RequestMeta) Result {
	req, client, perr := b.requestPage(ctx, id, binding)
	if perr != nil {
		return Result{Page: perr}
	}
	if !checkCSRF(binding, id, csrf) {
		return pageErr(400, "Form expired", "The form was not valid for this sign-in. Go back to the application and start again.", errors.New("csrf token mismatch"))
	}
	if req.UserID == "" {
		return pageErr(400, "Sign in first", "Sign in before granting access.", errors.New("consent before login"))
	}
	if !approve {
		_, _ = b.eph.Take(ctx, requestKey(req.ID))
		b.audit(ctx, storage.Event{Type: "consent.denied", Actor: "user:" + req.UserID, UserID: req.UserID, ClientID: client.ID, IP: meta.IP, UserAgent: meta.UserAgent, RequestID: meta.RequestID})
		return b.errorRedirect(req, oauth2.ErrAccessDenied("the user denied access", nil))
	}
	err := b.store.PutConsent(ctx, storage.Consent{UserID: req.UserID, ClientID: client.ID, Scopes: req.Scopes, GrantedAt: b.now()})
	if err != nil {
		b.log.ErrorContext(ctx, "store consent", slog.Any("error", err))
		return b.errorRedirect(req, oauth2.ErrServerError("", err))
	}
	b.audit(ctx, storage.Event{Type: "consent.granted", Actor: "user:" + req.UserID, UserID: req.UserID, ClientID: client.ID,
		IP: meta.IP, UserAgent: meta.UserAgent, RequestID: meta.RequestID, Data: map[string]any{"scopes": req.Scopes}})
	req.ConsentGiven = true
	if req.SessionCookie == "" {
		req.SessionCookie = sessionCookie
	}
	return b.dispatch(ctx, req, client, BrowserSessions{Active: sessionCookie})
}

// RequestMeta is what the audit log records about the HTTP request, and
// the language of the page it came from.
type RequestMeta struct {
	IP, UserAgent, RequestID string
	// Lang is the page's language (BCP 47, e.g. "de"): the e-mails and
	// text messages the request causes are written in it ("": the
	// configured default).
	Lang string
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
