package broker

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/latchkeyid/latchkey/internal/notify/email"
	"github.com/latchkeyid/latchkey/internal/ratelimit"
	"github.com/latchkeyid/latchkey/mfa/otp"
	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/local"
	"github.com/latchkeyid/latchkey/storage"
)

// Paths of the account pages (web/account.go).
const (
	PathAccount       = "/account"
	PathVerifyEmail   = "/account/verify-email"
	PathForgot        = "/account/forgot"
	PathResetPassword = "/account/reset"
)

// AccountUsers is the user data the account flows read and change.
type AccountUsers interface {
	GetUser(ctx context.Context, id string) (storage.User, error)
	ListUsersByEmail(ctx context.Context, email string) ([]storage.User, error)
	UpdateUser(ctx context.Context, id string, fn func(storage.User) (storage.User, error)) error
}

// Mailer sends templated e-mail (internal/notify/email.Sender).
type Mailer interface {
	Send(ctx context.Context, m email.Message) error
}

// PasswordHasher hashes new passwords (providers/local.Hasher).
type PasswordHasher interface {
	Hash(ctx context.Context, password string) (string, error)
}

// AccountOptions turn on the local account's e-mail flows and password
// change (Options.Accounts; docs/accounts.md).
type AccountOptions struct {
	Users  AccountUsers
	Mailer Mailer
	Hasher PasswordHasher
	Policy *local.PasswordPolicy // nil: the defaults
	// LinkKey signs the links' tokens (at least 32 bytes, shared by all
	// replicas; cmd derives it from the first key-encryption key).
	LinkKey []byte
	// VerifyTTL is how long an e-mail verification link works (default
	// 24h); ResetTTL a password-reset link (default 1h).
	VerifyTTL time.Duration
	ResetTTL  time.Duration
	Product   string // in the messages; default "Latchkey"
	// Lang is the messages' language when the request that causes one
	// has none (RequestMeta.Lang; the CLI); default "en".
	Lang string
	// Registration turns on self-registration (broker/register.go).
	Registration RegistrationOptions
}

type accounts struct {
	AccountOptions
	wg sync.WaitGroup
}

func newAccounts(o *AccountOptions) (*accounts, error) {
	if o == nil {
		return nil, nil
	}
	if o.Users == nil || o.Hasher == nil {
		return nil, errors.New("broker: accounts need Users and Hasher")
	}
	if len(o.LinkKey) < 32 {
		return nil, errors.New("broker: accounts: LinkKey must be at least 32 bytes")
	}
	a := &accounts{AccountOptions: *o}
	if a.Policy == nil {
		a.Policy = &local.PasswordPolicy{}
	}
	if a.VerifyTTL <= 0 {
		a.VerifyTTL = 24 * time.Hour
	}
	if a.ResetTTL <= 0 {
		a.ResetTTL = time.Hour
	}
	if a.Product == "" {
		a.Product = "Latchkey"
	}
	return a, nil
}

// Errors of the account pages, shown on the page again.
var (
	ErrAccountWrongPassword = errors.New("the current password is not correct")
	ErrAccountMismatch      = errors.New("the two new passwords are not the same")
	ErrAccountNoPassword    = errors.New("this account signs in through another service and has no password here")
)

// Link kinds.
const (
	linkVerify = "verify-email"
	linkReset  = "reset-password"
)

// linkRecord is what a link's token stands for, in the ephemeral store
// under the SHA-256 of its random part until it is used or expires.
type linkRecord struct {
	Kind   string `json:"kind"`
	UserID string `json:"user_id"`
	Email  string `json:"email"`
	// RequestID is the sign-in request a verification link continues
	// (self-registration, a refused sign-in): after the link is used the
	// page links back to its login page.
	RequestID string `json:"request_id,omitempty"`
	// From is the account's address when a verification link was sent:
	// the link is void once the address is another (a second change, or
	// a confirmed one), so a superseded link (a mistyped address's) never
	// takes the account's address over. nil: a link from before it.
	From *string `json:"from,omitempty"`
}

// errLinkSuperseded: the account's address changed since the link was
// sent.
var errLinkSuperseded = errors.New("the account's address changed since the link was sent")

