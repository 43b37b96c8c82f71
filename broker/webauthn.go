package broker

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/latchkeyid/latchkey/mfa"
	mfawebauthn "github.com/latchkeyid/latchkey/mfa/webauthn"
	"github.com/latchkeyid/latchkey/session"
	"github.com/latchkeyid/latchkey/storage"
)

// The WebAuthn pages (security keys and passkeys).
const (
	// StepWebAuthn asks for an assertion of an enrolled authenticator
	// (/mfa/webauthn).
	StepWebAuthn Step = "mfa/webauthn"
	// StepWebAuthnEnroll registers an authenticator (/mfa/webauthn/enroll).
	StepWebAuthnEnroll Step = "mfa/webauthn/enroll"
)

// Errors of the WebAuthn pages, shown on the page again.
var (
	// ErrWebAuthnFailed: the authenticator's answer was not accepted.
	ErrWebAuthnFailed = errors.New("your security key or passkey was not accepted; try again")
	// ErrPasskeyFailed: a passkey sign-in was not accepted.
	ErrPasskeyFailed = errors.New("that passkey was not accepted; try again or sign in with your password")
)

// WebAuthnView is what the WebAuthn pages show: the MFA page fields and
// the ceremony's options for the browser (JSON; the challenge is kept in
// the auth request).
type WebAuthnView struct {
	MFAView
	Options string
	// Label is the name suggested for a new authenticator.
	Label string
}

// MaxAuthenticatorLabel bounds an authenticator's name (characters).
const MaxAuthenticatorLabel = 64

// webauthnFactor returns the registered WebAuthn factor, or nil.
func (b *Broker) webauthnFactor() *mfawebauthn.Factor {
	if b.mfa == nil {
		return nil
	}
	f, _ := b.mfa.Factors[mfa.TypeWebAuthn].(*mfawebauthn.Factor)
	return f
}

// takeCeremony removes the WebAuthn ceremony from req and stores req
// before the response is checked: a ceremony is answered once.
func (b *Broker) takeCeremony(ctx context.Context, req *AuthRequest) ([]byte, error) {
	st := req.WebAuthn
	if st == nil {
		return nil, nil
	}
	req.WebAuthn = nil
	return st, b.saveRequest(ctx, req)
}

// webauthnAnswer is a posted WebAuthn answer that passed the page checks.
type webauthnAnswer struct {
	b      *Broker
	req    *AuthRequest
	client storage.Client
	f      *mfawebauthn.Factor
	state  []byte // the ceremony, taken out of the request
	meta   RequestMeta
}

// webauthnPost is the common start of a posted WebAuthn answer: the
// request of this browser and user, the CSRF token, the factor offered,
// and the ceremony taken (once). res is the page to answer instead.
func (b *Broker) webauthnPost(ctx context.Context, id, binding, csrf string, bs BrowserSessions, meta RequestMeta) (*webauthnAnswer, *Result) {
	req, client, f, perr := b.webauthnRequest(ctx, id, binding, bs, meta)
	if perr != nil {
		return nil, &Result{Page: perr}
	}
	if !checkCSRF(binding, id, csrf) {
		res := pageErr(400, "Form expired", "The form was not valid for this sign-in. Go back to the application and start again.", errors.New("csrf token mismatch"))
		return nil, &res
	}
	st, err := b.takeCeremony(ctx, req)
	if err != nil {
		res := pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err)
		return nil, &res
	}
	return &webauthnAnswer{b: b, req: req, client: client, f: f, state: st, meta: meta}, nil
}

// event audits typ for the answer's user (factor webauthn).
func (p *webauthnAnswer) event(ctx context.Context, typ string, data map[string]any) {
	data["factor"] = mfa.TypeWebAuthn
	p.b.audit(ctx, storage.Event{Type: typ, Actor: "user:" + p.req.UserID, UserID: p.req.UserID, ClientID: p.client.ID,
		IP: p.meta.IP, UserAgent: p.meta.UserAgent, RequestID: p.meta.RequestID, Data: data})
}

