package broker

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/latchkeyid/latchkey/broker/oauth2"
	"github.com/latchkeyid/latchkey/mfa"
	"github.com/latchkeyid/latchkey/mfa/policy"
	"github.com/latchkeyid/latchkey/mfa/recovery"
	"github.com/latchkeyid/latchkey/session"
	"github.com/latchkeyid/latchkey/storage"
)

// The second-factor pages.
const (
	// StepMFA asks for a code of an enrolled factor (/mfa).
	StepMFA Step = "mfa"
	// StepMFAEnroll enrolls a TOTP authenticator (/mfa/enroll).
	StepMFAEnroll Step = "mfa/enroll"
)

// Every durable backend keeps MFA credentials for mfa's callers.
var _ mfa.Store = storage.Durable(nil)

// MFAOptions turn on second factors (Options.MFA).
type MFAOptions struct {
	// Factors are the registered factors (cmd builds the registry).
	Factors mfa.Registry
	// Policy decides when a second factor is needed; nil asks only when
	// acr_values ask.
	Policy *policy.Policy
	// Store keeps the credentials.
	Store mfa.Store
	// Code checks are limited per account by Options.Limits
	// (Rules.FactorAccount, limits.factorPerAccount).
}

// mfaEngine is the broker's MFA wiring.
type mfaEngine struct {
	MFAOptions
}

func newMFAEngine(o *MFAOptions, clk interface{ Now() time.Time }) (*mfaEngine, error) {
	if o == nil {
		return nil, nil
	}
	if o.Store == nil || len(o.Factors) == 0 {
		return nil, errors.New("broker: MFA needs a Store and at least one factor")
	}
	e := &mfaEngine{MFAOptions: *o}
	if e.Policy == nil {
		p, err := policy.New(policy.Config{}, e.Factors.Types(), clk)
		if err != nil {
			return nil, fmt.Errorf("broker: mfa policy: %w", err)
		}
		e.Policy = p
	}
	return e, nil
}

// Errors of the second-factor pages, shown on the page again.
var (
	// ErrMFAInvalidCode: the code is wrong, expired or malformed.
	ErrMFAInvalidCode = errors.New("that code is not valid; check your authenticator and try again")
	// ErrMFAReplay: the code was already used.
	ErrMFAReplay = errors.New("that code was already used; wait for the next code")
)

// toMFASteps converts the session's steps.
func toMFASteps(steps []session.Step) []mfa.Step {
	out := make([]mfa.Step, len(steps))
	for i, s := range steps {
		out[i] = mfa.Step{Factor: s.Factor, AMR: slices.Clone(s.AMR), At: s.At}
	}
	return out
}

// requestSteps are the authentication steps behind req: its session's,
// or, without one, the primary login the request records. A request that
// demanded a new sign-in counts only the steps of that sign-in:
// prompt=login those since the session's new auth_time, max_age those
// within it; so acr_values asking for a second factor asks for it again
// (as Keycloak re-runs the whole flow).
func (b *Broker) requestSteps(ctx context.Context, req *AuthRequest) ([]session.Step, error) {
	if req.SessionCookie != "" {
		sess, err := b.sessions.Get(ctx, req.SessionCookie)
		switch {
		case err == nil && sess.UserID == req.UserID && sess.SID == req.SID:
			return b.freshSteps(req, sess), nil
		case err != nil && !errors.Is(err, session.ErrNoSession):
			return nil, err
		}
	}
	return []session.Step{{AMR: slices.Clone(req.AMR), At: req.AuthTime}}, nil
}

// freshSteps are the steps of sess that count for req (requestSteps).
func (b *Broker) freshSteps(req *AuthRequest, sess session.Session) []session.Step {
	steps := sess.AllSteps()
	var since time.Time
	if slices.Contains(req.Prompt, oauth2.PromptLogin) || (req.MaxAge != nil && *req.MaxAge == 0) {
		since = sess.AuthTime
	} else if req.MaxAge != nil {
		since = b.now().Add(-time.Duration(*req.MaxAge) * time.Second)
	}
	if since.IsZero() {
		return steps
	}
	since = since.Truncate(time.Second)
	return slices.DeleteFunc(steps, func(st session.Step) bool { return st.Factor != "" && st.At.Before(since) })
}

