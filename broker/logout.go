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
	"time"

	"github.com/latchkeyid/latchkey/broker/token"
	"github.com/latchkeyid/latchkey/storage"
)

// LogoutView is what the sign-out confirmation page shows.
type LogoutView struct {
	RequestID  string
	CSRF       string
	ClientName string // "" when no client was named
	Username   string
}

// SignedOut is the end of a logout: the front-channel logout URLs to load
// in iframes (Front-Channel Logout 1.0), then the redirect to the client
// (post_logout_redirect_uri with state), or, without one, a "signed out"
// page.
type SignedOut struct {
	FrontChannel []string
	Redirect     string
	ClientName   string
}

// LogoutResult is the answer to a logout request: exactly one of Page,
// Confirm and Done is set.
type LogoutResult struct {
	Page    *PageError
	Confirm *LogoutView
	Done    *SignedOut
	Cookies
}

// logoutRequest is a logout waiting for the user's confirmation, kept in
// the ephemeral store and bound to the browser like an auth request.
type logoutRequest struct {
	ID          string    `json:"id"`
	ClientID    string    `json:"client_id,omitempty"`
	RedirectURI string    `json:"redirect_uri,omitempty"` // post_logout_redirect_uri
	State       string    `json:"state,omitempty"`
	SID         string    `json:"sid"` // the session the page offered to end
	BindingHash string    `json:"binding_hash"`
	CreatedAt   time.Time `json:"created_at"`
}

func logoutKey(id string) string { return "logoutreq:" + id }

func logoutPage(status int, msg string, err error) LogoutResult {
	return LogoutResult{Page: &PageError{Status: status, Title: "Sign-out not possible", Message: msg, Err: err}}
}

// Logout handles a request to the end_session_endpoint (OpenID Connect
// RP-Initiated Logout 1.0) with its parameters: id_token_hint, client_id,
// post_logout_redirect_uri, state (ui_locales and others are ignored).
//
//   - id_token_hint must be an ID token we signed (expired is fine);
//     client_id, when both are given, must be one of its audiences.
//   - post_logout_redirect_uri needs the client named (hint or client_id)
//     and must be one of its post_logout_redirect_uris exactly; otherwise
//     an error page, never a redirect.
//   - When the hint names a session this browser holds (sid and sub), that
//     session ends at once. When it is missing or names another (stale)
//     session, a confirmation page asks before the browser's active
//     session ends. A browser without a session is simply signed out.
func (b *Broker) Logout(ctx context.Context, params map[string]string, binding string, bs BrowserSessions, meta RequestMeta) LogoutResult {
	bs = bs.normalize()
	var hint *token.IDTokenHint
	if raw := params["id_token_hint"]; raw != "" {
		h, err := b.tokens.VerifyIDTokenHint(ctx, raw)
		if err != nil {
			return logoutPage(400, "The sign-out request is not valid: the application sent an ID token this server cannot confirm.", err)
		}
		hint = &h
	}
	clientID := params["client_id"]
	if hint != nil {
		switch {
		case clientID != "" && !slices.Contains(hint.Audience, clientID):
			return logoutPage(400, "The sign-out request is not valid: client_id does not match the ID token.", fmt.Errorf("client_id %q not in the hint's audience", clientID))
		case clientID == "" && hint.AZP != "":
			clientID = hint.AZP
		case clientID == "" && len(hint.Audience) == 1:
			clientID = hint.Audience[0]
		}
	}
	var client storage.Client
	if clientID != "" {
		c, err := b.store.GetClient(ctx, clientID)
		switch {
		case errors.Is(err, storage.ErrNotFound) || (err == nil && c.Disabled):
			return logoutPage(400, "The application that sent you here is not registered.", fmt.Errorf("client %q: %w", clientID, storage.ErrNotFound))
		case err != nil:
			return LogoutResult{Page: &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}}
		}
		client = c
	}
	redirect := params["post_logout_redirect_uri"]
	if redirect != "" {
		if clientID == "" {
			return logoutPage(400, "The sign-out request is not valid: it names an address to return to but not the application (send client_id or id_token_hint).", nil)
		}
		if !slices.Contains(client.PostLogoutRedirectURIs, redirect) {
			return logoutPage(400, "The address to return to after signing out is not registered for this application.",
				fmt.Errorf("client %q: post_logout_redirect_uri %q not registered", clientID, redirect))
		}
	}
	lr := logoutRequest{ClientID: client.ID, RedirectURI: redirect, State: params["state"]}

	accts, err := b.accounts(ctx, bs)
	if err != nil {
		return LogoutResult{Page: &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}}
	}
	var target, active *account
	for i := range accts {
		a := &accts[i]
		if a.active {
			active = a
		}
		if hint != nil && hint.SID != "" && a.sess.SID == hint.SID && a.sess.UserID == hint.Subject {
			target = a
		}
	}
	switch {
	case target != nil:
		return b.signOut(ctx, lr, client, bs, target, "user:"+target.sess.UserID, meta)
	case active == nil:
		// Nothing to end in this browser: signed out already.
		res := b.signOut(ctx, lr, client, bs, nil, "", meta)
		if bs.Active != "" {
			res.ClearSession = true
		}
		return res
	}

	// Ask first: the hint is missing or stale.
	res := LogoutResult{}
	if !validBinding(binding) {
		binding, err = b.randomToken(32)
		if err != nil {
			return LogoutResult{Page: &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}}
		}
		res.Binding = binding
	}
	id, err := b.randomToken(24)
	if err != nil {
		return LogoutResult{Page: &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}}
	}
	lr.ID, lr.SID, lr.BindingHash, lr.CreatedAt = id, active.sess.SID, sha256Hex(binding), b.now()
	data, err := json.Marshal(lr)
	if err == nil {
		err = b.eph.Put(ctx, logoutKey(id), data, b.reqTTL)
	}
	if err != nil {
		return LogoutResult{Page: &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: fmt.Errorf("store logout request: %w", err)}}
	}
	view := &LogoutView{RequestID: id, CSRF: CSRFToken(binding, id)}
	if client.ID != "" {
		view.ClientName = clientName(client)
	}
	if u, err := b.store.GetUser(ctx, active.sess.UserID); err == nil {
		view.Username = u.Username
	}
	res.Confirm = view
	return res
}