// limit counts one factor check: rl when the limit is reached (audited),
// res when the limiter fails.
func (p *webauthnAnswer) limit(ctx context.Context) (*RateLimitedError, *Result) {
	err := p.b.limitFactor(ctx, p.req.UserID)
	var rl *RateLimitedError
	switch {
	case err == nil:
		return nil, nil
	case errors.As(err, &rl):
		p.event(ctx, "mfa.rate_limited", map[string]any{})
		return rl, nil
	}
	res := pageErr(503, "Try again later", "Second-factor checks are unavailable right now. Please try again shortly.", err)
	return nil, &res
}

// reasonOf names a failed WebAuthn check for the audit log.
func reasonOf(err error) string {
	switch {
	case errors.Is(err, mfawebauthn.ErrSignCount):
		return "counter_regression"
	case errors.Is(err, mfawebauthn.ErrCeremony):
		return "no_ceremony"
	case errors.Is(err, mfawebauthn.ErrAAGUID):
		return "authenticator_not_allowed"
	case errors.Is(err, storage.ErrNotFound):
		return "unknown_credential"
	}
	return "invalid"
}

// verifyWebAuthnAssertion finds the credential of userID that answered and runs
// the factor's Verify inside the store's update (the new counter is
// written atomically).
func (b *Broker) verifyWebAuthnAssertion(ctx context.Context, f *mfawebauthn.Factor, userID string, credentialID []byte, st []byte, response string) (mfa.Verification, error) {
	creds, err := b.mfa.Store.ListMFACredentials(ctx, userID)
	if err != nil {
		return mfa.Verification{}, err
	}
	i := slices.IndexFunc(creds, func(c mfa.Credential) bool { return mfawebauthn.Owns(c, credentialID) })
	if i < 0 {
		return mfa.Verification{}, storage.ErrNotFound
	}
	var v mfa.Verification
	err = b.mfa.Store.UpdateMFACredential(ctx, creds[i].ID, func(cur mfa.Credential) (mfa.Credential, error) {
		var err error
		v, err = f.Verify(ctx, cur, st, response)
		return v.Credential, err
	})
	return v, err
}

// failedCheck reports whether err is the user's answer being refused
// (rather than the server failing).
func failedCheck(err error) bool {
	return errors.Is(err, mfa.ErrInvalidCode) || errors.Is(err, mfawebauthn.ErrSignCount) || errors.Is(err, storage.ErrNotFound)
}

// webauthnRequest loads the request of a WebAuthn page (see mfaRequest)
// where the factor is registered and offered.
func (b *Broker) webauthnRequest(ctx context.Context, id, binding string, bs BrowserSessions, meta RequestMeta) (*AuthRequest, storage.Client, *mfawebauthn.Factor, *PageError) {
	req, client, perr := b.mfaRequest(ctx, id, binding, bs, meta)
	if perr != nil {
		return nil, client, nil, perr
	}
	f := b.webauthnFactor()
	if f == nil || !slices.Contains(req.MFAFactors, mfa.TypeWebAuthn) {
		return nil, client, nil, &PageError{Status: 400, Title: "Not available", Message: "Security keys and passkeys are not available for this sign-in.", Err: errors.New("webauthn not offered")}
	}
	return req, client, f, nil
}

// webauthnView is the view of a WebAuthn page with the ceremony's
// options; the other factors offered are the alternatives.
func (b *Broker) webauthnView(req *AuthRequest, client storage.Client, binding string, options []byte) WebAuthnView {
	v := WebAuthnView{MFAView: b.mfaView(req, client, binding), Options: string(options)}
	v.Factor = mfa.TypeWebAuthn
	for _, t := range req.MFAFactors {
		if t != mfa.TypeWebAuthn {
			v.Alternatives = append(v.Alternatives, t)
		}
	}
	return v
}