// linkCurrent reports whether rec still applies to u: a verification
// link while the address is the one it was sent from, a reset link
// while the address is the one it was sent to.
func linkCurrent(rec linkRecord, u storage.User) bool {
	switch rec.Kind {
	case linkVerify:
		return rec.From == nil || *rec.From == u.Email
	case linkReset:
		return rec.Email == u.Email
	}
	return false
}

func linkKey(random string) string {
	sum := sha256.Sum256([]byte(random))
	return "account-link:" + hex.EncodeToString(sum[:])
}

func (a *accounts) sign(kind, random string) string {
	m := hmac.New(sha256.New, a.LinkKey)
	m.Write([]byte("latchkey-account-link\x00" + kind + "\x00" + random))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// newLink stores a record and returns the token for the link: 256 random
// bits and an HMAC over them and the kind, so a token of one kind never
// works for another and a forged one is refused without a store lookup.
func (b *Broker) newLink(ctx context.Context, rec linkRecord, ttl time.Duration) (string, error) {
	raw := make([]byte, 32)
	if _, err := io.ReadFull(b.rand, raw); err != nil {
		return "", fmt.Errorf("link token: read random: %w", err)
	}
	random := base64.RawURLEncoding.EncodeToString(raw)
	v, err := json.Marshal(rec)
	if err != nil {
		return "", err
	}
	if err := b.eph.Put(ctx, linkKey(random), v, ttl); err != nil {
		return "", fmt.Errorf("store link token: %w", err)
	}
	return random + "." + b.acct.sign(rec.Kind, random), nil
}

// readLink checks a token's signature and returns its record; take
// removes it (single use: of two callers, one gets it).
func (b *Broker) readLink(ctx context.Context, kind, token string, take bool) (linkRecord, error) {
	random, sig, ok := strings.Cut(token, ".")
	if !ok || len(token) > 200 || subtle.ConstantTimeCompare([]byte(sig), []byte(b.acct.sign(kind, random))) != 1 {
		return linkRecord{}, storage.ErrNotFound
	}
	get := b.eph.Get
	if take {
		get = b.eph.Take
	}
	v, err := get(ctx, linkKey(random))
	if err != nil {
		return linkRecord{}, err
	}
	var rec linkRecord
	if err := json.Unmarshal(v, &rec); err != nil || rec.Kind != kind {
		return linkRecord{}, storage.ErrNotFound
	}
	return rec, nil
}

func (b *Broker) accountEvent(ctx context.Context, typ, userID string, meta RequestMeta, data map[string]any) {
	actor := "system"
	if userID != "" {
		actor = "user:" + userID
	}
	b.audit(ctx, storage.Event{Type: typ, Actor: actor, UserID: userID, ConnectorID: LocalConnectorID,
		IP: meta.IP, UserAgent: meta.UserAgent, RequestID: meta.RequestID, Data: data})
}

// PasswordMinLength is the policy's minimum, for the forms to say.
func (b *Broker) PasswordMinLength() int {
	if b.acct == nil || b.acct.Policy.MinLength <= 0 {
		return local.DefaultMinPasswordLength
	}
	return b.acct.Policy.MinLength
}

// AccountsEnabled reports whether the account e-mail flows are on.
func (b *Broker) AccountsEnabled() bool { return b.acct != nil }

// AccountMailEnabled reports whether the account e-mails are on (a
// Mailer): verification, password reset, address change, registration.
// Without it the account page still works.
func (b *Broker) AccountMailEnabled() bool { return b.acct != nil && b.acct.Mailer != nil }

func (b *Broker) mail(ctx context.Context, to, lang, template, name, link string, ttl time.Duration) error {
	return b.sendMail(ctx, to, lang, template, map[string]any{"Name": name, "Link": link, "ValidFor": ttl})
}

// sendMail sends template in lang (meta.Lang; "" the configured one) with
// the product's name added to data.
func (b *Broker) sendMail(ctx context.Context, to, lang, template string, data map[string]any) error {
	if lang == "" {
		lang = b.acct.Lang
	}
	data["Product"] = b.acct.Product
	return b.acct.Mailer.Send(ctx, email.Message{To: to, Lang: lang, Template: template, Data: data})
}

// displayName is the name a mail greets ("": the mail says "Hello,").
func displayName(u storage.User) string {
	if u.Name != "" {
		return u.Name
	}
	return u.Username
}

// SendEmailVerification mails user userID a link that confirms address
// (empty: the user's current address). On a change of address the
// account keeps its old address until the link is used. A failed send
// writes user.email.verification_failed and returns the error.
func (b *Broker) SendEmailVerification(ctx context.Context, userID, address string, meta RequestMeta) error {
	return b.sendEmailVerification(ctx, userID, address, "", meta)
}

// sendEmailVerification is SendEmailVerification for a link that, once
// used, offers to continue sign-in request reqID ("": none).
func (b *Broker) sendEmailVerification(ctx context.Context, userID, address, reqID string, meta RequestMeta) error {
	if !b.AccountMailEnabled() {
		return errors.New("account e-mail is not configured")
	}
	u, err := b.acct.Users.GetUser(ctx, userID)
	if err != nil {
		return fmt.Errorf("load user: %w", err)
	}
	if address == "" {
		address = u.Email
	}
	if address, err = otp.NormalizeEmail(address); err != nil {
		return err
	}
	from := u.Email
	tok, err := b.newLink(ctx, linkRecord{Kind: linkVerify, UserID: u.ID, Email: address, RequestID: reqID, From: &from}, b.acct.VerifyTTL)
	if err != nil {
		return err
	}
	link := b.issuer + PathVerifyEmail + "?token=" + url.QueryEscape(tok)
	if err := b.mail(ctx, address, meta.Lang, email.TemplateVerifyEmail, displayName(u), link, b.acct.VerifyTTL); err != nil {
		b.accountEvent(ctx, "user.email.verification_failed", u.ID, meta, map[string]any{"error": err.Error()})
		return err
	}
	b.accountEvent(ctx, "user.email.verification_sent", u.ID, meta, map[string]any{"change": address != u.Email})
	return nil
}

// EmailLinkView is what the pages behind an e-mail link show.
type EmailLinkView struct {
	Token    string // only into the form of the same page
	Username string
	Email    string // masked
	Done     bool
	Message  string
	// Continue is the login page of the sign-in request the link belongs
	// to, while that request lives ("": none).
	Continue string
}

var errLinkInvalid = &PageError{Status: 400, Title: "Link not valid", Message: "This link is not valid any more: it was used already or has expired. Ask for a new one."}

// VerifyEmailPage shows the confirmation form of an e-mail verification
// link (the GET does not use the link: mail scanners follow links).
func (b *Broker) VerifyEmailPage(ctx context.Context, token string) (EmailLinkView, *PageError) {
	if !b.AccountMailEnabled() {
		return EmailLinkView{}, errLinkInvalid
	}
	rec, err := b.readLink(ctx, linkVerify, token, false)
	if err != nil {
		return EmailLinkView{}, errLinkInvalid
	}
	if u, err := b.acct.Users.GetUser(ctx, rec.UserID); err != nil || !linkCurrent(rec, u) {
		return EmailLinkView{}, errLinkInvalid
	}
	return EmailLinkView{Token: token, Email: otp.MaskEmail(rec.Email)}, nil
}

// ConfirmEmail uses a verification link: the account's address becomes
// the link's, verified.
func (b *Broker) ConfirmEmail(ctx context.Context, token string, meta RequestMeta) (EmailLinkView, *PageError) {
	if !b.AccountMailEnabled() {
		return EmailLinkView{}, errLinkInvalid
	}
	rec, err := b.readLink(ctx, linkVerify, token, true)
	if err != nil {
		return EmailLinkView{}, errLinkInvalid
	}
	var old string
	err = b.acct.Users.UpdateUser(ctx, rec.UserID, func(u storage.User) (storage.User, error) {
		if !linkCurrent(rec, u) {
			return u, errLinkSuperseded
		}
		old = u.Email
		u.Email, u.EmailVerified, u.UpdatedAt = rec.Email, true, b.now()
		return u, nil
	})
	if errors.Is(err, errLinkSuperseded) || errors.Is(err, storage.ErrNotFound) {
		return EmailLinkView{}, withCause(errLinkInvalid, err)
	}
	if err != nil {
		return EmailLinkView{}, &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}
	}
	b.accountEvent(ctx, "user.email.verified", rec.UserID, meta, map[string]any{"changed": old != rec.Email})
	view := EmailLinkView{Done: true, Email: otp.MaskEmail(rec.Email), Message: "Your e-mail address is confirmed."}
	if rec.RequestID != "" {
		if _, err := b.eph.Get(ctx, requestKey(rec.RequestID)); err == nil {
			view.Continue = "/" + string(StepLogin) + "?req=" + url.QueryEscape(rec.RequestID)
		}
	}
	return view, nil
}

