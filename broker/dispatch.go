package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/latchkeyid/latchkey/broker/oauth2"
	"github.com/latchkeyid/latchkey/session"
	"github.com/latchkeyid/latchkey/storage"
)

// dispatch decides the next step of a login from the stored request and
// the browser's sessions. Every step ends here; only dispatch issues a
// code, once, deleting the request in the same operation.
func (b *Broker) dispatch(ctx context.Context, req *AuthRequest, client storage.Client, bs BrowserSessions) Result {
	promptNone := slices.Contains(req.Prompt, oauth2.PromptNone)

	if req.UserID == "" && req.PendingLink != nil {
		// A fresh sign-in proves the account: no session stands in for it.
		return b.next(ctx, req, StepLink)
	}
	if req.UserID == "" {
		if res, done := b.fromSession(ctx, req, client, bs, promptNone); done {
			return res
		}
	}

	user, err := b.store.GetUser(ctx, req.UserID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && user.Disabled) {
		return b.errorRedirect(req, oauth2.ErrAccessDenied("the account is not available", nil))
	}
	if err != nil {
		return b.errorRedirect(req, oauth2.ErrServerError("", err))
	}

	// The second factor: what the policy and acr_values still need
	// from the session's steps (broker/mfa.go).
	if res, done := b.secondFactor(ctx, req, user, promptNone); done {
		return res
	}
	// A pending link is made once the proof (with its second factor) is
	// complete (federation_link.go).
	if res, done := b.completeLink(ctx, req, client); done {
		return res
	}

	if !req.ConsentGiven && !firstParty(client) {
		need, err := b.needsConsent(ctx, req)
		if err != nil {
			return b.errorRedirect(req, oauth2.ErrServerError("", err))
		}
		if need {
			if promptNone {
				return b.errorRedirect(req, oauth2.ErrConsentRequired("the user has not granted these scopes", nil))
			}
			return b.next(ctx, req, StepConsent)
		}
	}
	return b.finish(ctx, req, client)
}

// next stores the request and sends the browser to one of our pages.
func (b *Broker) next(ctx context.Context, req *AuthRequest, step Step) Result {
	if err := b.saveRequest(ctx, req); err != nil {
		if errors.Is(err, errRequestExpired) {
			return Result{Page: expiredPage(err)}
		}
		return b.errorRedirect(req, oauth2.ErrServerError("", err))
	}
	return Result{Next: step, RequestID: req.ID}
}

// fromSession signs the request in with the browser's active session
// when it may (filling in req; done is false), or answers the step that
// must come first: the account chooser, the password form, or, under
// prompt=none, the error that says which interaction is needed.
func (b *Broker) fromSession(ctx context.Context, req *AuthRequest, client storage.Client, bs BrowserSessions, promptNone bool) (Result, bool) {
	if req.AddAccount {
		return b.next(ctx, req, StepLogin), true
	}
	sess, err := b.sessions.Get(ctx, bs.Active)
	if err != nil && !errors.Is(err, session.ErrNoSession) {
		return b.errorRedirect(req, oauth2.ErrServerError("", err)), true
	}
	active := err == nil

	// prompt=select_account (never with none), or no active session in a
	// browser that holds other accounts: the account chooser.
	chooser := slices.Contains(req.Prompt, oauth2.PromptSelectAccount) && !req.AccountChosen
	if chooser || !active {
		accts, err := b.accounts(ctx, bs)
		if err != nil {
			return b.errorRedirect(req, oauth2.ErrServerError("", err)), true
		}
		switch {
		case len(accts) > 0 && promptNone:
			return b.errorRedirect(req, oauth2.ErrAccountSelectionRequired("the user must choose one of the accounts signed in", nil)), true
		case len(accts) > 0 && (chooser || !req.AccountChosen):
			return b.next(ctx, req, StepSelectAccount), true
		}
	}
	if !active {
		if promptNone {
			return b.errorRedirect(req, oauth2.ErrLoginRequired("the user is not signed in", nil)), true
		}
		return b.next(ctx, req, StepLogin), true
	}
	switch b.sessionCheck(req, client, sess) {
	case sessionNeedsLogin:
		if promptNone {
			return b.errorRedirect(req, oauth2.ErrLoginRequired("the user is not signed in", nil)), true
		}
		if req.AccountChosen && req.LoginHint == "" {
			if u, err := b.store.GetUser(ctx, sess.UserID); err == nil {
				req.LoginHint = u.Username
			}
		}
		return b.next(ctx, req, StepLogin), true
	case sessionNeedsInteraction:
		if promptNone {
			return b.errorRedirect(req, oauth2.ErrInteractionRequired("the user must sign in another way for this client", nil)), true
		}
		return b.next(ctx, req, StepLogin), true
	}
	req.UserID, req.AuthTime, req.AMR, req.SID, req.LoginConnID = sess.UserID, sess.AuthTime, sess.AMR, sess.SID, sess.ConnectorID
	req.SessionCookie = bs.Active
	return Result{}, false
}