// usableTypes lists the factor types of a user's credentials that can be
// used now (recovery sets with codes left).
func usableTypes(creds []mfa.Credential) []string {
	var out []string
	for _, c := range creds {
		if c.Type == mfa.TypeRecovery {
			if n, err := recovery.Remaining(c); err != nil || n == 0 {
				continue
			}
		}
		if !slices.Contains(out, c.Type) {
			out = append(out, c.Type)
		}
	}
	return out
}

// secondFactor is the dispatcher's second-factor step: with the user
// known, it asks the policy what the session's steps still need for this
// client, connector, the user's groups and the request's acr_values, and
// answers the challenge or enrollment page, or the error. done is false
// when the login may continue; req.AMR is then the session's amr.
func (b *Broker) secondFactor(ctx context.Context, req *AuthRequest, user storage.User, promptNone bool) (Result, bool) {
	steps, err := b.requestSteps(ctx, req)
	if err != nil {
		return b.errorRedirect(req, oauth2.ErrServerError("", err)), true
	}
	req.AMR = mfa.AMR(toMFASteps(steps))
	req.MFAFactors = nil
	if b.mfa == nil {
		if len(req.ACRValues) > 0 && !slices.ContainsFunc(req.ACRValues, func(v string) bool { return mfa.ACRSatisfies(mfa.ACRFor(req.AMR), v) }) {
			return b.errorRedirect(req, oauth2.ErrUnmetAuthenticationRequirements("second factors are not enabled", nil)), true
		}
		return Result{}, false
	}
	creds, err := b.mfa.Store.ListMFACredentials(ctx, user.ID)
	if err != nil {
		return b.errorRedirect(req, oauth2.ErrServerError("", err)), true
	}
	d, err := b.mfa.Policy.Evaluate(policy.Input{
		ClientID: req.ClientID, ConnectorID: req.LoginConnID, Groups: user.Groups,
		Enrolled: usableTypes(creds), Steps: toMFASteps(steps), ACRValues: req.ACRValues,
	})
	if err != nil {
		return b.errorRedirect(req, oauth2.ErrServerError("", err)), true
	}
	switch d.Action {
	case policy.Allow:
		return Result{}, false
	case policy.Unmet:
		return b.errorRedirect(req, oauth2.ErrUnmetAuthenticationRequirements(d.Reason, nil)), true
	}
	if promptNone {
		return b.errorRedirect(req, oauth2.ErrInteractionRequired("the user must present a second factor", nil)), true
	}
	req.MFAFactors = d.Factors
	if d.Action == policy.Enroll {
		if !slices.Contains(d.Factors, mfa.TypeTOTP) && slices.Contains(d.Factors, mfa.TypeWebAuthn) && b.webauthnFactor() != nil {
			return b.next(ctx, req, StepWebAuthnEnroll), true // broker/webauthn.go
		}
		if !slices.Contains(d.Factors, mfa.TypeTOTP) {
			if len(b.otpEnrollable(req)) > 0 { // otp.go: SMS or e-mail codes
				return b.next(ctx, req, StepOTPEnroll), true
			}
			return b.errorRedirect(req, oauth2.ErrUnmetAuthenticationRequirements("no factor that can be enrolled here reaches "+d.Target, nil)), true
		}
		return b.next(ctx, req, StepMFAEnroll), true
	}
	if pickFactor(d.Factors, "") == mfa.TypeWebAuthn {
		return b.next(ctx, req, StepWebAuthn), true // broker/webauthn.go
	}
	return b.next(ctx, req, StepMFA), true
}