// RequestPasswordReset mails a reset link to every active local account
// with that address. It answers the same whether or not one exists (the
// mail is sent in the background, so the time taken says nothing either);
// only the limits per IP (limits.recoveryPerIP) and per address
// (limits.recoveryPerAccount) answer otherwise, for every address alike.
func (b *Broker) RequestPasswordReset(ctx context.Context, address string, meta RequestMeta) error {
	if !b.AccountMailEnabled() {
		return errors.New("account e-mail is not configured")
	}
	address = strings.TrimSpace(address)
	if len(address) > 254 {
		address = address[:254]
	}
	if addr, err := netip.ParseAddr(meta.IP); err == nil {
		if err := b.allowRule(ctx, b.limits.Rules.RecoveryIP, ratelimit.IPKey(addr)); err != nil {
			return err
		}
	}
	if err := b.allowRule(ctx, b.limits.Rules.RecoveryAccount, addressKey(address)); err != nil {
		return err
	}
	b.accountEvent(ctx, "user.password.reset_requested", "", meta, nil)
	b.acct.wg.Add(1)
	go func() {
		defer b.acct.wg.Done()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		b.sendResets(ctx, address, meta)
	}()
	return nil
}

// WaitAccountMail waits for the reset mails being sent (tests, shutdown).
func (b *Broker) WaitAccountMail() {
	if b.acct != nil {
		b.acct.wg.Wait()
	}
}

