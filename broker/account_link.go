package broker

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"

	"github.com/latchkeyid/latchkey/providers"
	samlconn "github.com/latchkeyid/latchkey/providers/saml"
	"github.com/latchkeyid/latchkey/storage"
)

// Linking another connector from the account page (docs/accounts.md).
// The form (CSRF, fresh authentication as for unlinking) starts the
// connector's upstream login through the same code as a sign-in
// (startUpstreamLogin), with a state that names no auth request but the
// SSO session, its user and the browser's binding cookie. The callback
// (UpstreamCallback, then accountLinkCallback) checks all three, lets
// the connector verify the answer and links the identity to the session's
// user: it signs no one in and leaves the session as it is. The outcome
// is shown on the account page (a message kept for the session, then a
// redirect to /account). Redirect connectors (CallbackConnector) and
// SAML connectors (startSAMLLogin, SAMLACS) are offered; password
// connectors (LDAP) are not.

// ReasonAccountLink is the reason of identity.linked for a link made on
// the account page.
const ReasonAccountLink = "account"

// Messages of the account page after a link (or a refused start).
const (
	msgAccountLinked          = "The service is linked to your account. You can sign in with it from now on."
	msgAccountAlreadyLinked   = "That account is already linked to yours; nothing changed."
	msgAccountLinkedElsewhere = "That account is already linked to another user. Nothing was changed."
	msgAccountLinkUnavailable = "That service cannot be linked here."
	msgAccountLinkCancelled   = "The service did not sign you in, so nothing was linked. Try again if you want to link it."
	msgAccountLinkFailed      = "The service's answer could not be verified, so nothing was linked. Try again in a moment."
	msgAccountLinkUnreachable = "The service is not answering right now, so nothing was linked. Try again in a moment."
)

// AccountLinkError is a link that did not happen: the sentence the
// account page shows and the page's status.
type AccountLinkError struct {
	Status  int
	Message string
}

func (e *AccountLinkError) Error() string { return e.Message }

var errAccountLinkUnavailable = &AccountLinkError{Status: 404, Message: msgAccountLinkUnavailable}

// accountLinkBinding ties a link in flight to what started it: the SSO
// session, its user and the browser (the SHA-256 of its binding cookie).
type accountLinkBinding struct {
	SID         string `json:"sid"`
	UserID      string `json:"user_id"`
	BindingHash string `json:"binding_hash"`
}

// accountFlash is the outcome of a link, kept for the account page of
// the session that started it.
type accountFlash struct {
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
}

func accountFlashKey(sid string) string { return "account-flash:" + sha256Hex(sid) }

// linkableConnectors are the open redirect connectors the user has no
// identity at, for the account page's "Link" buttons.
func (b *Broker) linkableConnectors(linked []AccountIdentity) []UpstreamView {
	var out []UpstreamView
	for _, up := range b.fed.Connectors.List() {
		id := up.Connector.ID()
		_, isCallback := up.Connector.(providers.CallbackConnector)
		_, isSAML := up.Connector.(samlconn.Capability)
		if !isCallback && !isSAML {
			continue
		}
		if slices.ContainsFunc(linked, func(i AccountIdentity) bool { return i.ConnectorID == id }) {
			continue
		}
		out = append(out, UpstreamView{ID: id, Name: up.Connector.Name()})
	}
	return out
}

// AccountLinkStart starts linking connectorID to the signed-in user: the
// form's CSRF token, a fresh authentication (freshAuth, as for
// unlinking) and a connector the user may link are checked; the result
// sends the browser upstream (and sets a binding cookie when the browser
// has none). A refusal is returned as an error with the account page.
func (b *Broker) AccountLinkStart(ctx context.Context, cookie, binding, csrf, current, connectorID string, meta RequestMeta) (Result, ProfileView, error) {
	view, sess, u, err := b.accountAction(ctx, cookie, csrf)
	if err != nil {
		return Result{}, view, err
	}
	if !slices.ContainsFunc(view.Linkable, func(v UpstreamView) bool { return v.ID == connectorID }) {
		return Result{}, view, errAccountLinkUnavailable
	}
	if err := b.freshAuth(ctx, sess, u, current, meta); err != nil {
		return Result{}, view, err
	}
	var res Result
	if !validBinding(binding) {
		if binding, err = b.randomToken(32); err != nil {
			return Result{}, view, serverError(err)
		}
		res.Binding = binding
	}
	acc := &accountLinkBinding{SID: sess.SID, UserID: u.ID, BindingHash: sha256Hex(binding)}
	var upErr error
	up, _ := b.fed.Connectors.Get(connectorID)
	switch c := up.Connector.(type) {
	case providers.CallbackConnector:
		var loginURL string
		loginURL, upErr, err = b.startUpstreamLogin(ctx, c, upstreamState{ConnectorID: connectorID, Account: acc}, providers.LoginRequest{}, b.reqTTL)
		res.Redirect = &Redirect{URI: loginURL}
	case samlconn.Capability:
		res.Redirect, upErr, err = b.startSAMLLogin(ctx, c, samlState{Account: acc}, false, b.reqTTL)
	default:
		return Result{}, view, errAccountLinkUnavailable
	}
	switch {
	case upErr != nil:
		b.accountLinkAudit(ctx, "identity.link_failed", u.ID, connectorID, "", linkFailureReason(upErr), meta)
		return Result{}, view, accountLinkFailure(upErr)
	case err != nil:
		return Result{}, view, serverError(err)
	}
	return res, view, nil
}

