package broker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/latchkeyid/latchkey/mfa"
	mfawebauthn "github.com/latchkeyid/latchkey/mfa/webauthn"
	"github.com/latchkeyid/latchkey/session"
	"github.com/latchkeyid/latchkey/storage"
)

// Adding a second factor from the account page (docs/accounts.md
// "Adding a second factor"): an authenticator app (TOTP) or a security
// key or passkey (WebAuthn). Both begin with a fresh authentication (the
// freshAuth rule of the other sensitive forms) and keep what is pending
// in the ephemeral store under the session's public id: the TOTP pending
// credential (its seed sealed by the factor) until a valid code confirms
// it, the WebAuthn ceremony until the browser answers it, once.

// How long a pending addition waits: time to scan a QR code, or for the
// browser's ceremony.
const (
	accountTOTPTTL     = 10 * time.Minute
	accountWebAuthnTTL = 5 * time.Minute
)

// defaultTOTPLabel names an authenticator app when the user gives no name
// (as at sign-in).
const defaultTOTPLabel = "authenticator app"

// Errors of adding a second factor, shown on the page again.
var (
	// ErrAccountEnrollExpired: nothing is pending for this session (it
	// expired, was finished already, or was begun in another session).
	ErrAccountEnrollExpired = errors.New("this set-up has expired or was already finished; start again from your account page")
)

// AccountEnrollView is what the pages that add a second factor show.
type AccountEnrollView struct {
	CSRF string
	// Account is the user's name in the authenticator.
	Account string
	// TOTP: the secret as text and the QR code as a data: URL; shown,
	// never stored readable.
	Secret    string
	QRDataURL string
	// WebAuthn: the ceremony's options for the browser (JSON; the
	// challenge is kept on the server).
	Options string
	// Label is the name in the form: suggested, or as the user typed it.
	Label string
}

// pendingFactor is an addition in progress, in the ephemeral store.
type pendingFactor struct {
	UserID   string          `json:"user_id"`
	SID      string          `json:"sid"`
	TOTP     *mfa.Credential `json:"totp,omitempty"`
	WebAuthn []byte          `json:"webauthn,omitempty"`
}

func pendingFactorKey(typ, sid string) string { return "account-factor:" + typ + ":" + sid }

// Answers for a factor that is not enabled here.
var (
	errTOTPOff     = &PageError{Status: 404, Title: "Not found", Message: "Authenticator apps are not available here."}
	errWebAuthnOff = &PageError{Status: 404, Title: "Not found", Message: "Security keys and passkeys are not available here."}
)

// offerFactors says on view which factors the user may add: the
// registered ones.
func (b *Broker) offerFactors(view *ProfileView) {
	view.CanAddTOTP = b.accountTOTP() != nil
	view.CanAddWebAuthn = b.webauthnFactor() != nil
}

// totpEnroller is the TOTP factor as adding one needs it: it shows a
// pending credential's secret again (mfa/totp).
type totpEnroller interface {
	mfa.Factor
	displayer
}

// accountTOTP returns the registered TOTP factor, or nil.
func (b *Broker) accountTOTP() totpEnroller {
	if b.mfa == nil {
		return nil
	}
	f, _ := b.mfa.Factors[mfa.TypeTOTP].(totpEnroller)
	return f
}

// putPending keeps p for its session.
func (b *Broker) putPending(ctx context.Context, typ string, p pendingFactor, ttl time.Duration) error {
	v, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode pending %s: %w", typ, err)
	}
	if err := b.eph.Put(ctx, pendingFactorKey(typ, p.SID), v, ttl); err != nil {
		return fmt.Errorf("store pending %s: %w", typ, err)
	}
	return nil
}

// pending reads (take: removes, once) what is pending for the session
// and user: ErrAccountEnrollExpired when nothing is.
func (b *Broker) pending(ctx context.Context, typ string, sess session.Session, u storage.User, take bool) (pendingFactor, error) {
	get := b.eph.Get
	if take {
		get = b.eph.Take
	}
	v, err := get(ctx, pendingFactorKey(typ, sess.SID))
	if errors.Is(err, storage.ErrNotFound) {
		return pendingFactor{}, ErrAccountEnrollExpired
	}
	if err != nil {
		return pendingFactor{}, serverError(err)
	}
	var p pendingFactor
	if err := json.Unmarshal(v, &p); err != nil || p.UserID != u.ID || p.SID != sess.SID {
		return pendingFactor{}, ErrAccountEnrollExpired
	}
	return p, nil
}