func (b *Broker) sendResets(ctx context.Context, address string, meta RequestMeta) {
	norm, err := otp.NormalizeEmail(address)
	if err != nil {
		return
	}
	users, err := b.acct.Users.ListUsersByEmail(ctx, norm)
	if err == nil && len(users) == 0 && strings.ToLower(norm) != norm {
		users, err = b.acct.Users.ListUsersByEmail(ctx, strings.ToLower(norm))
	}
	if err != nil {
		b.log.ErrorContext(ctx, "password reset: look up accounts", slog.Any("error", err))
		return
	}
	for _, u := range users {
		if u.Disabled || u.PasswordHash == "" {
			continue
		}
		tok, err := b.newLink(ctx, linkRecord{Kind: linkReset, UserID: u.ID, Email: u.Email}, b.acct.ResetTTL)
		if err != nil {
			b.log.ErrorContext(ctx, "password reset: make link", slog.Any("error", err))
			continue
		}
		link := b.issuer + PathResetPassword + "?token=" + url.QueryEscape(tok)
		if err := b.mail(ctx, u.Email, meta.Lang, email.TemplateResetPassword, displayName(u), link, b.acct.ResetTTL); err != nil {
			b.accountEvent(ctx, "user.password.reset_mail_failed", u.ID, meta, map[string]any{"error": err.Error()})
			b.log.WarnContext(ctx, "password reset: send mail", slog.String("user_id", u.ID), slog.Any("error", err))
			continue
		}
		b.accountEvent(ctx, "user.password.reset_mail_sent", u.ID, meta, nil)
	}
}

// ResetPasswordPage shows the new-password form of a reset link.
func (b *Broker) ResetPasswordPage(ctx context.Context, token string) (EmailLinkView, *PageError) {
	if !b.AccountMailEnabled() {
		return EmailLinkView{}, errLinkInvalid
	}
	rec, err := b.readLink(ctx, linkReset, token, false)
	if err != nil {
		return EmailLinkView{}, errLinkInvalid
	}
	u, err := b.acct.Users.GetUser(ctx, rec.UserID)
	if err != nil || !linkCurrent(rec, u) {
		return EmailLinkView{}, errLinkInvalid
	}
	return EmailLinkView{Token: token, Username: u.Username}, nil
}