// MFAView is what the challenge and enrollment pages show.
type MFAView struct {
	RequestID  string
	CSRF       string
	ClientName string
	// Factor is the factor the challenge page asks for (totp or
	// recovery); Alternatives the other enrolled ones it may offer.
	Factor       string
	Alternatives []string
	// Enrollment (TOTP): the secret as text and the QR code as a data:
	// URL; shown, never stored.
	Secret    string
	QRDataURL string
	Account   string
	// RecoveryCodes are shown once, after enrollment.
	RecoveryCodes []string
}

// mfaRequest loads the request for a second-factor page and checks that
// the browser's active session is the session of the request's user: a
// page of one user's sign-in never acts for another user's session.
func (b *Broker) mfaRequest(ctx context.Context, id, binding string, bs BrowserSessions, meta RequestMeta) (*AuthRequest, storage.Client, *PageError) {
	req, client, perr := b.requestPage(ctx, id, binding)
	if perr != nil {
		return nil, client, perr
	}
	if b.mfa == nil || req.UserID == "" || len(req.MFAFactors) == 0 {
		return nil, client, &PageError{Status: 400, Title: "Sign in first", Message: "Sign in before using a second factor.", Err: errors.New("mfa page out of order")}
	}
	sess, err := b.sessions.Get(ctx, bs.Active)
	if err != nil || sess.UserID != req.UserID || sess.SID != req.SID {
		b.audit(ctx, storage.Event{Type: "mfa.refused", Actor: "user:" + req.UserID, UserID: req.UserID, ClientID: client.ID,
			IP: meta.IP, UserAgent: meta.UserAgent, RequestID: meta.RequestID, Data: map[string]any{"reason": "session does not belong to the sign-in's user"}})
		return nil, client, &PageError{Status: 403, Title: "Sign-in not recognised", Message: "This second-factor step belongs to another sign-in. Go back to the application and start again.", Err: fmt.Errorf("mfa: session mismatch: %v", err)}
	}
	req.SessionCookie = bs.Active
	return req, client, nil
}

func (b *Broker) mfaView(req *AuthRequest, client storage.Client, binding string) MFAView {
	return MFAView{RequestID: req.ID, CSRF: CSRFToken(binding, req.ID), ClientName: clientName(client)}
}

// MFAPage returns what the challenge page shows; factor is the one asked
// for ("" the first of the enrolled ones the policy offers: WebAuthn,
// then TOTP).
func (b *Broker) MFAPage(ctx context.Context, id, binding string, bs BrowserSessions, factor string, meta RequestMeta) (MFAView, *PageError) {
	req, client, perr := b.mfaRequest(ctx, id, binding, bs, meta)
	if perr != nil {
		return MFAView{}, perr
	}
	v := b.mfaView(req, client, binding)
	v.Factor = pickFactor(req.MFAFactors, factor)
	for _, f := range req.MFAFactors {
		if f != v.Factor {
			v.Alternatives = append(v.Alternatives, f)
		}
	}
	return v, nil
}

func pickFactor(offered []string, want string) string {
	if slices.Contains(offered, want) {
		return want
	}
	if slices.Contains(offered, mfa.TypeWebAuthn) { // phishing-resistant first
		return mfa.TypeWebAuthn
	}
	if slices.Contains(offered, mfa.TypeTOTP) {
		return mfa.TypeTOTP
	}
	if i := slices.IndexFunc(offered, func(t string) bool { return t != mfa.TypeRecovery }); i >= 0 {
		return offered[i] // a recovery code last
	}
	if len(offered) > 0 {
		return offered[0]
	}
	return ""
}

// limit counts one code check for the user.
func (b *Broker) limitFactor(ctx context.Context, userID string) error {
	if b.limits.Limiter == nil {
		return nil
	}
	d, err := b.limits.Limiter.Allow(ctx, b.limits.Rules.FactorAccount, "user:"+userID)
	if err != nil {
		return err
	}
	if !d.Allowed {
		return &RateLimitedError{RetryAfter: d.RetryAfter}
	}
	return nil
}