// factorEvent audits typ of the account page for factor.
func (b *Broker) factorEvent(ctx context.Context, typ, factor, userID string, meta RequestMeta, data map[string]any) {
	if data == nil {
		data = map[string]any{}
	}
	data["factor"], data["via"] = factor, "account"
	b.accountEvent(ctx, typ, userID, meta, data)
}

// limitAdd counts one check of an addition in the factor limit
// (limits.factorPerAccount): a *RateLimitedError over it (audited), a
// page error when the limiter fails.
func (b *Broker) limitAdd(ctx context.Context, factor, userID string, meta RequestMeta) error {
	err := b.limitFactor(ctx, userID)
	var rl *RateLimitedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &rl):
		b.factorEvent(ctx, "mfa.rate_limited", factor, userID, meta, nil)
		return rl
	}
	return pageError{&PageError{Status: 503, Title: "Try again later", Message: "Second-factor checks are unavailable right now. Please try again shortly.", Err: err}}
}

// Messages after a factor is added.
const (
	msgTOTPAdded     = "The authenticator app is added."
	msgWebAuthnAdded = "The security key or passkey is added."
	msgAddedCodes    = "The second factor is added. Here are your recovery codes: each signs you in once if you lose your second factors. They are shown only once."
)

// factorAdded ends an addition whose credential is stored: a user
// without recovery codes gets a set, shown once on the page.
func (b *Broker) factorAdded(ctx context.Context, view ProfileView, sess session.Session, u storage.User, meta RequestMeta, msg string) (ProfileView, error) {
	codes, err := b.ensureRecovery(ctx, u.ID)
	if err != nil {
		b.log.ErrorContext(ctx, "make recovery codes", slog.Any("error", err))
	}
	if len(codes) > 0 {
		b.factorEvent(ctx, "mfa.enrolled", mfa.TypeRecovery, u.ID, meta, nil)
		msg = msgAddedCodes
	}
	view, err = b.accountDone(ctx, view, sess, msg)
	view.RecoveryCodes = codes
	return view, err
}

// totpView is the page of a pending TOTP credential.
func (b *Broker) totpView(f totpEnroller, csrf string, u storage.User, pending mfa.Credential, label string) (AccountEnrollView, error) {
	account := totpAccount(u)
	e, err := f.Display(pending, account)
	if err != nil {
		return AccountEnrollView{}, err
	}
	return AccountEnrollView{CSRF: csrf, Account: account, Secret: e.Secret, Label: label,
		QRDataURL: "data:image/png;base64," + base64.StdEncoding.EncodeToString(e.QRCode)}, nil
}

// beginAdd is the start of an addition of factor: the factor is on
// (else off, a 404 page), the form's session and CSRF token, a fresh
// authentication, and one start counted by limits.enrollmentPerAccount.
func (b *Broker) beginAdd(ctx context.Context, factor string, on bool, off *PageError, cookie, csrf, current string, meta RequestMeta) (ProfileView, session.Session, storage.User, error) {
	if !on {
		return ProfileView{}, session.Session{}, storage.User{}, pageError{off}
	}
	view, sess, u, err := b.accountAction(ctx, cookie, csrf)
	if err == nil {
		err = b.freshAuth(ctx, sess, u, current, meta)
	}
	if err != nil {
		return view, sess, u, err
	}
	var rl *RateLimitedError
	switch err := b.limitEnroll(ctx, u.ID); {
	case errors.As(err, &rl):
		b.factorEvent(ctx, "mfa.rate_limited", factor, u.ID, meta, map[string]any{"limit": "enrollment"})
		return view, sess, u, rl
	case err != nil:
		return view, sess, u, pageError{&PageError{Status: 503, Title: "Try again later", Message: "Second-factor checks are unavailable right now. Please try again shortly.", Err: err}}
	}
	return view, sess, u, nil
}