// ResetPassword sets a new password through a reset link: the policy is
// checked before the link is used, the link works once, and every session
// of the user ends.
func (b *Broker) ResetPassword(ctx context.Context, token, password, confirm string, meta RequestMeta) (EmailLinkView, error) {
	view, perr := b.ResetPasswordPage(ctx, token)
	if perr != nil {
		return EmailLinkView{}, pageError{perr}
	}
	rec, err := b.readLink(ctx, linkReset, token, false)
	if err != nil {
		return EmailLinkView{}, pageError{errLinkInvalid}
	}
	u, err := b.acct.Users.GetUser(ctx, rec.UserID)
	if err != nil || !linkCurrent(rec, u) {
		return EmailLinkView{}, pageError{errLinkInvalid}
	}
	if err := b.checkNewPassword(u, password, confirm); err != nil {
		return view, err
	}
	hash, err := b.acct.Hasher.Hash(ctx, password)
	if err != nil {
		return EmailLinkView{}, pageError{&PageError{Status: 503, Title: "Try again later", Message: "Please try again in a moment.", Err: err}}
	}
	if _, err := b.readLink(ctx, linkReset, token, true); err != nil {
		return EmailLinkView{}, pageError{errLinkInvalid}
	}
	if err := b.setPassword(ctx, u.ID, hash, rec.Email); err != nil {
		return EmailLinkView{}, pageError{&PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}}
	}
	if !u.EmailVerified {
		b.dropUnprovenAccess(ctx, u, meta)
	}
	n, err := b.EndSessions(ctx, u.ID, "password_reset", "user:"+u.ID)
	if err != nil {
		b.log.ErrorContext(ctx, "password reset: end sessions", slog.Any("error", err))
	}
	b.loginSucceeded(ctx, u.Username) // the lockout of the old password is over
	b.accountEvent(ctx, "user.password.reset", u.ID, meta, map[string]any{"sessions_ended": n})
	return EmailLinkView{Done: true, Username: u.Username, Message: "Your password is changed, and you are signed out everywhere. Sign in again from your application."}, nil
}

// dropUnprovenAccess removes the second factors and linked sign-in
// services of u, whose address a password reset just proved for the
// first time: whoever set them up had never shown they own the address,
// and the account may have been made with someone else's (account
// pre-hijacking: the owner resets the password and takes the account
// over; what the squatter set up must not keep a way in). Failures are
// logged: the reset itself stands.
func (b *Broker) dropUnprovenAccess(ctx context.Context, u storage.User, meta RequestMeta) {
	var creds []storage.MFACredential
	var ids []storage.Identity
	err := b.store.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
		var err error
		if creds, err = tx.ListMFACredentials(ctx, u.ID); err != nil {
			return err
		}
		for _, c := range creds {
			if err := tx.DeleteMFACredential(ctx, c.ID); err != nil {
				return err
			}
		}
		if ids, err = tx.ListUserIdentities(ctx, u.ID); err != nil {
			return err
		}
		for _, id := range ids {
			if err := tx.DeleteIdentity(ctx, id.ConnectorID, id.Subject); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.log.ErrorContext(ctx, "password reset of an unconfirmed address: remove factors and links", slog.Any("error", err))
		return
	}
	for _, c := range creds {
		b.accountEvent(ctx, "mfa.removed", u.ID, meta, map[string]any{"credential_id": c.ID, "type": c.Type, "reason": "unconfirmed_address_reset"})
	}
	for _, id := range ids {
		b.accountEvent(ctx, "identity.unlinked", u.ID, meta, map[string]any{"connector_id": id.ConnectorID, "reason": "unconfirmed_address_reset"})
	}
}

// pageError carries a page error through an error return.
type pageError struct{ *PageError }

func (e pageError) Error() string { return e.Title }

// AsPageError returns the page error inside err, if any.
func AsPageError(err error) (*PageError, bool) {
	var pe pageError
	if errors.As(err, &pe) {
		return pe.PageError, true
	}
	return nil, false
}

func (b *Broker) checkNewPassword(u storage.User, password, confirm string) error {
	if password != confirm {
		return ErrAccountMismatch
	}
	return b.acct.Policy.Check(password, u.Username, u.Email)
}

