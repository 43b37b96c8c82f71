package broker

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mileusna/useragent"

	"github.com/latchkeyid/latchkey/mfa"
	"github.com/latchkeyid/latchkey/session"
	"github.com/latchkeyid/latchkey/storage"
)

// FreshAuthWindow is how recent the session's sign-in must be for a
// destructive change on the account page (unlink, remove a second
// factor, new recovery codes); older sessions confirm with the current
// password on the form (docs/accounts.md).
const FreshAuthWindow = 5 * time.Minute

// accountEventsShown is how many recent security events the page lists.
const accountEventsShown = 20

// Errors of the account self-service forms, shown on the page again.
var (
	ErrAccountReauth   = errors.New("for this change, enter your current password; without a password here, sign out and sign in again first")
	ErrAccountLastWay  = errors.New("this is your last way to sign in: set a password or link another service first")
	ErrAccountNotFound = errors.New("that item is not on your account")
	ErrAccountLabel    = errors.New("enter a name of 1 to 64 characters")
)

// AccountSession is one of the user's SSO sessions on the account page.
type AccountSession struct {
	SID         string
	Current     bool
	ConnectorID string
	Connector   string // its display name ("Local account" for local)
	// Browser and OS are read from the User-Agent of the sign-in ("" when
	// unknown); IP is its address.
	Browser, OS, IP string
	AuthTime        time.Time
	Clients         []string
}

// AccountIdentity is a linked upstream identity.
type AccountIdentity struct {
	ConnectorID string
	Connector   string // its display name
	Email       string
	LastLoginAt time.Time
}

// AccountFactor is an enrolled second factor.
type AccountFactor struct {
	ID, Type, Label string
	CreatedAt       time.Time
	LastUsedAt      time.Time
}

// factorKinds name the second-factor types on the account page (English
// message ids, translated by the page).
var factorKinds = map[string]string{
	"totp":     "Authenticator app",
	"webauthn": "Security key or passkey",
	"recovery": "Recovery codes",
	"sms":      "Text message codes",
	"email":    "E-mail codes",
}

// Kind is the factor's type as the page shows it.
func (f AccountFactor) Kind() string {
	if k, ok := factorKinds[f.Type]; ok {
		return k
	}
	return f.Type
}

// accountEventTitles are the audit events the account page lists, as the
// page shows them (English message ids); others (token issuance, say)
// are not security events for the user and are left out.
var accountEventTitles = map[string]string{
	"user.created":                  "Account created",
	"user.registered":               "Account created",
	"user.profile.updated":          "Profile changed",
	"user.login.succeeded":          "Signed in",
	"user.login.failed":             "Failed sign-in",
	"user.login.denied":             "Sign-in refused",
	"user.locked":                   "Sign-in locked after failed attempts",
	"user.password.changed":         "Password changed",
	"user.password.reset":           "Password reset",
	"user.password.reset_requested": "Password reset requested",
	"user.password.reset_mail_sent": "Password reset requested",
	"user.email.verified":           "E-mail address confirmed",
	"user.email.verification_sent":  "Confirmation e-mail sent",
	"mfa.enrolled":                  "Second factor added",
	"mfa.removed":                   "Second factor removed",
	"mfa.renamed":                   "Second factor renamed",
	"mfa.reset":                     "Second factors reset by an administrator",
	"mfa.challenge.failed":          "Wrong second-factor code",
	"mfa.recovery.used":             "Recovery code used",
	"mfa.recovery.regenerated":      "New recovery codes",
	"session.ended":                 "Session ended",
	"consent.granted":               "App access granted",
	"consent.revoked":               "App access revoked",
	"identity.linked":               "Sign-in service linked",
	"identity.unlinked":             "Sign-in service unlinked",
}