// webauthnChallenge begins an assertion of the user's authenticators and
// keeps it in req.
func (b *Broker) webauthnChallenge(ctx context.Context, f *mfawebauthn.Factor, req *AuthRequest, client storage.Client, binding string) (WebAuthnView, error) {
	creds, err := b.mfa.Store.ListMFACredentials(ctx, req.UserID)
	if err != nil {
		return WebAuthnView{}, err
	}
	c, err := f.BeginLogin(ctx, req.UserID, creds)
	if err != nil {
		return WebAuthnView{}, err
	}
	req.WebAuthn = c.State
	if err := b.saveRequest(ctx, req); err != nil {
		return WebAuthnView{}, err
	}
	return b.webauthnView(req, client, binding, c.Options), nil
}

// WebAuthnPage returns the second-factor page for a security key or
// passkey: a new assertion ceremony of the user's authenticators.
func (b *Broker) WebAuthnPage(ctx context.Context, id, binding string, bs BrowserSessions, meta RequestMeta) (WebAuthnView, *PageError) {
	req, client, f, perr := b.webauthnRequest(ctx, id, binding, bs, meta)
	if perr != nil {
		return WebAuthnView{}, perr
	}
	v, err := b.webauthnChallenge(ctx, f, req, client, binding)
	if err != nil {
		return WebAuthnView{}, &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}
	}
	return v, nil
}

// VerifyWebAuthn checks the browser's assertion (the JSON of the
// PublicKeyCredential) against the ceremony of request id, once. On
// success the step is recorded in the session (its cookie rotates) and
// the login continues. A refused answer writes mfa.challenge.failed with
// a reason (invalid, no_ceremony, unknown_credential, counter_regression)
// and returns ErrWebAuthnFailed with a new ceremony to try again, or a
// *RateLimitedError.
func (b *Broker) VerifyWebAuthn(ctx context.Context, id, binding, csrf string, bs BrowserSessions, response string, meta RequestMeta) (Result, WebAuthnView, error) {
	p, res := b.webauthnPost(ctx, id, binding, csrf, bs, meta)
	if res != nil {
		return *res, WebAuthnView{}, nil
	}
	req, client, f, st, event := p.req, p.client, p.f, p.state, p.event
	retry := func(cause error) (Result, WebAuthnView, error) {
		v, err := b.webauthnChallenge(ctx, f, req, client, binding)
		if err != nil {
			return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err), WebAuthnView{}, nil
		}
		return Result{}, v, cause
	}
	if rl, res := p.limit(ctx); res != nil {
		return *res, WebAuthnView{}, nil
	} else if rl != nil {
		return retry(rl)
	}
	as, err := mfawebauthn.ParseAssertion(response)
	var v mfa.Verification
	if err == nil {
		v, err = b.verifyWebAuthnAssertion(ctx, f, req.UserID, as.CredentialID, st, response)
	}
	if err != nil {
		if !failedCheck(err) {
			return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err), WebAuthnView{}, nil
		}
		b.log.InfoContext(ctx, "webauthn assertion refused", slog.String("user", req.UserID), slog.Any("error", err))
		event(ctx, "mfa.challenge.failed", map[string]any{"reason": reasonOf(err)})
		return retry(ErrWebAuthnFailed)
	}
	event(ctx, "mfa.challenge.succeeded", map[string]any{"credential_id": v.Credential.ID, "label": v.Credential.Label})
	return b.afterStep(ctx, req, client, bs, session.Step{Factor: mfa.TypeWebAuthn, AMR: v.AMR, At: b.now()}), WebAuthnView{}, nil
}

// accountNames are the names a new authenticator shows for the user.
func accountNames(u storage.User) mfawebauthn.User {
	name := u.Username
	if name == "" {
		name = u.Email
	}
	display := u.Name
	if display == "" {
		display = name
	}
	return mfawebauthn.User{ID: u.ID, Name: name, DisplayName: display}
}