// sessionVerdict is what a session is worth for a request.
type sessionVerdict int

const (
	sessionOK sessionVerdict = iota
	// sessionNeedsLogin: the user must authenticate again (prompt=login,
	// max_age exceeded): prompt=none answers login_required.
	sessionNeedsLogin
	// sessionNeedsInteraction: the session is fine, but was made through
	// a connector this request or client does not accept: the user must
	// sign in another way; prompt=none answers interaction_required.
	sessionNeedsInteraction
)

// sessionCheck decides whether the session may sign this request in
// without asking again.
func (b *Broker) sessionCheck(req *AuthRequest, client storage.Client, s session.Session) sessionVerdict {
	// Also after the account chooser: choosing is not signing in.
	if slices.Contains(req.Prompt, oauth2.PromptLogin) {
		return sessionNeedsLogin
	}
	// max_age=0 is prompt=login (OIDC Core §3.1.2.1), also within the
	// second of the last sign-in.
	if req.MaxAge != nil && (*req.MaxAge == 0 || b.now().Sub(s.AuthTime) > time.Duration(*req.MaxAge)*time.Second) {
		return sessionNeedsLogin
	}
	if req.ConnectorID != "" && req.ConnectorID != s.ConnectorID {
		return sessionNeedsInteraction
	}
	if len(client.AllowedConnectors) > 0 && !slices.Contains(client.AllowedConnectors, s.ConnectorID) {
		return sessionNeedsInteraction
	}
	return sessionOK
}

func (b *Broker) needsConsent(ctx context.Context, req *AuthRequest) (bool, error) {
	if slices.Contains(req.Prompt, oauth2.PromptConsent) {
		return true, nil
	}
	c, err := b.store.GetConsent(ctx, req.UserID, req.ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("load consent: %w", err)
	}
	for _, s := range req.Scopes {
		if !slices.Contains(c.Scopes, s) {
			return true, nil
		}
	}
	return false, nil
}

// codeRecord is what a code stands for, stored under the code's hash.
type codeRecord struct {
	ClientID            string          `json:"client_id"`
	RedirectURI         string          `json:"redirect_uri"`
	UserID              string          `json:"user_id"`
	Scopes              []string        `json:"scopes"`
	Nonce               string          `json:"nonce,omitempty"`
	CodeChallenge       string          `json:"code_challenge,omitempty"`
	CodeChallengeMethod string          `json:"code_challenge_method,omitempty"`
	AuthTime            time.Time       `json:"auth_time"`
	AMR                 []string        `json:"amr"`
	SID                 string          `json:"sid"`
	Claims              json.RawMessage `json:"claims,omitempty"`
	IssuedAt            time.Time       `json:"issued_at"`
}

func codeKey(hash string) string     { return "code:" + hash }
func redeemedKey(hash string) string { return "code-redeemed:" + hash }

// finish issues the code and deletes the request: Take makes sure that of
// two concurrent finishes only one issues a code.
func (b *Broker) finish(ctx context.Context, req *AuthRequest, client storage.Client) Result {
	if _, err := b.eph.Take(ctx, requestKey(req.ID)); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return b.errorRedirect(req, oauth2.ErrServerError("", err))
	} else if errors.Is(err, storage.ErrNotFound) && req.stored {
		return Result{Page: expiredPage(err)}
	}
	code, err := b.randomToken(32)
	if err != nil {
		return b.errorRedirect(req, oauth2.ErrServerError("", err))
	}
	rec := codeRecord{
		ClientID: req.ClientID, RedirectURI: req.RedirectURI, UserID: req.UserID, Scopes: req.Scopes,
		Nonce: req.Nonce, CodeChallenge: req.CodeChallenge, CodeChallengeMethod: req.CodeChallengeMethod,
		AuthTime: req.AuthTime, AMR: req.AMR, SID: req.SID, Claims: req.Claims, IssuedAt: b.now(),
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return b.errorRedirect(req, oauth2.ErrServerError("", err))
	}
	if err := b.eph.Create(ctx, codeKey(sha256Hex(code)), data, b.codeTTL); err != nil {
		return b.errorRedirect(req, oauth2.ErrServerError("", fmt.Errorf("store code: %w", err)))
	}
	if req.SessionCookie != "" {
		if err := b.sessions.AddClient(ctx, req.SessionCookie, client.ID); err != nil {
			b.log.WarnContext(ctx, "record client in session", slog.Any("error", err))
		}
	}
	params := map[string][]string{"code": {code}, "iss": {b.issuer}}
	if req.State != "" {
		params["state"] = []string{req.State}
	}
	return Result{Redirect: &Redirect{URI: req.RedirectURI, Mode: req.ResponseMode, Params: params}}
}