// VerifyMFA checks a code of factor for request id and, on success,
// records the step in the session (rotating its cookie) and continues the
// login. Failures return ErrMFAInvalidCode, ErrMFAReplay or a
// *RateLimitedError with the view to render again, or a page error in
// the Result; each failure writes an event (without the code).
func (b *Broker) VerifyMFA(ctx context.Context, id, binding, csrf string, bs BrowserSessions, factor, code string, meta RequestMeta) (Result, MFAView, error) {
	req, client, perr := b.mfaRequest(ctx, id, binding, bs, meta)
	if perr != nil {
		return Result{Page: perr}, MFAView{}, nil
	}
	if !checkCSRF(binding, id, csrf) {
		return pageErr(400, "Form expired", "The form was not valid for this sign-in. Go back to the application and start again.", errors.New("csrf token mismatch")), MFAView{}, nil
	}
	view, _ := b.MFAPage(ctx, id, binding, bs, factor, meta)
	factor = view.Factor
	f, err := b.mfa.Factors.Get(factor)
	if err != nil {
		return pageErr(400, "Not available", "That second factor is not available.", err), MFAView{}, nil
	}
	event := func(typ string, data map[string]any) {
		if data == nil {
			data = map[string]any{}
		}
		data["factor"] = factor
		b.audit(ctx, storage.Event{Type: typ, Actor: "user:" + req.UserID, UserID: req.UserID, ClientID: client.ID,
			IP: meta.IP, UserAgent: meta.UserAgent, RequestID: meta.RequestID, Data: data})
	}
	if err := b.limitFactor(ctx, req.UserID); err != nil {
		var rl *RateLimitedError
		if errors.As(err, &rl) {
			event("mfa.rate_limited", nil)
			return Result{}, view, rl
		}
		return pageErr(503, "Try again later", "Second-factor checks are unavailable right now. Please try again shortly.", err), MFAView{}, nil
	}
	creds, err := b.mfa.Store.ListMFACredentials(ctx, req.UserID)
	if err != nil {
		return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err), MFAView{}, nil
	}
	var verified *mfa.Verification
	replay := false
	for _, c := range creds {
		if c.Type != factor {
			continue
		}
		var v mfa.Verification
		err := b.mfa.Store.UpdateMFACredential(ctx, c.ID, func(cur mfa.Credential) (mfa.Credential, error) {
			var err error
			v, err = f.Verify(ctx, cur, nil, code)
			return v.Credential, err
		})
		switch {
		case err == nil:
			verified = &v
		case errors.Is(err, mfa.ErrReplay):
			replay = true
			continue
		case errors.Is(err, mfa.ErrInvalidCode), errors.Is(err, mfa.ErrNotEnrolled):
			continue
		default:
			b.log.ErrorContext(ctx, "verify second factor", slog.String("credential", c.ID), slog.Any("error", err))
			continue
		}
		break
	}
	if verified == nil {
		if replay {
			event("mfa.challenge.failed", map[string]any{"reason": "replay"})
			return Result{}, view, ErrMFAReplay
		}
		event("mfa.challenge.failed", map[string]any{"reason": "invalid"})
		return Result{}, view, ErrMFAInvalidCode
	}
	data := map[string]any{"credential_id": verified.Credential.ID}
	if factor == mfa.TypeRecovery {
		n, _ := recovery.Remaining(verified.Credential)
		data["remaining"] = n
		event("mfa.recovery.used", data)
	} else {
		event("mfa.challenge.succeeded", data)
	}
	return b.afterStep(ctx, req, client, bs, session.Step{Factor: factor, AMR: verified.AMR, At: b.now()}), MFAView{}, nil
}