// logoutPostTTL is how long a stashed POST /logout waits for its GET.
const logoutPostTTL = 5 * time.Minute

func logoutPostKey(id string) string { return "logoutpost:" + id }

// StashLogout keeps the parameters of a POST to the end_session_endpoint
// and returns a single-use id for the GET that resumes it. A client's
// cross-site form POST arrives without the SameSite=Lax session cookie;
// the 303 to a GET on our own origin brings it (DESIGN-NOTES.md, the same
// pattern as cross-site POST callbacks).
func (b *Broker) StashLogout(ctx context.Context, params map[string]string) (string, error) {
	id, err := b.randomToken(24)
	if err != nil {
		return "", err
	}
	data, err := json.Marshal(params)
	if err != nil {
		return "", fmt.Errorf("encode logout parameters: %w", err)
	}
	if err := b.eph.Put(ctx, logoutPostKey(id), data, logoutPostTTL); err != nil {
		return "", fmt.Errorf("store logout parameters: %w", err)
	}
	return id, nil
}

// ResumeLogout takes the parameters StashLogout kept; ok is false when
// they are gone (used, expired, never stashed).
func (b *Broker) ResumeLogout(ctx context.Context, id string) (map[string]string, bool, error) {
	if id == "" || len(id) > 64 {
		return nil, false, nil
	}
	data, err := b.eph.Take(ctx, logoutPostKey(id))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("load logout parameters: %w", err)
	}
	var params map[string]string
	if err := json.Unmarshal(data, &params); err != nil {
		return nil, false, fmt.Errorf("decode logout parameters: %w", err)
	}
	return params, true, nil
}