// accountLinkFailure is the account page's refusal for a connector's
// failure.
func accountLinkFailure(err error) *AccountLinkError {
	var denied *providers.DeniedError
	var upErr *providers.UpstreamError
	switch {
	case errors.As(err, &denied), errors.As(err, &upErr):
		return &AccountLinkError{Status: 400, Message: msgAccountLinkCancelled}
	case errors.Is(err, providers.ErrInvalidCallback), errors.As(err, new(*samlconn.ACSError)):
		return &AccountLinkError{Status: 400, Message: msgAccountLinkFailed}
	}
	return &AccountLinkError{Status: 503, Message: msgAccountLinkUnreachable}
}

func linkFailureReason(err error) string {
	var denied *providers.DeniedError
	var upErr *providers.UpstreamError
	var unavail *providers.UnavailableError
	var refused *samlconn.ACSError
	switch {
	case errors.As(err, &denied):
		return truncate("denied: "+denied.Reason, 200)
	case errors.As(err, &upErr):
		return "upstream error " + truncate(upErr.Code, 64)
	case errors.As(err, &unavail) || errors.Is(err, providers.ErrUpstreamUnavailable):
		return "unavailable"
	case errors.As(err, &refused):
		return "saml " + string(refused.Reason)
	case errors.Is(err, providers.ErrInvalidCallback):
		return "invalid callback"
	}
	return "error"
}

func (b *Broker) accountLinkAudit(ctx context.Context, typ, userID, connectorID, subject, reason string, meta RequestMeta) {
	data := map[string]any{"reason": reason}
	if subject != "" {
		data["subject"] = truncate(subject, 255)
	}
	b.audit(ctx, storage.Event{Type: typ, Actor: "user:" + userID, UserID: userID, ConnectorID: connectorID,
		IP: meta.IP, UserAgent: meta.UserAgent, RequestID: meta.RequestID, Data: data})
}

// linkNotRecognised answers a link callback that this browser and
// session did not start.
func linkNotRecognised(err error) Result {
	return pageErr(400, "Link not recognised", "Linking was started in another browser or another session. Open your account page and start again.", err)
}

// accountLinkCallback finishes a link from the account page at a
// callback connector's callback (UpstreamCallback).
func (b *Broker) accountLinkCallback(ctx context.Context, st upstreamState, state string, query url.Values, binding, cookie string, meta RequestMeta) Result {
	return b.accountLinkFinish(ctx, st.Account, st.ConnectorID, binding, cookie, meta, func() (providers.Identity, error) {
		up, _ := b.fed.Connectors.Get(st.ConnectorID)
		cc, ok := up.Connector.(providers.CallbackConnector)
		if !ok {
			return providers.Identity{}, errAccountLinkUnavailable
		}
		return upstreamIdentity(ctx, cc, st, state, query)
	})
}