// AccountEventTitles lists every title the account page may show (for
// the translation tests).
func AccountEventTitles() []string {
	out := make([]string, 0, len(accountEventTitles)+len(factorKinds))
	for _, v := range accountEventTitles {
		out = append(out, v)
	}
	for _, v := range factorKinds {
		out = append(out, v)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// AccountApp is an application the user granted consent to.
type AccountApp struct {
	ClientID, Name string
	Scopes         []string
	GrantedAt      time.Time
}

// AccountEvent is a recent security event of the user (audit log).
type AccountEvent struct {
	Type  string
	Title string // what happened, as the page shows it
	Time  time.Time
	IP    string
}

// loadAccountLists fills the page's lists for the user of sess.
func (b *Broker) loadAccountLists(ctx context.Context, view *ProfileView, sess session.Session) error {
	list, err := b.sessions.ListByUser(ctx, sess.UserID)
	if err != nil {
		return fmt.Errorf("list sessions: %w", err)
	}
	view.Sessions = view.Sessions[:0]
	for _, s := range list {
		ua := useragent.Parse(s.Device.UserAgent)
		view.Sessions = append(view.Sessions, AccountSession{SID: s.SID, Current: s.SID == sess.SID, ConnectorID: s.ConnectorID, Connector: b.connectorName(s.ConnectorID),
			Browser: ua.Name, OS: ua.OS, IP: s.Device.IP,
			AuthTime: s.AuthTime, Clients: slices.Clone(s.Clients)})
	}
	return b.store.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
		ids, err := tx.ListUserIdentities(ctx, sess.UserID)
		if err != nil {
			return fmt.Errorf("list identities: %w", err)
		}
		view.Identities = nil
		for _, i := range ids {
			view.Identities = append(view.Identities, AccountIdentity{ConnectorID: i.ConnectorID, Connector: b.connectorName(i.ConnectorID), Email: i.Email, LastLoginAt: i.LastLoginAt})
		}
		view.Linkable = b.linkableConnectors(view.Identities) // account_link.go
		creds, err := tx.ListMFACredentials(ctx, sess.UserID)
		if err != nil {
			return fmt.Errorf("list second factors: %w", err)
		}
		view.Factors = nil
		for _, c := range creds {
			view.Factors = append(view.Factors, AccountFactor{ID: c.ID, Type: c.Type, Label: c.Label, CreatedAt: c.CreatedAt, LastUsedAt: c.LastUsedAt})
		}
		consents, err := tx.ListUserConsents(ctx, sess.UserID)
		if err != nil {
			return fmt.Errorf("list consents: %w", err)
		}
		view.Apps = nil
		for _, c := range consents {
			app := AccountApp{ClientID: c.ClientID, Name: c.ClientID, Scopes: c.Scopes, GrantedAt: c.GrantedAt}
			if cl, err := tx.GetClient(ctx, c.ClientID); err == nil && cl.Name != "" {
				app.Name = cl.Name
			}
			view.Apps = append(view.Apps, app)
		}
		// The newest events: the store keeps the oldest of a Limit, so
		// read the last 90 days and keep the tail.
		evs, err := tx.ListEvents(ctx, storage.EventFilter{UserID: sess.UserID, Since: b.now().Add(-90 * 24 * time.Hour)})
		if err != nil {
			return fmt.Errorf("list events: %w", err)
		}
		view.Events = nil
		for i := len(evs) - 1; i >= 0 && len(view.Events) < accountEventsShown; i-- {
			if title, ok := accountEventTitles[evs[i].Type]; ok {
				view.Events = append(view.Events, AccountEvent{Type: evs[i].Type, Title: title, Time: evs[i].Time, IP: evs[i].IP})
			}
		}
		return nil
	})
}

// connectorName is the display name of connector id on the account
// page: the local password database is "Local account"; a connector no
// longer configured shows its id.
func (b *Broker) connectorName(id string) string {
	if id == LocalConnectorID {
		return "Local account"
	}
	if b.fed.Connectors != nil {
		if up, ok := b.fed.Connectors.Get(id); ok {
			return up.Connector.Name()
		}
	}
	return id
}

