package broker

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/latchkeyid/latchkey/internal/notify"
	"github.com/latchkeyid/latchkey/internal/ratelimit"
	"github.com/latchkeyid/latchkey/mfa"
	"github.com/latchkeyid/latchkey/mfa/otp"
	"github.com/latchkeyid/latchkey/session"
	"github.com/latchkeyid/latchkey/storage"
)

// The one-time-code pages (SMS and e-mail codes).
const (
	// StepOTP asks for an SMS or e-mail code (/mfa/otp?factor=sms|email).
	StepOTP Step = "mfa/otp"
	// StepOTPEnroll enrolls a phone number or e-mail address
	// (/mfa/otp/enroll).
	StepOTPEnroll Step = "mfa/otp/enroll"
)

// Errors of the one-time-code pages, shown on the page again.
var (
	// ErrOTPNotSent: no live code for this sign-in (never sent, expired,
	// or spent by too many wrong answers).
	ErrOTPNotSent = errors.New("there is no valid code for this sign-in; send a new code")
	// ErrOTPSendFailed: the provider did not take the message; the event
	// mfa.otp.send_failed says why.
	ErrOTPSendFailed = errors.New("we could not send the code right now; try again in a moment or use another method")
)

// OTPFactor reports whether typ is an SMS or e-mail code factor.
func OTPFactor(typ string) bool { return typ == mfa.TypeSMS || typ == mfa.TypeEmail }

// OTPView is what the code pages show.
type OTPView struct {
	MFAView
	// Destination is where the code goes, masked (+49•••••••••78).
	Destination string
	// CodeSent: a code was sent and may be typed in.
	CodeSent bool
	// Enrolling: the enrollment page; Address is the address typed (or
	// the account's e-mail to suggest), shown back in the form.
	Enrolling bool
	Address   string
}

// otpChallenge is a sent code, kept under otpKey while it is live.
type otpChallenge struct {
	CredentialID string          `json:"credential_id"`
	State        json.RawMessage `json:"state"`
}

func otpKey(reqID, factor string) string   { return "mfa-otp:" + reqID + ":" + factor }
func otpTries(reqID, factor string) string { return "mfa-otp-tries:" + reqID + ":" + factor }

// otpCredentials returns the user's credentials of factor.
func (b *Broker) otpCredentials(ctx context.Context, userID, factor string) ([]mfa.Credential, error) {
	creds, err := b.mfa.Store.ListMFACredentials(ctx, userID)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(creds, func(c mfa.Credential) bool { return c.Type != factor }), nil
}

// otpRequest loads the request of a code page and checks that factor is
// an SMS or e-mail factor the page offers and that is registered.
func (b *Broker) otpRequest(ctx context.Context, id, binding string, bs BrowserSessions, factor string, meta RequestMeta) (*AuthRequest, storage.Client, mfa.Factor, *PageError) {
	req, client, perr := b.mfaRequest(ctx, id, binding, bs, meta)
	if perr != nil {
		return nil, client, nil, perr
	}
	f, err := b.mfa.Factors.Get(factor)
	if !OTPFactor(factor) || err != nil || !slices.Contains(req.MFAFactors, factor) {
		return nil, client, nil, &PageError{Status: 400, Title: "Not available", Message: "That second factor is not available.", Err: errors.New("otp page: factor not offered")}
	}
	return req, client, f, nil
}

// OTPPage returns what the code page shows for factor.
func (b *Broker) OTPPage(ctx context.Context, id, binding string, bs BrowserSessions, factor string, meta RequestMeta) (OTPView, *PageError) {
	req, client, _, perr := b.otpRequest(ctx, id, binding, bs, factor, meta)
	if perr != nil {
		return OTPView{}, perr
	}
	return b.otpView(ctx, req, client, binding, factor)
}