// ConfirmLogout answers the confirmation page: signOut true ends the
// session the page offered to end; false keeps it (a page says so).
func (b *Broker) ConfirmLogout(ctx context.Context, id, binding, csrf string, bs BrowserSessions, signOut bool, meta RequestMeta) LogoutResult {
	bs = bs.normalize()
	formExpired := func(err error) LogoutResult {
		return LogoutResult{Page: &PageError{Status: 400, Title: "Form expired", Message: "The sign-out form was not valid. Go back to the application and sign out again.", Err: err}}
	}
	if id == "" || len(id) > 64 || !validBinding(binding) || !checkCSRF(binding, id, csrf) {
		return formExpired(errors.New("csrf token mismatch"))
	}
	expired := LogoutResult{Page: &PageError{Status: 400, Title: "Sign-out expired", Message: "The sign-out request has expired or was already completed. Go back to the application and sign out again."}}
	data, err := b.eph.Get(ctx, logoutKey(id))
	if errors.Is(err, storage.ErrNotFound) {
		return expired
	}
	if err != nil {
		return LogoutResult{Page: &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}}
	}
	var lr logoutRequest
	if err := json.Unmarshal(data, &lr); err != nil {
		return LogoutResult{Page: &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: fmt.Errorf("decode logout request: %w", err)}}
	}
	if subtle.ConstantTimeCompare([]byte(sha256Hex(binding)), []byte(lr.BindingHash)) != 1 {
		return formExpired(errWrongBrowser)
	}
	// Single use: of two submissions only one goes on.
	if _, err := b.eph.Take(ctx, logoutKey(id)); errors.Is(err, storage.ErrNotFound) {
		return expired
	} else if err != nil {
		return LogoutResult{Page: &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}}
	}
	if !signOut {
		return LogoutResult{Page: &PageError{Status: 200, Title: "You are still signed in", Message: "You chose not to sign out. You can close this page."}}
	}
	var client storage.Client
	if lr.ClientID != "" {
		c, err := b.store.GetClient(ctx, lr.ClientID)
		if err == nil && !c.Disabled {
			client = c
		} else {
			lr.RedirectURI = "" // the client is gone: nowhere to return to
		}
	}
	accts, err := b.accounts(ctx, bs)
	if err != nil {
		return LogoutResult{Page: &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}}
	}
	var target *account
	for i := range accts {
		if accts[i].sess.SID == lr.SID {
			target = &accts[i]
		}
	}
	actor := ""
	if target != nil {
		actor = "user:" + target.sess.UserID
	}
	return b.signOut(ctx, lr, client, bs, target, actor, meta)
}

// signOut ends target (nil: nothing to end) and answers with the
// front-channel URLs and where to go next.
func (b *Broker) signOut(ctx context.Context, lr logoutRequest, client storage.Client, bs BrowserSessions, target *account, actor string, meta RequestMeta) LogoutResult {
	done := &SignedOut{}
	if client.ID != "" {
		done.ClientName = clientName(client)
	}
	if lr.RedirectURI != "" {
		r := Redirect{URI: lr.RedirectURI, Params: url.Values{}}
		if lr.State != "" {
			r.Params.Set("state", lr.State)
		}
		done.Redirect = r.URL()
	}
	res := LogoutResult{Done: done}
	if target == nil {
		return res
	}
	sess, clients, ok, err := b.endSession(ctx, target.sess.SID, ReasonLogout, actor, meta)
	if err != nil {
		b.log.ErrorContext(ctx, "sign out", slog.Any("error", err))
		return LogoutResult{Page: &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}}
	}
	if ok {
		done.FrontChannel = b.frontChannelURLs(sess, clients)
		// Single logout at a SAML IdP: the browser goes there next and
		// comes back to /saml/{connector}/slo, which continues to the
		// client.
		if slo := b.samlSingleLogout(ctx, sess.SID, sess.ConnectorID, done.Redirect, done.ClientName); slo != "" {
			done.Redirect = slo
		}
	}
	if target.active {
		res.ClearSession = true
	} else {
		res.SetOthers, res.Others = true, withOthers(bs.Others, "", target.cookie)
	}
	return res
}