// afterStep records a verified step in the session (rotating its cookie)
// and returns to the dispatcher.
func (b *Broker) afterStep(ctx context.Context, req *AuthRequest, client storage.Client, bs BrowserSessions, step session.Step) Result {
	cookie, sess, err := b.sessions.AddStep(ctx, bs.Active, req.UserID, step)
	if err != nil {
		return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err)
	}
	req.SessionCookie = cookie
	req.AuthTime = sess.AuthTime
	res := b.dispatch(ctx, req, client, BrowserSessions{Active: cookie, Others: bs.Others})
	res.Cookies = mergeCookies(res.Cookies, Cookies{SessionCookie: cookie})
	return res
}

// totpAccount names the account in the authenticator app.
func totpAccount(u storage.User) string {
	name := u.Username
	if name == "" {
		name = u.Email
	}
	if name == "" {
		name = u.ID
	}
	return strings.ReplaceAll(name, ":", "_")
}

// displayer rebuilds a pending TOTP enrollment's secret (mfa/totp).
type displayer interface {
	Display(pending mfa.Credential, accountName string) (mfa.Enrollment, error)
}

// MFAEnrollPage starts (or shows again) a TOTP enrollment for request id:
// the pending credential (its seed sealed) is kept in the request; the
// secret and QR code are only shown.
func (b *Broker) MFAEnrollPage(ctx context.Context, id, binding string, bs BrowserSessions, meta RequestMeta) (MFAView, *PageError) {
	req, client, perr := b.mfaRequest(ctx, id, binding, bs, meta)
	if perr != nil {
		return MFAView{}, perr
	}
	v, err := b.enrollView(ctx, req, client, binding)
	if err != nil {
		return MFAView{}, &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}
	}
	return v, nil
}

func (b *Broker) enrollView(ctx context.Context, req *AuthRequest, client storage.Client, binding string) (MFAView, error) {
	f, err := b.mfa.Factors.Get(mfa.TypeTOTP)
	if err != nil {
		return MFAView{}, err
	}
	user, err := b.store.GetUser(ctx, req.UserID)
	if err != nil {
		return MFAView{}, err
	}
	account := totpAccount(user)
	var e mfa.Enrollment
	if d, ok := f.(displayer); ok && req.MFAPending != nil && req.MFAPending.UserID == req.UserID && req.MFAPending.Type == mfa.TypeTOTP {
		e, err = d.Display(*req.MFAPending, account)
	} else {
		e, err = f.BeginEnrollment(ctx, mfa.EnrollmentRequest{UserID: req.UserID, AccountName: account, Label: "authenticator app"})
		if err == nil {
			p := e.Pending
			req.MFAPending = &p
			err = b.saveRequest(ctx, req)
		}
	}
	if err != nil {
		return MFAView{}, err
	}
	v := b.mfaView(req, client, binding)
	v.Factor, v.Secret, v.Account = mfa.TypeTOTP, e.Secret, account
	if slices.Contains(req.MFAFactors, mfa.TypeWebAuthn) {
		v.Alternatives = append(v.Alternatives, mfa.TypeWebAuthn)
	}
	v.Alternatives = append(v.Alternatives, b.otpEnrollable(req)...) // otp.go: SMS or e-mail codes instead
	v.QRDataURL = "data:image/png;base64," + base64.StdEncoding.EncodeToString(e.QRCode)
	return v, nil
}