func (b *Broker) otpView(ctx context.Context, req *AuthRequest, client storage.Client, binding, factor string) (OTPView, *PageError) {
	v := OTPView{MFAView: b.mfaView(req, client, binding)}
	v.Factor = factor
	for _, f := range req.MFAFactors {
		if f != factor {
			v.Alternatives = append(v.Alternatives, f)
		}
	}
	creds, err := b.otpCredentials(ctx, req.UserID, factor)
	if err != nil {
		return OTPView{}, &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}
	}
	if len(creds) == 0 {
		return OTPView{}, &PageError{Status: 400, Title: "Not available", Message: "That second factor is not available.", Err: mfa.ErrNotEnrolled}
	}
	v.Destination = otp.Masked(creds[0])
	if _, err := b.eph.Get(ctx, otpKey(req.ID, factor)); err == nil {
		v.CodeSent = true
	}
	return v, nil
}

// SendOTP sends a new code for factor to the user's first credential of
// that type (limits.otpSendPerAccount). A failed send writes
// mfa.otp.send_failed and returns ErrOTPSendFailed.
func (b *Broker) SendOTP(ctx context.Context, id, binding, csrf string, bs BrowserSessions, factor string, meta RequestMeta) (Result, OTPView, error) {
	req, client, f, perr := b.otpRequest(ctx, id, binding, bs, factor, meta)
	if perr != nil {
		return Result{Page: perr}, OTPView{}, nil
	}
	if !checkCSRF(binding, id, csrf) {
		return Result{Page: &PageError{Status: 400, Title: "Form expired", Message: "The form was not valid for this sign-in. Go back to the application and start again.", Err: errors.New("csrf token mismatch")}}, OTPView{}, nil
	}
	view, perr := b.otpView(ctx, req, client, binding, factor)
	if perr != nil {
		return Result{Page: perr}, OTPView{}, nil
	}
	event := b.mfaEvent(ctx, req, client, meta, factor)
	if err := b.limitSend(ctx, req.UserID); err != nil {
		res, err := b.limitFailed(err, event)
		return res, view, err
	}
	creds, err := b.otpCredentials(ctx, req.UserID, factor)
	if err != nil || len(creds) == 0 {
		return Result{Page: &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}}, OTPView{}, nil
	}
	ch, err := f.BeginChallenge(notify.WithLang(ctx, meta.Lang), creds[0])
	if err != nil {
		event("mfa.otp.send_failed", map[string]any{"credential_id": creds[0].ID, "error": err.Error()})
		b.log.WarnContext(ctx, "send one-time code", "factor", factor, "error", err)
		return Result{}, view, ErrOTPSendFailed
	}
	raw, err := json.Marshal(otpChallenge{CredentialID: creds[0].ID, State: ch.State})
	if err == nil {
		err = b.eph.Put(ctx, otpKey(req.ID, factor), raw, otp.TTL)
	}
	if err == nil {
		err = b.eph.Delete(ctx, otpTries(req.ID, factor))
	}
	if err != nil {
		return Result{Page: &PageError{Status: 503, Title: "Try again later", Message: "Second-factor checks are unavailable right now. Please try again shortly.", Err: err}}, OTPView{}, nil
	}
	event("mfa.otp.sent", map[string]any{"credential_id": creds[0].ID})
	view.CodeSent = true
	return Result{}, view, nil
}