// setPassword stores a new hash; verifiedEmail marks the address verified
// when it is still the account's (a reset link proved it).
func (b *Broker) setPassword(ctx context.Context, userID, hash, verifiedEmail string) error {
	return b.acct.Users.UpdateUser(ctx, userID, func(u storage.User) (storage.User, error) {
		u.PasswordHash, u.UpdatedAt = hash, b.now()
		if verifiedEmail != "" && u.Email == verifiedEmail {
			u.EmailVerified = true
		}
		return u, nil
	})
}

// ProfileView is what the account page (/account) shows to the signed-in user.
type ProfileView struct {
	CSRF          string
	Username      string
	Name          string
	Email         string
	EmailVerified bool
	HasPassword   bool
	Message       string
	// The self-service lists (broker/account_manage.go).
	Sessions   []AccountSession
	Identities []AccountIdentity
	Factors    []AccountFactor
	Apps       []AccountApp
	Events     []AccountEvent
	// Linkable are the connectors the user may link (account_link.go).
	Linkable []UpstreamView
	// RecoveryCodes are new recovery codes, shown once.
	RecoveryCodes []string
	// CanChangeEmail: the account e-mails are on (AccountMailEnabled).
	CanChangeEmail bool
	// NeedsPassword: the sign-in is older than FreshAuthWindow, so the
	// sensitive forms ask for the current password (freshAuth).
	NeedsPassword bool
	// FreshAuthMinutes is FreshAuthWindow in minutes, for the forms.
	FreshAuthMinutes int
	// CanAddTOTP and CanAddWebAuthn offer adding an authenticator app or
	// a security key or passkey (broker/account_factors.go).
	CanAddTOTP, CanAddWebAuthn bool
}

// accountCSRF binds the account forms to the session cookie.
func accountCSRF(cookie string) string { return CSRFToken(cookie, "account") }

// AccountPage returns the account page of the browser's active session.
func (b *Broker) AccountPage(ctx context.Context, cookie string) (ProfileView, storage.User, *PageError) {
	if b.acct == nil {
		return ProfileView{}, storage.User{}, &PageError{Status: 404, Title: "Not found", Message: "There is no account page here."}
	}
	sess, err := b.sessions.Get(ctx, cookie)
	if err != nil {
		return ProfileView{}, storage.User{}, &PageError{Status: 401, Title: "Not signed in", Message: "Your session has ended. Open your account page to sign in again.", Err: err}
	}
	u, err := b.acct.Users.GetUser(ctx, sess.UserID)
	if err != nil || u.Disabled {
		return ProfileView{}, storage.User{}, &PageError{Status: 401, Title: "Not signed in", Message: "Your session has ended. Open your account page to sign in again.", Err: err}
	}
	// A session short of the account client's second factor (made by
	// the password while /mfa still asks) is not signed in here: GET
	// /account signs in through the account client, which asks it.
	if err := b.accountSessionComplete(ctx, sess, u); err != nil {
		status := 401
		if !errors.Is(err, errAccountSecondFactor) {
			status = 500
		}
		return ProfileView{}, storage.User{}, &PageError{Status: status, Title: "Not signed in", Message: "Your session has ended. Open your account page to sign in again.", Err: err}
	}
	view := ProfileView{CSRF: accountCSRF(cookie), Username: u.Username, Name: u.Name, Email: u.Email,
		EmailVerified: u.EmailVerified, HasPassword: u.PasswordHash != "", CanChangeEmail: b.AccountMailEnabled(), FreshAuthMinutes: int(FreshAuthWindow / time.Minute)}
	view.NeedsPassword = view.HasPassword && b.now().Sub(sess.AuthTime) > FreshAuthWindow
	b.offerFactors(&view) // account_factors.go
	if err := b.loadAccountLists(ctx, &view, sess); err != nil {
		return ProfileView{}, storage.User{}, &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}
	}
	return view, u, nil
}