// accountAction loads the session and user of cookie for a form post and
// checks the form's CSRF token.
func (b *Broker) accountAction(ctx context.Context, cookie, csrf string) (ProfileView, session.Session, storage.User, error) {
	view, u, perr := b.AccountPage(ctx, cookie)
	if perr != nil {
		return ProfileView{}, session.Session{}, u, pageError{perr}
	}
	if subtle.ConstantTimeCompare([]byte(csrf), []byte(view.CSRF)) != 1 {
		return ProfileView{}, session.Session{}, u, pageError{&PageError{Status: 400, Title: "Form expired", Message: "The form was not valid. Open the account page again.", Err: errors.New("csrf token mismatch")}}
	}
	sess, err := b.sessions.Get(ctx, cookie)
	if err != nil {
		return ProfileView{}, session.Session{}, u, pageError{&PageError{Status: 401, Title: "Not signed in", Message: "Your session has ended. Open your account page to sign in again.", Err: err}}
	}
	return view, sess, u, nil
}

// freshAuth allows a destructive change: the session signed in within
// FreshAuthWindow, or current is the user's password (counted by the
// login limits and the lockout, as a sign-in is).
func (b *Broker) freshAuth(ctx context.Context, sess session.Session, u storage.User, current string, meta RequestMeta) error {
	if b.now().Sub(sess.AuthTime) <= FreshAuthWindow {
		return nil
	}
	if current == "" || u.PasswordHash == "" || b.password == nil {
		return ErrAccountReauth
	}
	return b.checkCurrentPassword(ctx, u, current, meta)
}

// accountDone reloads the page's lists after a change and sets msg.
func (b *Broker) accountDone(ctx context.Context, view ProfileView, sess session.Session, msg string) (ProfileView, error) {
	if err := b.loadAccountLists(ctx, &view, sess); err != nil {
		return ProfileView{}, pageError{&PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}}
	}
	view.Message = msg
	return view, nil
}

func serverError(err error) error {
	return pageError{&PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}}
}

// AccountEndSession ends one of the user's sessions (sid), or with sid
// "others" every session but this one. session.ended by user:<id>.
func (b *Broker) AccountEndSession(ctx context.Context, cookie, csrf, sid string, meta RequestMeta) (ProfileView, error) {
	view, sess, u, err := b.accountAction(ctx, cookie, csrf)
	if err != nil {
		return view, err
	}
	if sid == "others" {
		b.endOtherSessions(ctx, u.ID, cookie, ReasonRevoked)
		return b.accountDone(ctx, view, sess, "You were signed out on your other devices.")
	}
	mine := slices.ContainsFunc(view.Sessions, func(s AccountSession) bool { return s.SID == sid })
	if !mine || sid == "" {
		return view, ErrAccountNotFound
	}
	if _, _, _, err := b.endSession(ctx, sid, ReasonRevoked, "user:"+u.ID, meta); err != nil {
		return view, serverError(err)
	}
	if sid == sess.SID {
		return view, pageError{&PageError{Status: 200, Title: "Signed out", Message: "You have signed out."}}
	}
	return b.accountDone(ctx, view, sess, "The session is ended.")
}

// AccountUnlink removes the user's identity at connectorID, never the
// last way in (Unlink); it needs a fresh authentication.
func (b *Broker) AccountUnlink(ctx context.Context, cookie, csrf, current, connectorID string, meta RequestMeta) (ProfileView, error) {
	view, sess, u, err := b.accountAction(ctx, cookie, csrf)
	if err != nil {
		return view, err
	}
	if err := b.freshAuth(ctx, sess, u, current, meta); err != nil {
		return view, err
	}
	_, err = Unlink(ctx, b.store, u.ID, connectorID, "user:"+u.ID, meta)
	switch {
	case errors.Is(err, ErrLastWayIn):
		return view, ErrAccountLastWay
	case errors.Is(err, storage.ErrNotFound):
		return view, ErrAccountNotFound
	case err != nil:
		return view, serverError(err)
	}
	return b.accountDone(ctx, view, sess, "The service is unlinked from your account.")
}