// VerifyOTP checks a code of factor. A code takes otp.MaxAttempts wrong
// answers, then it is void; it works once.
func (b *Broker) VerifyOTP(ctx context.Context, id, binding, csrf string, bs BrowserSessions, factor, code string, meta RequestMeta) (Result, OTPView, error) {
	req, client, f, perr := b.otpRequest(ctx, id, binding, bs, factor, meta)
	if perr != nil {
		return Result{Page: perr}, OTPView{}, nil
	}
	if !checkCSRF(binding, id, csrf) {
		return pageErr(400, "Form expired", "The form was not valid for this sign-in. Go back to the application and start again.", errors.New("csrf token mismatch")), OTPView{}, nil
	}
	view, perr := b.otpView(ctx, req, client, binding, factor)
	if perr != nil {
		return Result{Page: perr}, OTPView{}, nil
	}
	event := b.mfaEvent(ctx, req, client, meta, factor)
	if err := b.limitFactor(ctx, req.UserID); err != nil {
		res, err := b.limitFailed(err, event)
		return res, view, err
	}
	raw, err := b.eph.Get(ctx, otpKey(req.ID, factor))
	var ch otpChallenge
	if err == nil {
		err = json.Unmarshal(raw, &ch)
	}
	if err != nil {
		event("mfa.challenge.failed", map[string]any{"reason": "no_code"})
		view.CodeSent = false
		return Result{}, view, ErrOTPNotSent
	}
	var verified *mfa.Verification
	err = b.mfa.Store.UpdateMFACredential(ctx, ch.CredentialID, func(cur mfa.Credential) (mfa.Credential, error) {
		v, err := f.Verify(ctx, cur, ch.State, code)
		verified = &v
		return v.Credential, err
	})
	if err == nil {
		// Single use: of two answers with the right code, one takes it.
		if _, terr := b.eph.Take(ctx, otpKey(req.ID, factor)); terr != nil {
			err = mfa.ErrReplay
		}
	}
	if err != nil {
		if errors.Is(err, mfa.ErrReplay) {
			event("mfa.challenge.failed", map[string]any{"reason": "replay"})
			return Result{}, view, ErrOTPNotSent
		}
		if !errors.Is(err, mfa.ErrInvalidCode) {
			return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err), OTPView{}, nil
		}
		event("mfa.challenge.failed", map[string]any{"reason": "invalid"})
		if n, ierr := b.eph.Incr(ctx, otpTries(req.ID, factor), otp.TTL); ierr == nil && n >= otp.MaxAttempts {
			b.eph.Delete(ctx, otpKey(req.ID, factor))
			view.CodeSent = false
			return Result{}, view, ErrOTPNotSent
		}
		return Result{}, view, ErrMFAInvalidCode
	}
	b.eph.Delete(ctx, otpTries(req.ID, factor))
	event("mfa.challenge.succeeded", map[string]any{"credential_id": ch.CredentialID})
	return b.afterStep(ctx, req, client, bs, session.Step{Factor: factor, AMR: verified.AMR, At: b.now()}), OTPView{}, nil
}

// mfaEvent returns a writer of second-factor events of req.
func (b *Broker) mfaEvent(ctx context.Context, req *AuthRequest, client storage.Client, meta RequestMeta, factor string) func(string, map[string]any) {
	return func(typ string, data map[string]any) {
		if data == nil {
			data = map[string]any{}
		}
		data["factor"] = factor
		b.audit(ctx, storage.Event{Type: typ, Actor: "user:" + req.UserID, UserID: req.UserID, ClientID: client.ID,
			IP: meta.IP, UserAgent: meta.UserAgent, RequestID: meta.RequestID, Data: data})
	}
}

// limitFailed turns a limiter answer into the page's error: a
// *RateLimitedError (event mfa.rate_limited), or the store's outage.
func (b *Broker) limitFailed(err error, event func(string, map[string]any)) (Result, error) {
	var rl *RateLimitedError
	if errors.As(err, &rl) {
		event("mfa.rate_limited", nil)
		return Result{}, rl
	}
	return pageErr(503, "Try again later", "Second-factor checks are unavailable right now. Please try again shortly.", err), nil
}

// allowRule counts one event of rule for key: a *RateLimitedError when
// over the limit; nil when allowed or limits are off.
func (b *Broker) allowRule(ctx context.Context, rule ratelimit.Rule, key string) error {
	if b.limits.Limiter == nil {
		return nil
	}
	d, err := b.limits.Limiter.Allow(ctx, rule, key)
	if err != nil {
		return err
	}
	if !d.Allowed {
		return &RateLimitedError{RetryAfter: d.RetryAfter}
	}
	return nil
}

// limitSend counts one code sent to the user (limits.otpSendPerAccount).
func (b *Broker) limitSend(ctx context.Context, userID string) error {
	return b.allowRule(ctx, b.limits.Rules.OTPSendAccount, "user:"+userID)
}

// limitEnroll counts one enrollment start (limits.enrollmentPerAccount).
func (b *Broker) limitEnroll(ctx context.Context, userID string) error {
	return b.allowRule(ctx, b.limits.Rules.EnrollmentAccount, "user:"+userID)
}

