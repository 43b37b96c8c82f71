package broker

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/latchkeyid/latchkey/internal/notify/email"
	"github.com/latchkeyid/latchkey/internal/ratelimit"
	"github.com/latchkeyid/latchkey/mfa/otp"
	"github.com/latchkeyid/latchkey/storage"
)

// PathRegister is the self-registration page (web/register.go).
const PathRegister = "/account/register"

// MaxRegisterUsername is the longest username a registration takes, in
// characters.
const MaxRegisterUsername = 64

// RegistrationOptions turn on self-registration of local accounts
// (AccountOptions.Registration; docs/accounts.md "Self-registration").
type RegistrationOptions struct {
	// Enabled: the login page offers "Create an account" wherever it
	// offers the local password form.
	Enabled bool
	// RequireVerifiedEmail: while registration is on, the password
	// sign-in of a local account whose address is not confirmed is
	// refused (ErrEmailNotVerified) and mails a new verification link.
	RequireVerifiedEmail bool
}

// Errors of the registration form and of a refused sign-in.
var (
	// ErrRegisterInvalid: some fields are wrong; RegisterView.Errors says
	// which and why.
	ErrRegisterInvalid = errors.New("the registration form has errors")
	// ErrEmailNotVerified: the password was right, but the account's
	// address is not confirmed yet; a new link was mailed.
	ErrEmailNotVerified = errors.New("confirm your e-mail address first")

	ErrRegisterUsername = fmt.Errorf("choose a username of 1 to %d characters: letters, digits, '.', '_', '-' or '@'", MaxRegisterUsername)
	ErrRegisterMismatch = errors.New("the two passwords are not the same")
)

// Fields of the registration form, the keys of RegisterView.Errors.
const (
	FieldUsername = "username"
	FieldEmail    = "email"
	FieldPassword = "password"
	FieldConfirm  = "confirm"
)

// RegisterView is what the registration page shows.
type RegisterView struct {
	RequestID  string
	CSRF       string
	ClientName string
	// Username and Email are shown back in the form (never the password).
	Username string
	Email    string
	// Errors are the fields' errors (FieldUsername, ...).
	Errors map[string]error
	// Sent: the form was taken; SentTo is the masked address the page
	// says it wrote to. The page is the same whether an account was
	// created or the username or address was taken.
	Sent   bool
	SentTo string
}

// RegisterForm is what the registration form posts.
type RegisterForm struct {
	Username, Email, Password, Confirm string
}

// RegistrationEnabled reports whether self-registration is on.
func (b *Broker) RegistrationEnabled() bool {
	return b.AccountMailEnabled() && b.acct.Registration.Enabled
}

// registrationOffered reports whether the login page of req offers
// registration: it is on and the client may use the local password form.
func (b *Broker) registrationOffered(req *AuthRequest, client storage.Client) bool {
	return b.RegistrationEnabled() && b.password != nil && connectorAllowed(client, req, LocalConnectorID)
}

var errNoRegistration = &PageError{Status: 404, Title: "Not found", Message: "You cannot create an account here."}

// registerRequest loads the sign-in request a registration belongs to.
func (b *Broker) registerRequest(ctx context.Context, id, binding string) (*AuthRequest, RegisterView, *PageError) {
	if !b.RegistrationEnabled() {
		return nil, RegisterView{}, errNoRegistration
	}
	req, client, perr := b.requestPage(ctx, id, binding)
	if perr != nil {
		return nil, RegisterView{}, perr
	}
	if !b.registrationOffered(req, client) {
		return nil, RegisterView{}, errNoRegistration
	}
	return req, RegisterView{RequestID: req.ID, CSRF: CSRFToken(binding, req.ID), ClientName: clientName(client)}, nil
}

// RegisterPage returns what the registration page of request id shows.
func (b *Broker) RegisterPage(ctx context.Context, id, binding string) (RegisterView, *PageError) {
	_, view, perr := b.registerRequest(ctx, id, binding)
	return view, perr
}

// checkUsername validates a username typed into the registration form
// and returns it in lower case (as Keycloak stores them), so that
// "Alice" and "alice" cannot be two accounts. It is NFKC-normalised
// first and after, so that look-alike spellings are one name too: the
// fullwidth "ａｌｉｃｅ" is "alice", "ﬁ" is "fi", and a letter with a
// combining accent is the accented letter.
func checkUsername(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", ErrRegisterUsername
	}
	s = norm.NFKC.String(strings.ToLower(norm.NFKC.String(strings.TrimSpace(s))))
	if s == "" || utf8.RuneCountInString(s) > MaxRegisterUsername {
		return "", ErrRegisterUsername
	}
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune("._-@", r) {
			return "", ErrRegisterUsername
		}
	}
	return s, nil
}