// factorAction is accountAction for a form on the user's credential id:
// ErrAccountNotFound for another user's or an unknown one.
func (b *Broker) factorAction(ctx context.Context, cookie, csrf, id string) (ProfileView, session.Session, storage.User, storage.MFACredential, error) {
	view, sess, u, err := b.accountAction(ctx, cookie, csrf)
	if err != nil {
		return view, sess, u, storage.MFACredential{}, err
	}
	if b.mfa == nil || id == "" {
		return view, sess, u, storage.MFACredential{}, ErrAccountNotFound
	}
	c, err := b.mfa.Store.GetMFACredential(ctx, id)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && c.UserID != u.ID) {
		return view, sess, u, storage.MFACredential{}, ErrAccountNotFound
	}
	if err != nil {
		return view, sess, u, storage.MFACredential{}, serverError(err)
	}
	return view, sess, u, c, nil
}

// AccountRemoveFactor deletes one of the user's second factors
// (mfa.removed); it needs a fresh authentication.
func (b *Broker) AccountRemoveFactor(ctx context.Context, cookie, csrf, current, id string, meta RequestMeta) (ProfileView, error) {
	view, sess, u, c, err := b.factorAction(ctx, cookie, csrf, id)
	if err != nil {
		return view, err
	}
	if err := b.freshAuth(ctx, sess, u, current, meta); err != nil {
		return view, err
	}
	var orphans []storage.MFACredential
	if err := b.store.Tx(ctx, func(ctx context.Context, tx storage.Durable) (err error) {
		orphans, err = mfa.Remove(ctx, tx, c)
		return err
	}); err != nil {
		return view, serverError(err)
	}
	b.accountEvent(ctx, "mfa.removed", u.ID, meta, map[string]any{"credential_id": c.ID, "type": c.Type})
	for _, o := range orphans {
		b.accountEvent(ctx, "mfa.removed", u.ID, meta, map[string]any{"credential_id": o.ID, "type": o.Type, "reason": "last_factor_removed"})
	}
	if len(orphans) > 0 {
		return b.accountDone(ctx, view, sess, "The second factor is removed. It was your last one, so your recovery codes are removed too.")
	}
	return b.accountDone(ctx, view, sess, "The second factor is removed.")
}

// AccountRenameFactor sets a second factor's label (mfa.renamed).
func (b *Broker) AccountRenameFactor(ctx context.Context, cookie, csrf, id, label string, meta RequestMeta) (ProfileView, error) {
	view, sess, u, c, err := b.factorAction(ctx, cookie, csrf, id)
	if err != nil {
		return view, err
	}
	label = strings.TrimSpace(label)
	if label == "" || len([]rune(label)) > 64 || strings.ContainsFunc(label, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return view, ErrAccountLabel
	}
	if err := b.mfa.Store.UpdateMFACredential(ctx, c.ID, func(c storage.MFACredential) (storage.MFACredential, error) {
		c.Label = label
		return c, nil
	}); err != nil {
		return view, serverError(err)
	}
	b.accountEvent(ctx, "mfa.renamed", u.ID, meta, map[string]any{"credential_id": c.ID})
	return b.accountDone(ctx, view, sess, "The second factor is renamed.")
}