// otpEnrollable lists the code factors the user may enroll now.
func (b *Broker) otpEnrollable(req *AuthRequest) []string {
	var out []string
	for _, t := range []string{mfa.TypeSMS, mfa.TypeEmail} {
		if _, err := b.mfa.Factors.Get(t); err == nil && slices.Contains(req.MFAFactors, t) {
			out = append(out, t)
		}
	}
	return out
}

// OTPEnrollPage shows the enrollment form of factor ("" the first code
// factor offered): the address, or, once a code was sent, the code.
func (b *Broker) OTPEnrollPage(ctx context.Context, id, binding string, bs BrowserSessions, factor string, meta RequestMeta) (OTPView, *PageError) {
	req, client, perr := b.mfaRequest(ctx, id, binding, bs, meta)
	if perr != nil {
		return OTPView{}, perr
	}
	if factor == "" {
		if e := b.otpEnrollable(req); len(e) > 0 {
			factor = e[0]
		}
	}
	if !slices.Contains(b.otpEnrollable(req), factor) {
		return OTPView{}, &PageError{Status: 400, Title: "Not available", Message: "That second factor is not available.", Err: errors.New("otp enroll: factor not offered")}
	}
	return b.otpEnrollView(ctx, req, client, binding, factor)
}

func (b *Broker) otpEnrollView(ctx context.Context, req *AuthRequest, client storage.Client, binding, factor string) (OTPView, *PageError) {
	v := OTPView{MFAView: b.mfaView(req, client, binding), Enrolling: true}
	v.Factor = factor
	for _, t := range b.otpEnrollable(req) {
		if t != factor {
			v.Alternatives = append(v.Alternatives, t)
		}
	}
	if b.mfa.Factors[mfa.TypeTOTP] != nil && slices.Contains(req.MFAFactors, mfa.TypeTOTP) {
		v.Alternatives = append(v.Alternatives, mfa.TypeTOTP)
	}
	if p := req.MFAPending; p != nil && p.UserID == req.UserID && p.Type == factor {
		v.CodeSent = true
		v.Destination = otp.Masked(*p)
		return v, nil
	}
	if factor == mfa.TypeEmail {
		if u, err := b.store.GetUser(ctx, req.UserID); err == nil && u.EmailVerified {
			v.Address = u.Email
		}
	}
	return v, nil
}

// StartOTPEnrollment validates address and sends it a code
// (limits.enrollmentPerAccount and limits.otpSendPerAccount). A bad
// address returns otp.ErrPhoneFormat or otp.ErrEmailFormat with the view.
func (b *Broker) StartOTPEnrollment(ctx context.Context, id, binding, csrf string, bs BrowserSessions, factor, address string, meta RequestMeta) (Result, OTPView, error) {
	req, client, perr := b.mfaRequest(ctx, id, binding, bs, meta)
	if perr != nil {
		return Result{Page: perr}, OTPView{}, nil
	}
	if !checkCSRF(binding, id, csrf) {
		return Result{Page: &PageError{Status: 400, Title: "Form expired", Message: "The form was not valid for this sign-in. Go back to the application and start again.", Err: errors.New("csrf token mismatch")}}, OTPView{}, nil
	}
	if !slices.Contains(b.otpEnrollable(req), factor) {
		return Result{Page: &PageError{Status: 400, Title: "Not available", Message: "That second factor is not available.", Err: errors.New("otp enroll: factor not offered")}}, OTPView{}, nil
	}
	if req.MFAPending != nil && req.MFAPending.Type == factor {
		req.MFAPending = nil // a new address or a resend starts over
	}
	view, perr := b.otpEnrollView(ctx, req, client, binding, factor)
	if perr != nil {
		return Result{Page: perr}, OTPView{}, nil
	}
	view.Address = strings.TrimSpace(address)
	event := b.mfaEvent(ctx, req, client, meta, factor)
	f, _ := b.mfa.Factors.Get(factor)
	if _, err := f.(interface{ Normalize(string) (string, error) }).Normalize(address); err != nil {
		return Result{}, view, err
	}
	for _, limit := range []func(context.Context, string) error{b.limitEnroll, b.limitSend} {
		if err := limit(ctx, req.UserID); err != nil {
			res, err := b.limitFailed(err, event)
			return res, view, err
		}
	}
	e, err := f.BeginEnrollment(notify.WithLang(ctx, meta.Lang), mfa.EnrollmentRequest{UserID: req.UserID, Address: address})
	if err != nil {
		if errors.Is(err, otp.ErrDelivery) {
			event("mfa.otp.send_failed", map[string]any{"error": err.Error(), "enrollment": true})
			b.log.WarnContext(ctx, "send one-time code", "factor", factor, "error", err)
			return Result{}, view, ErrOTPSendFailed
		}
		return Result{Page: &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}}, OTPView{}, nil
	}
	p := e.Pending
	req.MFAPending = &p
	if err := b.saveRequest(ctx, req); err != nil {
		return Result{Page: &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}}, OTPView{}, nil
	}
	b.eph.Delete(ctx, otpTries(req.ID, "enroll"))
	event("mfa.otp.sent", map[string]any{"enrollment": true})
	view.CodeSent, view.Destination, view.Address = true, otp.Masked(p), ""
	return Result{}, view, nil
}