// Register creates a local account from the registration form of
// request id (docs/accounts.md "Self-registration"):
//
//   - every field is checked first; ErrRegisterInvalid with the view's
//     Errors names what to fix (nothing is counted or stored);
//   - limits.registrationPerIP and limits.registrationPerAddress count
//     every valid form alike (a *RateLimitedError over either);
//   - the password is hashed whatever follows, and every answer is the
//     same "check your mail" page, its mail sent in the background: a
//     new account (email_verified false) gets a verification link that
//     continues request id; an address that has an account gets a mail
//     to that account instead, and a taken username a mail saying so to
//     the typed address. No answer says which happened.
func (b *Broker) Register(ctx context.Context, id, binding, csrf string, form RegisterForm, meta RequestMeta) (RegisterView, error) {
	req, view, perr := b.registerRequest(ctx, id, binding)
	if perr != nil {
		return RegisterView{}, pageError{perr}
	}
	if !checkCSRF(binding, id, csrf) {
		return RegisterView{}, pageError{&PageError{Status: 400, Title: "Form expired", Message: "The form was not valid for this sign-in. Go back to the application and start again.", Err: errors.New("csrf token mismatch")}}
	}
	view.Username, view.Email = truncate(strings.TrimSpace(form.Username), 256), truncate(strings.TrimSpace(form.Email), 254)
	errs := map[string]error{}
	username, err := checkUsername(form.Username)
	if err != nil {
		errs[FieldUsername] = err
	}
	address, err := otp.NormalizeEmail(form.Email)
	if err != nil {
		errs[FieldEmail] = otp.ErrEmailFormat
	}
	if err := b.acct.Policy.Check(form.Password, username, address); err != nil {
		errs[FieldPassword] = err
	} else if form.Password != form.Confirm {
		errs[FieldConfirm] = ErrRegisterMismatch
	}
	if len(errs) > 0 {
		view.Errors = errs
		return view, ErrRegisterInvalid
	}
	if addr, err := netip.ParseAddr(meta.IP); err == nil {
		if err := b.allowRule(ctx, b.limits.Rules.RegistrationIP, ratelimit.IPKey(addr)); err != nil {
			return view, b.registerLimited(err)
		}
	}
	if err := b.allowRule(ctx, b.limits.Rules.RegistrationAddress, addressKey(address)); err != nil {
		return view, b.registerLimited(err)
	}
	hash, err := b.acct.Hasher.Hash(ctx, form.Password)
	if err != nil {
		return view, pageError{&PageError{Status: 503, Title: "Try again later", Message: "Please try again in a moment.", Err: err}}
	}
	owners, err := b.usersByEmail(ctx, address)
	if err != nil {
		return view, pageError{&PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}}
	}
	var send func(ctx context.Context)
	switch {
	case len(owners) > 0:
		send = func(ctx context.Context) { b.mailOwners(ctx, owners, meta) }
	default:
		u, taken, err := b.createRegistered(ctx, username, address, hash, meta)
		switch {
		case err != nil:
			return view, pageError{&PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}}
		case taken:
			send = func(ctx context.Context) { b.mailUsernameTaken(ctx, address, username, meta) }
		default:
			send = func(ctx context.Context) {
				if err := b.sendEmailVerification(ctx, u.ID, "", req.ID, meta); err != nil {
					b.log.WarnContext(ctx, "registration: send verification", slog.String("user_id", u.ID), slog.Any("error", err))
				}
			}
		}
	}
	b.inBackground(ctx, send)
	return RegisterView{RequestID: view.RequestID, ClientName: view.ClientName, Sent: true, SentTo: otp.MaskEmail(address)}, nil
}

// registerLimited turns a limiter answer into the form's error: the
// *RateLimitedError, or the unavailable page when the store failed.
func (b *Broker) registerLimited(err error) error {
	var rl *RateLimitedError
	if errors.As(err, &rl) {
		return rl
	}
	return pageError{&PageError{Status: 503, Title: "Try again later", Message: "Please try again in a moment.", Err: err}}
}

// addressKey is the limiter key of an e-mail address: NFKC-normalised,
// in lower case, without format characters (soft hyphens, zero-width
// joiners), so that look-alike spellings of one address
// ("victim@ｅxample.com", "vic\u00adtim@example.com") share its limit.
func addressKey(address string) string {
	k := strings.ToLower(norm.NFKC.String(address))
	k = strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, k)
	return "email:" + k
}