// AccountBeginTOTP begins adding an authenticator app for the signed-in
// user after a fresh authentication: a new secret, pending for this
// session, and the page that shows it. Errors come with the account
// page's view.
func (b *Broker) AccountBeginTOTP(ctx context.Context, cookie, csrf, current string, meta RequestMeta) (AccountEnrollView, ProfileView, error) {
	f := b.accountTOTP()
	view, sess, u, err := b.beginAdd(ctx, mfa.TypeTOTP, f != nil, errTOTPOff, cookie, csrf, current, meta)
	if err != nil {
		return AccountEnrollView{}, view, err
	}
	e, err := f.BeginEnrollment(ctx, mfa.EnrollmentRequest{UserID: u.ID, AccountName: totpAccount(u), Label: defaultTOTPLabel})
	if err == nil {
		err = b.putPending(ctx, mfa.TypeTOTP, pendingFactor{UserID: u.ID, SID: sess.SID, TOTP: &e.Pending}, accountTOTPTTL)
	}
	if err != nil {
		return AccountEnrollView{}, view, serverError(err)
	}
	ev, err := b.totpView(f, view.CSRF, u, e.Pending, "")
	if err != nil {
		return AccountEnrollView{}, view, serverError(err)
	}
	return ev, view, nil
}

// AccountConfirmTOTP confirms the session's pending authenticator app
// with a first code and stores it under label (empty: "authenticator
// app"); the first second factor brings a set of recovery codes, shown
// once (view.RecoveryCodes). A wrong code (ErrMFAInvalidCode, counted by
// the factor limit), a bad label (ErrAccountLabel) or the limit
// (*RateLimitedError) return the TOTP page's view to show again; with
// nothing pending, ErrAccountEnrollExpired and the account page's view.
func (b *Broker) AccountConfirmTOTP(ctx context.Context, cookie, csrf, code, label string, meta RequestMeta) (AccountEnrollView, ProfileView, error) {
	f := b.accountTOTP()
	if f == nil {
		return AccountEnrollView{}, ProfileView{}, pageError{errTOTPOff}
	}
	view, sess, u, err := b.accountAction(ctx, cookie, csrf)
	if err != nil {
		return AccountEnrollView{}, view, err
	}
	p, err := b.pending(ctx, mfa.TypeTOTP, sess, u, false)
	if err == nil && p.TOTP == nil {
		err = ErrAccountEnrollExpired
	}
	if err != nil {
		return AccountEnrollView{}, view, err
	}
	name, okLabel := cleanLabel(label)
	if name == "" {
		name, okLabel = defaultTOTPLabel, true
	}
	keep := ""
	if okLabel && name != defaultTOTPLabel {
		keep = name
	}
	ev, err := b.totpView(f, view.CSRF, u, *p.TOTP, keep)
	if err != nil {
		return AccountEnrollView{}, view, serverError(err)
	}
	if !okLabel {
		return ev, view, ErrAccountLabel
	}
	if err := b.limitAdd(ctx, mfa.TypeTOTP, u.ID, meta); err != nil {
		return ev, view, err
	}
	cred, err := f.FinishEnrollment(ctx, *p.TOTP, code)
	switch {
	case errors.Is(err, mfa.ErrInvalidCode), errors.Is(err, mfa.ErrReplay):
		b.factorEvent(ctx, "mfa.enrollment.failed", mfa.TypeTOTP, u.ID, meta, map[string]any{"reason": "invalid"})
		return ev, view, ErrMFAInvalidCode
	case err != nil:
		return AccountEnrollView{}, view, serverError(err)
	}
	// Once: of two confirmations, one takes the pending credential.
	if _, err := b.pending(ctx, mfa.TypeTOTP, sess, u, true); err != nil {
		return AccountEnrollView{}, view, err
	}
	cred.Label = name
	if err := b.mfa.Store.CreateMFACredential(ctx, cred); err != nil {
		return AccountEnrollView{}, view, serverError(err)
	}
	b.factorEvent(ctx, "mfa.enrolled", mfa.TypeTOTP, u.ID, meta, map[string]any{"credential_id": cred.ID})
	view, err = b.factorAdded(ctx, view, sess, u, meta, msgTOTPAdded)
	return AccountEnrollView{}, view, err
}