// webauthnRegistration begins registering an authenticator for req's
// user and keeps the ceremony in req.
func (b *Broker) webauthnRegistration(ctx context.Context, f *mfawebauthn.Factor, req *AuthRequest, client storage.Client, binding, label string) (WebAuthnView, error) {
	user, err := b.store.GetUser(ctx, req.UserID)
	if err != nil {
		return WebAuthnView{}, err
	}
	creds, err := b.mfa.Store.ListMFACredentials(ctx, req.UserID)
	if err != nil {
		return WebAuthnView{}, err
	}
	c, err := f.BeginRegistration(ctx, accountNames(user), creds)
	if err != nil {
		return WebAuthnView{}, err
	}
	req.WebAuthn = c.State
	if err := b.saveRequest(ctx, req); err != nil {
		return WebAuthnView{}, err
	}
	if label == "" {
		label = suggestedPasskeyLabel(creds)
	}
	v := b.webauthnView(req, client, binding, c.Options)
	v.Label, v.Account = label, accountNames(user).Name
	return v, nil
}

// suggestedPasskeyLabel names a new authenticator of a user with creds:
// "Passkey", then "Passkey 2", ...
func suggestedPasskeyLabel(creds []mfa.Credential) string {
	n := 1
	for _, c := range creds {
		if c.Type == mfa.TypeWebAuthn {
			n++
		}
	}
	if n > 1 {
		return "Passkey " + strconv.Itoa(n)
	}
	return "Passkey"
}

// cleanLabel trims a user's name for an authenticator: 1 to
// MaxAuthenticatorLabel characters, no control characters.
func cleanLabel(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" || utf8.RuneCountInString(s) > MaxAuthenticatorLabel || !utf8.ValidString(s) {
		return s, false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return s, false
		}
	}
	return s, true
}

// WebAuthnEnrollPage begins registering a security key or passkey for
// request id (the policy asks for a factor only WebAuthn reaches, or the
// user chose it instead of an authenticator app).
func (b *Broker) WebAuthnEnrollPage(ctx context.Context, id, binding string, bs BrowserSessions, meta RequestMeta) (WebAuthnView, *PageError) {
	req, client, f, perr := b.webauthnRequest(ctx, id, binding, bs, meta)
	if perr != nil {
		return WebAuthnView{}, perr
	}
	v, err := b.webauthnRegistration(ctx, f, req, client, binding, "")
	if err != nil {
		return WebAuthnView{}, &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}
	}
	return v, nil
}