// usersByEmail returns the accounts with address, matched exactly, then
// in lower case (as the password reset does).
func (b *Broker) usersByEmail(ctx context.Context, address string) ([]storage.User, error) {
	users, err := b.acct.Users.ListUsersByEmail(ctx, address)
	if err == nil && len(users) == 0 && strings.ToLower(address) != address {
		users, err = b.acct.Users.ListUsersByEmail(ctx, strings.ToLower(address))
	}
	if err != nil {
		return nil, fmt.Errorf("look up accounts by e-mail: %w", err)
	}
	return users, nil
}

// createRegistered stores the new account and its user.registered event
// in one transaction; taken reports a username that exists.
func (b *Broker) createRegistered(ctx context.Context, username, address, hash string, meta RequestMeta) (storage.User, bool, error) {
	raw := make([]byte, 16)
	if _, err := io.ReadFull(b.rand, raw); err != nil {
		return storage.User{}, false, fmt.Errorf("random user id: %w", err)
	}
	now := b.now()
	u := storage.User{ID: hex.EncodeToString(raw), Username: username, Email: address, PasswordHash: hash, CreatedAt: now, UpdatedAt: now}
	errTaken := errors.New("username taken")
	err := b.store.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
		if _, err := tx.GetUserByUsername(ctx, username); err == nil {
			return errTaken
		} else if !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		if err := tx.CreateUser(ctx, u); err != nil {
			return err
		}
		return tx.AppendEvent(ctx, storage.Event{Type: "user.registered", Time: now, Actor: "user:" + u.ID, UserID: u.ID,
			ConnectorID: LocalConnectorID, IP: meta.IP, UserAgent: meta.UserAgent, RequestID: meta.RequestID,
			Data: map[string]any{"username": username}})
	})
	switch {
	case errors.Is(err, errTaken), errors.Is(err, storage.ErrConflict):
		b.accountEvent(ctx, "user.registration.refused", "", meta, map[string]any{"reason": "username_taken"})
		return storage.User{}, true, nil
	case err != nil:
		return storage.User{}, false, fmt.Errorf("create user: %w", err)
	}
	return u, false, nil
}

// mailOwners tells the accounts that have an address that someone tried
// to register with it.
func (b *Broker) mailOwners(ctx context.Context, owners []storage.User, meta RequestMeta) {
	for _, u := range owners {
		if u.Disabled {
			continue
		}
		b.accountEvent(ctx, "user.registration.refused", u.ID, meta, map[string]any{"reason": "email_exists"})
		err := b.sendMail(ctx, u.Email, meta.Lang, email.TemplateRegisterExisting, map[string]any{
			"Name": displayName(u), "Username": u.Username, "Link": b.issuer + PathForgot})
		if err != nil {
			b.log.WarnContext(ctx, "registration: mail the address's account", slog.String("user_id", u.ID), slog.Any("error", err))
		}
	}
}

// mailUsernameTaken tells the typed address that the username is taken.
func (b *Broker) mailUsernameTaken(ctx context.Context, address, username string, meta RequestMeta) {
	if err := b.sendMail(ctx, address, meta.Lang, email.TemplateRegisterUsernameTaken, map[string]any{"Username": username}); err != nil {
		b.log.WarnContext(ctx, "registration: mail that the username is taken", slog.Any("error", err))
	}
}

// inBackground runs send after the answer, as the password reset's mails
// (WaitAccountMail waits for it).
func (b *Broker) inBackground(ctx context.Context, send func(ctx context.Context)) {
	b.acct.wg.Add(1)
	go func() {
		defer b.acct.wg.Done()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		send(ctx)
	}()
}

// requireVerifiedEmail reports whether a local account with an
// unconfirmed address must confirm it before signing in.
func (b *Broker) requireVerifiedEmail() bool {
	return b.RegistrationEnabled() && b.acct.Registration.RequireVerifiedEmail
}

// refuseUnverified answers the right password of an account whose
// address is not confirmed: an event, and a new verification link that
// continues req (at most limits.registrationPerAddress an hour; the
// earlier links keep working).
func (b *Broker) refuseUnverified(ctx context.Context, req *AuthRequest, userID, address string, meta RequestMeta) error {
	b.accountEvent(ctx, "user.login.refused", userID, meta, map[string]any{"reason": "email_not_verified", "client_id": req.ClientID})
	if err := b.allowRule(ctx, b.limits.Rules.RegistrationAddress, addressKey(address)); err == nil {
		b.inBackground(ctx, func(ctx context.Context) {
			if err := b.sendEmailVerification(ctx, userID, "", req.ID, meta); err != nil {
				b.log.WarnContext(ctx, "sign-in: send verification", slog.String("user_id", userID), slog.Any("error", err))
			}
		})
	}
	return ErrEmailNotVerified
}