// accountLinkFinish finishes a link from the account page: the browser
// (binding cookie) and the SSO session (cookie) must be the ones that
// started it; verify lets the connector check its answer; the identity
// is linked to the session's user unless it is another user's. The
// outcome goes to the account page.
func (b *Broker) accountLinkFinish(ctx context.Context, acc *accountLinkBinding, connectorID, binding, cookie string, meta RequestMeta, verify func() (providers.Identity, error)) Result {
	if binding == "" || subtle.ConstantTimeCompare([]byte(sha256Hex(binding)), []byte(acc.BindingHash)) != 1 {
		return linkNotRecognised(errors.New("account link: binding cookie mismatch"))
	}
	sess, err := b.sessions.Get(ctx, cookie)
	if err != nil {
		return pageErr(401, "Not signed in", "Your session has ended, so nothing was linked. Open your account page to sign in again.", err)
	}
	if sess.SID != acc.SID || sess.UserID != acc.UserID {
		return linkNotRecognised(fmt.Errorf("account link of session %q at session %q", acc.SID, sess.SID))
	}
	if u, err := b.store.GetUser(ctx, acc.UserID); err != nil || u.Disabled {
		return pageErr(403, "Account disabled", "Your account is disabled. Contact your administrator.", fmt.Errorf("account link: user %q disabled or gone (%v)", acc.UserID, err))
	}
	ident, err := verify()
	var refused *AccountLinkError
	switch {
	case errors.As(err, &refused):
		return b.accountLinkDone(ctx, sess.SID, accountFlash{Error: refused.Message})
	case err != nil:
		b.log.WarnContext(ctx, "account link: upstream sign-in failed", slog.String("connector_id", connectorID), slog.Any("error", err))
		b.accountLinkAudit(ctx, "identity.link_failed", acc.UserID, connectorID, "", linkFailureReason(err), meta)
		return b.accountLinkDone(ctx, sess.SID, accountFlash{Error: accountLinkFailure(err).Message})
	}
	flash, err := b.linkToUser(ctx, acc.UserID, connectorID, ident, meta)
	if err != nil {
		return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", fmt.Errorf("account link: %w", err))
	}
	return b.accountLinkDone(ctx, sess.SID, flash)
}

// linkToUser links ident at connectorID to userID (identity.linked,
// reason "account", in the same transaction), or tells why not: linked
// to this user already (nothing changes), or to another user (refused,
// identity.link_refused).
func (b *Broker) linkToUser(ctx context.Context, userID, connectorID string, ident providers.Identity, meta RequestMeta) (accountFlash, error) {
	if b.fed.Store == nil {
		return accountFlash{}, errors.New("federation without a store")
	}
	now := b.now()
	owner := ""
	err := b.fed.Store.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
		owner = ""
		cur, err := tx.GetIdentity(ctx, connectorID, ident.Subject)
		switch {
		case err == nil:
			owner = cur.UserID
			return nil
		case !errors.Is(err, storage.ErrNotFound):
			return err
		}
		if err := tx.CreateIdentity(ctx, storage.Identity{ConnectorID: connectorID, Subject: ident.Subject, UserID: userID,
			Email: ident.Email, ConnectorData: ident.ConnectorData, CreatedAt: now, LastLoginAt: now}); err != nil {
			return err
		}
		return tx.AppendEvent(ctx, storage.Event{Type: "identity.linked", Time: now, Actor: "user:" + userID, UserID: userID,
			ConnectorID: connectorID, IP: meta.IP, UserAgent: meta.UserAgent, RequestID: meta.RequestID,
			Data: map[string]any{"subject": truncate(ident.Subject, 255), "reason": ReasonAccountLink}})
	})
	if errors.Is(err, storage.ErrConflict) { // linked meanwhile: see by whom
		cur, gerr := b.fed.Store.GetIdentity(ctx, connectorID, ident.Subject)
		if gerr != nil {
			return accountFlash{}, errors.Join(err, gerr)
		}
		owner, err = cur.UserID, nil
	}
	switch {
	case err != nil:
		return accountFlash{}, err
	case owner == "":
		return accountFlash{Message: msgAccountLinked}, nil
	case owner == userID:
		return accountFlash{Message: msgAccountAlreadyLinked}, nil
	}
	b.accountLinkAudit(ctx, "identity.link_refused", userID, connectorID, ident.Subject, "linked to another user", meta)
	return accountFlash{Error: msgAccountLinkedElsewhere}, nil
}

// accountLinkDone keeps the outcome for the session's account page and
// sends the browser there.
func (b *Broker) accountLinkDone(ctx context.Context, sid string, flash accountFlash) Result {
	data, err := json.Marshal(flash)
	if err == nil {
		err = b.eph.Put(ctx, accountFlashKey(sid), data, b.reqTTL)
	}
	if err != nil {
		b.log.ErrorContext(ctx, "account link: keep the outcome", slog.Any("error", err))
	}
	return Result{Redirect: &Redirect{URI: b.issuer + PathAccount}}
}

// TakeAccountFlash returns (once) the outcome of a link kept for the
// session of cookie: a message, or an error to show.
func (b *Broker) TakeAccountFlash(ctx context.Context, cookie string) (message, errMsg string) {
	sid, err := b.sessions.SIDOf(ctx, cookie)
	if err != nil || sid == "" {
		return "", ""
	}
	raw, err := b.eph.Take(ctx, accountFlashKey(sid))
	if err != nil {
		return "", ""
	}
	var f accountFlash
	if json.Unmarshal(raw, &f) != nil {
		return "", ""
	}
	return f.Message, f.Error
}