// accountForm loads the account page for a form post and checks its
// CSRF token and the current password (counted by the login limits and
// the lockout, as a sign-in is).
func (b *Broker) accountForm(ctx context.Context, cookie, csrf, current string, meta RequestMeta) (ProfileView, storage.User, error) {
	view, u, perr := b.AccountPage(ctx, cookie)
	if perr != nil {
		return ProfileView{}, u, pageError{perr}
	}
	if subtle.ConstantTimeCompare([]byte(csrf), []byte(view.CSRF)) != 1 {
		return ProfileView{}, u, pageError{&PageError{Status: 400, Title: "Form expired", Message: "The form was not valid. Open the account page again.", Err: errors.New("csrf token mismatch")}}
	}
	if !view.HasPassword || b.password == nil {
		return view, u, ErrAccountNoPassword
	}
	return view, u, b.checkCurrentPassword(ctx, u, current, meta)
}

// checkCurrentPassword checks the user's password, counted by the login
// limits and the lockout as a sign-in is.
func (b *Broker) checkCurrentPassword(ctx context.Context, u storage.User, current string, meta RequestMeta) error {
	if err := b.checkLoginLimits(ctx, u.Username, meta.IP); err != nil {
		var rl *RateLimitedError
		if errors.As(err, &rl) {
			return rl
		}
		return pageError{&PageError{Status: 503, Title: "Try again later", Message: "Please try again in a moment.", Err: err}}
	}
	if _, err := b.password.Login(ctx, u.Username, current); err != nil {
		if errors.Is(err, providers.ErrInvalidCredentials) {
			b.loginFailed(ctx, u.Username, meta)
			return ErrAccountWrongPassword
		}
		return pageError{&PageError{Status: 503, Title: "Try again later", Message: "Please try again in a moment.", Err: err}}
	}
	return nil
}

// ChangePassword changes the signed-in user's password after checking the
// current one; the user's other sessions end, this one stays.
func (b *Broker) ChangePassword(ctx context.Context, cookie, csrf, current, password, confirm string, meta RequestMeta) (ProfileView, error) {
	view, u, err := b.accountForm(ctx, cookie, csrf, current, meta)
	if err != nil {
		return view, err
	}
	if err := b.checkNewPassword(u, password, confirm); err != nil {
		return view, err
	}
	hash, err := b.acct.Hasher.Hash(ctx, password)
	if err == nil {
		err = b.setPassword(ctx, u.ID, hash, "")
	}
	if err != nil {
		return ProfileView{}, pageError{&PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}}
	}
	n := b.endOtherSessions(ctx, u.ID, cookie, "password_changed")
	b.accountEvent(ctx, "user.password.changed", u.ID, meta, map[string]any{"sessions_ended": n})
	view.Message = "Your password is changed. You were signed out on your other devices."
	return view, nil
}

// endOtherSessions ends the user's sessions but the one of cookie.
func (b *Broker) endOtherSessions(ctx context.Context, userID, cookie, reason string) int {
	keep, _ := b.sessions.SIDOf(ctx, cookie)
	list, err := b.sessions.ListByUser(ctx, userID)
	if err != nil {
		b.log.ErrorContext(ctx, "list sessions", slog.Any("error", err))
		return 0
	}
	n := 0
	for _, s := range list {
		if s.SID == keep {
			continue
		}
		if ok, err := b.EndSession(ctx, s.SID, reason, "user:"+userID); err != nil {
			b.log.ErrorContext(ctx, "end session", slog.Any("error", err))
		} else if ok {
			n++
		}
	}
	return n
}

// ChangeEmail sends a verification link to a new address after checking
// the current password; the address changes when the link is used.
func (b *Broker) ChangeEmail(ctx context.Context, cookie, csrf, current, address string, meta RequestMeta) (ProfileView, error) {
	view, u, err := b.accountForm(ctx, cookie, csrf, current, meta)
	if err != nil {
		return view, err
	}
	if !b.AccountMailEnabled() {
		return view, pageError{&PageError{Status: 404, Title: "Not found", Message: "Changing the e-mail address is not available here.", Err: errors.New("account mail is off")}}
	}
	norm, err := otp.NormalizeEmail(address)
	if err != nil {
		return view, err
	}
	if err := b.SendEmailVerification(ctx, u.ID, norm, meta); err != nil {
		if errors.Is(err, otp.ErrEmailFormat) {
			return view, err
		}
		return view, ErrOTPSendFailed
	}
	view.Message = "We sent a link to " + otp.MaskEmail(norm) + ". Your address changes when you open it."
	return view, nil
}