// EnrollWebAuthn checks the browser's registration response against the
// ceremony of request id, once, and stores the authenticator under
// label. The registration counts as a verified WebAuthn step; when the
// user has no recovery codes a set is made and the view holds them to
// show once (ContinueMFA continues), otherwise the login continues. A
// refused response writes mfa.enrollment.failed and returns
// ErrWebAuthnFailed with a new ceremony; a registration posted with
// another user's session is refused by the page check (mfa.refused).
func (b *Broker) EnrollWebAuthn(ctx context.Context, id, binding, csrf string, bs BrowserSessions, label, response string, meta RequestMeta) (Result, WebAuthnView, error) {
	p, res := b.webauthnPost(ctx, id, binding, csrf, bs, meta)
	if res != nil {
		return *res, WebAuthnView{}, nil
	}
	req, client, f, st, event := p.req, p.client, p.f, p.state, p.event
	label, okLabel := cleanLabel(label)
	retry := func(cause error) (Result, WebAuthnView, error) {
		keep := label
		if !okLabel {
			keep = ""
		}
		v, err := b.webauthnRegistration(ctx, f, req, client, binding, keep)
		if err != nil {
			return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err), WebAuthnView{}, nil
		}
		return Result{}, v, cause
	}
	if !okLabel {
		return retry(ErrWebAuthnLabel)
	}
	if rl, res := p.limit(ctx); res != nil {
		return *res, WebAuthnView{}, nil
	} else if rl != nil {
		return retry(rl)
	}
	user, err := b.store.GetUser(ctx, req.UserID)
	if err != nil {
		return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err), WebAuthnView{}, nil
	}
	creds, err := b.mfa.Store.ListMFACredentials(ctx, req.UserID)
	if err != nil {
		return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err), WebAuthnView{}, nil
	}
	v, err := f.FinishRegistration(ctx, accountNames(user), st, label, response, creds)
	switch {
	case err != nil && failedCheck(err):
		b.log.InfoContext(ctx, "webauthn registration refused", slog.String("user", req.UserID), slog.Any("error", err))
		event(ctx, "mfa.enrollment.failed", map[string]any{"reason": reasonOf(err)})
		return retry(ErrWebAuthnFailed)
	case err != nil:
		return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err), WebAuthnView{}, nil
	}
	if err := b.mfa.Store.CreateMFACredential(ctx, v.Credential); err != nil {
		return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err), WebAuthnView{}, nil
	}
	event(ctx, "mfa.enrolled", map[string]any{"credential_id": v.Credential.ID, "label": label, "discoverable": mfawebauthn.Discoverable(v.Credential)})
	step := session.Step{Factor: mfa.TypeWebAuthn, AMR: v.AMR, At: b.now()}
	codes, err := b.ensureRecovery(ctx, req.UserID)
	if err != nil {
		b.log.ErrorContext(ctx, "make recovery codes", slog.Any("error", err))
	}
	if len(codes) == 0 {
		return b.afterStep(ctx, req, client, bs, step), WebAuthnView{}, nil
	}
	b.audit(ctx, storage.Event{Type: "mfa.enrolled", Actor: "user:" + req.UserID, UserID: req.UserID, ClientID: client.ID,
		IP: meta.IP, UserAgent: meta.UserAgent, RequestID: meta.RequestID, Data: map[string]any{"factor": mfa.TypeRecovery}})
	cookie, _, err := b.sessions.AddStep(ctx, bs.Active, req.UserID, step)
	if err != nil {
		return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err), WebAuthnView{}, nil
	}
	req.SessionCookie = cookie
	req.MFAFactors = []string{mfa.TypeRecovery} // ContinueMFA needs a factor page in progress
	if err := b.saveRequest(ctx, req); err != nil {
		return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err), WebAuthnView{}, nil
	}
	view := WebAuthnView{MFAView: b.mfaView(req, client, binding)}
	view.RecoveryCodes = codes
	return Result{Cookies: Cookies{SessionCookie: cookie}}, view, nil
}

// ErrWebAuthnLabel: the authenticator's name is empty or too long.
var ErrWebAuthnLabel = errors.New("give the security key or passkey a name of 1 to 64 characters")

// offerPasskey adds "Sign in with a passkey" to a login view: a
// discoverable-credential ceremony kept in req. It is offered when the
// WebAuthn factor is registered and the local account may sign in.
func (b *Broker) offerPasskey(ctx context.Context, req *AuthRequest, view *LoginView) error {
	f := b.webauthnFactor()
	if f == nil || !slices.ContainsFunc(view.PasswordConnectors, func(v UpstreamView) bool { return v.ID == LocalConnectorID }) {
		return nil
	}
	c, err := f.BeginPasskeyLogin(ctx)
	if err != nil {
		return err
	}
	req.WebAuthn = c.State
	if err := b.saveRequest(ctx, req); err != nil {
		return err
	}
	view.PasskeyOptions = string(c.Options)
	return nil
}