// FinishOTPEnrollment confirms the pending SMS or e-mail enrollment with
// the code sent to it; then as EnrollMFA (recovery codes on first
// enrollment, the step recorded, the login continues).
func (b *Broker) FinishOTPEnrollment(ctx context.Context, id, binding, csrf string, bs BrowserSessions, code string, meta RequestMeta) (Result, OTPView, MFAView, error) {
	req, client, perr := b.mfaRequest(ctx, id, binding, bs, meta)
	if perr != nil {
		return Result{Page: perr}, OTPView{}, MFAView{}, nil
	}
	if !checkCSRF(binding, id, csrf) {
		return pageErr(400, "Form expired", "The form was not valid for this sign-in. Go back to the application and start again.", errors.New("csrf token mismatch")), OTPView{}, MFAView{}, nil
	}
	p := req.MFAPending
	if p == nil || p.UserID != req.UserID || !OTPFactor(p.Type) {
		return pageErr(400, "Enrollment expired", "Start the enrollment again.", errors.New("no pending code enrollment for this user")), OTPView{}, MFAView{}, nil
	}
	factor := p.Type
	view, perr := b.otpEnrollView(ctx, req, client, binding, factor)
	if perr != nil {
		return Result{Page: perr}, OTPView{}, MFAView{}, nil
	}
	event := b.mfaEvent(ctx, req, client, meta, factor)
	if err := b.limitFactor(ctx, req.UserID); err != nil {
		res, err := b.limitFailed(err, event)
		return res, view, MFAView{}, err
	}
	f, _ := b.mfa.Factors.Get(factor)
	cred, err := f.FinishEnrollment(ctx, *p, code)
	switch {
	case errors.Is(err, mfa.ErrInvalidCode):
		event("mfa.enrollment.failed", map[string]any{"reason": "invalid"})
		if n, ierr := b.eph.Incr(ctx, otpTries(req.ID, "enroll"), otp.TTL); ierr == nil && n >= otp.MaxAttempts {
			req.MFAPending = nil
			if err := b.saveRequest(ctx, req); err != nil {
				return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err), OTPView{}, MFAView{}, nil
			}
			view.CodeSent, view.Destination = false, ""
			return Result{}, view, MFAView{}, ErrOTPNotSent
		}
		return Result{}, view, MFAView{}, ErrMFAInvalidCode
	case err != nil:
		return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err), OTPView{}, MFAView{}, nil
	}
	if err := b.mfa.Store.CreateMFACredential(ctx, cred); err != nil {
		return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err), OTPView{}, MFAView{}, nil
	}
	event("mfa.enrolled", map[string]any{"credential_id": cred.ID})
	req.MFAPending = nil
	amr := mfa.AMRSMS
	if factor == mfa.TypeEmail {
		amr = mfa.AMRMail
	}
	res, codes := b.enrolledStep(ctx, req, client, bs, binding, meta, session.Step{Factor: factor, AMR: []string{amr}, At: b.now()})
	return res, OTPView{}, codes, nil
}