// AccountBeginWebAuthn begins registering a security key or passkey for
// the signed-in user after a fresh authentication: the ceremony is kept
// for this session (once, accountWebAuthnTTL) and its options go to the
// page's script.
func (b *Broker) AccountBeginWebAuthn(ctx context.Context, cookie, csrf, current string, meta RequestMeta) (AccountEnrollView, ProfileView, error) {
	f := b.webauthnFactor()
	view, sess, u, err := b.beginAdd(ctx, mfa.TypeWebAuthn, f != nil, errWebAuthnOff, cookie, csrf, current, meta)
	if err != nil {
		return AccountEnrollView{}, view, err
	}
	creds, err := b.mfa.Store.ListMFACredentials(ctx, u.ID)
	if err != nil {
		return AccountEnrollView{}, view, serverError(err)
	}
	names := accountNames(u)
	c, err := f.BeginRegistration(ctx, names, creds)
	if err == nil {
		err = b.putPending(ctx, mfa.TypeWebAuthn, pendingFactor{UserID: u.ID, SID: sess.SID, WebAuthn: c.State}, accountWebAuthnTTL)
	}
	if err != nil {
		return AccountEnrollView{}, view, serverError(err)
	}
	return AccountEnrollView{CSRF: view.CSRF, Account: names.Name, Options: string(c.Options), Label: suggestedPasskeyLabel(creds)}, view, nil
}

// AccountFinishWebAuthn checks the browser's registration response
// against the session's ceremony, taken once, and stores the
// authenticator under label (mfa.webauthn's allowed models and
// residentKey apply as at sign-in); the first second factor brings
// recovery codes, shown once. A refused answer — no ceremony for this
// session (another session's, replayed, expired), another challenge,
// origin or RP ID, a model not allowed — stores nothing, writes
// mfa.enrollment.failed with the reason and returns ErrWebAuthnFailed;
// a bad name ErrWebAuthnLabel; the limit a *RateLimitedError. Every
// error comes with the account page's view.
func (b *Broker) AccountFinishWebAuthn(ctx context.Context, cookie, csrf, label, response string, meta RequestMeta) (ProfileView, error) {
	f := b.webauthnFactor()
	if f == nil {
		return ProfileView{}, pageError{errWebAuthnOff}
	}
	view, sess, u, err := b.accountAction(ctx, cookie, csrf)
	if err != nil {
		return view, err
	}
	p, err := b.pending(ctx, mfa.TypeWebAuthn, sess, u, true)
	if err != nil && !errors.Is(err, ErrAccountEnrollExpired) {
		return view, err
	}
	// Without a ceremony (p.WebAuthn nil) FinishRegistration refuses the
	// answer: audited as no_ceremony like any other refusal.
	label, okLabel := cleanLabel(label)
	if !okLabel {
		return view, ErrWebAuthnLabel
	}
	if err := b.limitAdd(ctx, mfa.TypeWebAuthn, u.ID, meta); err != nil {
		return view, err
	}
	creds, err := b.mfa.Store.ListMFACredentials(ctx, u.ID)
	if err != nil {
		return view, serverError(err)
	}
	v, err := f.FinishRegistration(ctx, accountNames(u), p.WebAuthn, label, response, creds)
	switch {
	case err != nil && failedCheck(err):
		b.log.InfoContext(ctx, "webauthn registration refused", slog.String("user", u.ID), slog.Any("error", err))
		b.factorEvent(ctx, "mfa.enrollment.failed", mfa.TypeWebAuthn, u.ID, meta, map[string]any{"reason": reasonOf(err)})
		return view, ErrWebAuthnFailed
	case err != nil:
		return view, serverError(err)
	}
	if err := b.mfa.Store.CreateMFACredential(ctx, v.Credential); err != nil {
		return view, serverError(err)
	}
	b.factorEvent(ctx, "mfa.enrolled", mfa.TypeWebAuthn, u.ID, meta, map[string]any{"credential_id": v.Credential.ID, "label": label,
		"discoverable": mfawebauthn.Discoverable(v.Credential)})
	return b.factorAdded(ctx, view, sess, u, meta, msgWebAuthnAdded)
}