// PasskeyLogin signs in with a passkey (a discoverable credential): the
// assertion names its user by the user handle; it is checked against the
// ceremony of request id, once, and the user's credential. On success
// the browser is signed in as with a password (the local account; amr
// "hwk" or "swk", "user", and "mfa" with user verification) and the
// login continues. A refused assertion writes user.login.failed (method
// passkey, with a reason) and returns ErrPasskeyFailed with the login
// view and a new ceremony. via is how the page says the passkey was
// chosen ("button" or "autofill"), recorded in the event as is when it is
// one of those.
func (b *Broker) PasskeyLogin(ctx context.Context, id, binding, csrf string, bs BrowserSessions, response, via string, meta RequestMeta) (Result, LoginView, error) {
	req, client, perr := b.requestPage(ctx, id, binding)
	if perr != nil {
		return Result{Page: perr}, LoginView{}, nil
	}
	if !checkCSRF(binding, id, csrf) {
		return pageErr(400, "Form expired", "The form was not valid for this sign-in. Go back to the application and start again.", errors.New("csrf token mismatch")), LoginView{}, nil
	}
	view := b.loginView(req, client, binding, req.LoginHint)
	f := b.webauthnFactor()
	if f == nil || !slices.ContainsFunc(view.PasswordConnectors, func(v UpstreamView) bool { return v.ID == LocalConnectorID }) {
		return Result{Page: &PageError{Status: 400, Title: "Not available", Message: "Passkey sign-in is not available for this application.", Err: errors.New("passkey login not offered")}}, LoginView{}, nil
	}
	st, err := b.takeCeremony(ctx, req)
	if err != nil {
		return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err), LoginView{}, nil
	}
	failed := func(userID, reason string, cause error) (Result, LoginView, error) {
		b.log.InfoContext(ctx, "passkey sign-in refused", slog.String("reason", reason), slog.Any("error", cause))
		e := storage.Event{Type: "user.login.failed", ClientID: client.ID, ConnectorID: LocalConnectorID, IP: meta.IP, UserAgent: meta.UserAgent,
			RequestID: meta.RequestID, Data: map[string]any{"method": "passkey", "reason": reason}}
		if userID != "" {
			e.UserID, e.Actor = userID, "user:"+userID
		}
		b.audit(ctx, e)
		if err := b.offerPasskey(ctx, req, &view); err != nil {
			return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err), LoginView{}, nil
		}
		return Result{}, view, ErrPasskeyFailed
	}
	as, err := mfawebauthn.ParseAssertion(response)
	if err != nil {
		return failed("", "invalid", err)
	}
	if as.UserID == "" || len(as.UserID) > 64 {
		return failed("", "invalid", errors.New("no user handle"))
	}
	user, err := b.store.GetUser(ctx, as.UserID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return failed("", "unknown_credential", err)
	case err != nil:
		return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err), LoginView{}, nil
	case user.Disabled:
		return failed(user.ID, "disabled", errors.New("user disabled"))
	}
	if err := b.checkLoginLimits(ctx, user.Username, meta.IP); err != nil {
		var rl *RateLimitedError
		if errors.As(err, &rl) {
			return Result{}, view, rl
		}
		return pageErr(503, "Temporarily unavailable", "Sign-in is temporarily unavailable. Please try again in a moment.", err), LoginView{}, nil
	}
	v, err := b.verifyWebAuthnAssertion(ctx, f, user.ID, as.CredentialID, st, response)
	if err != nil {
		if !failedCheck(err) {
			return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err), LoginView{}, nil
		}
		return failed(user.ID, reasonOf(err), err)
	}
	b.loginSucceeded(ctx, user.Username)
	cookies, sess, err := b.signIn(ctx, req, bs, user.ID, LocalConnectorID, v.AMR, meta)
	if err != nil {
		return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err), LoginView{}, nil
	}
	b.audit(ctx, storage.Event{Type: "user.login.succeeded", Actor: "user:" + user.ID, UserID: user.ID,
		ClientID: client.ID, ConnectorID: LocalConnectorID, IP: meta.IP, UserAgent: meta.UserAgent, RequestID: meta.RequestID,
		Data: map[string]any{"sid": sess.SID, "amr": v.AMR, "method": "passkey", "credential_id": v.Credential.ID, "via": passkeyVia(via)}})
	req.UserID, req.AuthTime, req.AMR, req.SID, req.LoginConnID = user.ID, sess.AuthTime, sess.AMR, sess.SID, LocalConnectorID
	req.SessionCookie = cookies.SessionCookie
	res := b.dispatch(ctx, req, client, BrowserSessions{Active: cookies.SessionCookie, Others: cookies.Others})
	res.Cookies = mergeCookies(res.Cookies, cookies)
	return res, LoginView{}, nil
}

// passkeyVia is the page's word for how a passkey was chosen, or
// "unknown".
func passkeyVia(s string) string {
	if s == "button" || s == "autofill" {
		return s
	}
	return "unknown"
}