// AccountRegenerateRecovery replaces the user's recovery codes with a new
// set, returned once in view.RecoveryCodes (mfa.recovery.regenerated);
// it needs a fresh authentication and an existing set.
func (b *Broker) AccountRegenerateRecovery(ctx context.Context, cookie, csrf, current string, meta RequestMeta) (ProfileView, error) {
	view, sess, u, err := b.accountAction(ctx, cookie, csrf)
	if err != nil {
		return view, err
	}
	i := slices.IndexFunc(view.Factors, func(f AccountFactor) bool { return f.Type == mfa.TypeRecovery })
	if i < 0 || b.mfa == nil {
		return view, ErrAccountNotFound
	}
	f, err := b.mfa.Factors.Get(mfa.TypeRecovery)
	issuer, ok := f.(recoveryIssuer)
	if err != nil || !ok {
		return view, ErrAccountNotFound
	}
	if err := b.freshAuth(ctx, sess, u, current, meta); err != nil {
		return view, err
	}
	var codes []string
	if err := b.store.Tx(ctx, func(ctx context.Context, tx storage.Durable) (err error) {
		codes, err = issuer.Issue(ctx, tx, u.ID)
		return err
	}); err != nil {
		return view, serverError(err)
	}
	b.accountEvent(ctx, "mfa.recovery.regenerated", u.ID, meta, nil)
	view, err = b.accountDone(ctx, view, sess, "Here are your new recovery codes. They are shown only once; the old ones no longer work.")
	view.RecoveryCodes = codes
	return view, err
}

// ErrAccountName: the name on the profile form is empty, too long or has
// control characters.
var ErrAccountName = errors.New("enter a name of 1 to 128 characters")

// AccountSetName sets the display name of a local account (the `name`
// claim; user.profile.updated). An account that signs in through another
// service gets its name from there, so it has no such form (404).
func (b *Broker) AccountSetName(ctx context.Context, cookie, csrf, name string, meta RequestMeta) (ProfileView, error) {
	view, sess, u, err := b.accountAction(ctx, cookie, csrf)
	if err != nil {
		return view, err
	}
	if !view.HasPassword {
		return view, ErrAccountNotFound
	}
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 128 || !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl) {
		return view, ErrAccountName
	}
	if err := b.acct.Users.UpdateUser(ctx, u.ID, func(cur storage.User) (storage.User, error) {
		cur.Name, cur.UpdatedAt = name, b.now()
		return cur, nil
	}); err != nil {
		return view, serverError(err)
	}
	b.accountEvent(ctx, "user.profile.updated", u.ID, meta, map[string]any{"fields": []string{"name"}})
	view.Name = name
	return b.accountDone(ctx, view, sess, "Your name is saved.")
}

// AccountRevokeConsent withdraws the user's consent to clientID and
// revokes the refresh tokens that client holds for the user, with the
// consent.revoked event, in one transaction. Access tokens already issued
// run out on their own (short-lived). No fresh authentication: it only
// takes access away.
func (b *Broker) AccountRevokeConsent(ctx context.Context, cookie, csrf, clientID string, meta RequestMeta) (ProfileView, error) {
	view, sess, u, err := b.accountAction(ctx, cookie, csrf)
	if err != nil {
		return view, err
	}
	if !slices.ContainsFunc(view.Apps, func(a AccountApp) bool { return a.ClientID == clientID }) {
		return view, ErrAccountNotFound
	}
	err = b.store.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
		if err := tx.DeleteConsent(ctx, u.ID, clientID); err != nil {
			return err
		}
		n, err := tx.RevokeUserRefreshTokens(ctx, clientID, u.ID, b.now())
		if err != nil {
			return err
		}
		return tx.AppendEvent(ctx, storage.Event{Type: "consent.revoked", Actor: "user:" + u.ID, UserID: u.ID, ClientID: clientID,
			IP: meta.IP, UserAgent: meta.UserAgent, RequestID: meta.RequestID, Data: map[string]any{"refresh_tokens_revoked": n}})
	})
	if errors.Is(err, storage.ErrNotFound) {
		return view, ErrAccountNotFound
	}
	if err != nil {
		return view, serverError(err)
	}
	return b.accountDone(ctx, view, sess, "The application no longer has access to your account.")
}