// EnrollMFA confirms the pending TOTP enrollment of request id with a
// first code. On success the credential is stored, the step recorded in
// the session, and, when the user has no recovery codes, a set is made:
// the view then holds the codes to show once (Result is empty), and
// ContinueMFA continues the login. Otherwise the login continues.
func (b *Broker) EnrollMFA(ctx context.Context, id, binding, csrf string, bs BrowserSessions, code string, meta RequestMeta) (Result, MFAView, error) {
	req, client, perr := b.mfaRequest(ctx, id, binding, bs, meta)
	if perr != nil {
		return Result{Page: perr}, MFAView{}, nil
	}
	if !checkCSRF(binding, id, csrf) {
		return pageErr(400, "Form expired", "The form was not valid for this sign-in. Go back to the application and start again.", errors.New("csrf token mismatch")), MFAView{}, nil
	}
	if req.MFAPending == nil || req.MFAPending.UserID != req.UserID || req.MFAPending.Type != mfa.TypeTOTP {
		return pageErr(400, "Enrollment expired", "Start the enrollment again.", errors.New("no pending enrollment for this user")), MFAView{}, nil
	}
	event := func(typ string, data map[string]any) {
		b.audit(ctx, storage.Event{Type: typ, Actor: "user:" + req.UserID, UserID: req.UserID, ClientID: client.ID,
			IP: meta.IP, UserAgent: meta.UserAgent, RequestID: meta.RequestID, Data: data})
	}
	view, err := b.enrollView(ctx, req, client, binding)
	if err != nil {
		return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err), MFAView{}, nil
	}
	if err := b.limitFactor(ctx, req.UserID); err != nil {
		var rl *RateLimitedError
		if errors.As(err, &rl) {
			event("mfa.rate_limited", map[string]any{"factor": mfa.TypeTOTP})
			return Result{}, view, rl
		}
		return pageErr(503, "Try again later", "Second-factor checks are unavailable right now. Please try again shortly.", err), MFAView{}, nil
	}
	f, _ := b.mfa.Factors.Get(mfa.TypeTOTP)
	cred, err := f.FinishEnrollment(ctx, *req.MFAPending, code)
	switch {
	case errors.Is(err, mfa.ErrInvalidCode) || errors.Is(err, mfa.ErrReplay):
		event("mfa.enrollment.failed", map[string]any{"factor": mfa.TypeTOTP, "reason": "invalid"})
		return Result{}, view, ErrMFAInvalidCode
	case err != nil:
		return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err), MFAView{}, nil
	}
	if err := b.mfa.Store.CreateMFACredential(ctx, cred); err != nil {
		return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err), MFAView{}, nil
	}
	event("mfa.enrolled", map[string]any{"factor": mfa.TypeTOTP, "credential_id": cred.ID})
	req.MFAPending = nil
	step := session.Step{Factor: mfa.TypeTOTP, AMR: []string{mfa.AMROTP}, At: b.now()}
	res, v := b.enrolledStep(ctx, req, client, bs, binding, meta, step) // enroll.go
	return res, v, nil
}

// ensureRecovery makes a recovery-code set for a user who has none with
// codes left and returns the codes to show once.
func (b *Broker) ensureRecovery(ctx context.Context, userID string) ([]string, error) {
	f, err := b.mfa.Factors.Get(mfa.TypeRecovery)
	issuer, ok := f.(recoveryIssuer)
	if err != nil || !ok {
		return nil, nil
	}
	creds, err := b.mfa.Store.ListMFACredentials(ctx, userID)
	if err != nil {
		return nil, err
	}
	if slices.Contains(usableTypes(creds), mfa.TypeRecovery) {
		return nil, nil
	}
	return issuer.Issue(ctx, b.mfa.Store, userID)
}

// recoveryIssuer is the recovery-code factor's Issue (mfa/recovery).
type recoveryIssuer interface {
	Issue(ctx context.Context, st mfa.Store, userID string) ([]string, error)
}

// ContinueMFA continues the login after the recovery codes were shown.
func (b *Broker) ContinueMFA(ctx context.Context, id, binding, csrf string, bs BrowserSessions, meta RequestMeta) Result {
	req, client, perr := b.mfaRequest(ctx, id, binding, bs, meta)
	if perr != nil {
		return Result{Page: perr}
	}
	if !checkCSRF(binding, id, csrf) {
		return pageErr(400, "Form expired", "The form was not valid for this sign-in. Go back to the application and start again.", errors.New("csrf token mismatch"))
	}
	return b.dispatch(ctx, req, client, BrowserSessions{Active: bs.Active, Others: bs.Others})
}
