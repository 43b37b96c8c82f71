package broker

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/latchkeyid/latchkey/broker/oauth2"
	"github.com/latchkeyid/latchkey/providers"
	samlconn "github.com/latchkeyid/latchkey/providers/saml"
	"github.com/latchkeyid/latchkey/storage"
)

// Federation is what the broker needs to sign users in through upstream
// connectors.
type Federation struct {
	// Connectors is the live set of open connectors; nil: none.
	Connectors *Connectors
	// Store links identities to users (storage.Durable satisfies it).
	Store FederationStore
}

// FederationStore is the durable data federation reads and writes. Tx
// lets a new user, its identity link and their audit events commit
// together.
type FederationStore interface {
	GetIdentity(ctx context.Context, connectorID, subject string) (storage.Identity, error)
	UpdateIdentity(ctx context.Context, connectorID, subject string, fn func(storage.Identity) (storage.Identity, error)) error
	Tx(ctx context.Context, fn func(ctx context.Context, tx storage.Durable) error) error
}

// PathCallbackPrefix is where upstreams return the browser:
// {issuer}/callback/{connector id} (register it at the upstream).
const PathCallbackPrefix = "/callback/"

// AMRFederated marks a login through an upstream (CONTRACTS.md).
const AMRFederated = "fed"

// CallbackURL is the redirect URI to register at the upstream for a
// connector.
func (b *Broker) CallbackURL(connectorID string) string {
	return b.issuer + PathCallbackPrefix + url.PathEscape(connectorID)
}

// UpstreamView is one connector button on the login page.
type UpstreamView struct {
	ID   string
	Name string
}

// upstreamState is what an upstream login in flight keeps, under the
// hash of its state parameter: the request it belongs to and the secrets
// the callback needs. The request's binding cookie still decides whether
// the browser that comes back may continue it.
type upstreamState struct {
	RequestID   string `json:"request_id"`
	ConnectorID string `json:"connector_id"`
	Nonce       string `json:"nonce"`
	Verifier    string `json:"verifier"`
	CallbackURL string `json:"callback_url"`
	// Account is set, and RequestID empty, for a link started on the
	// account page (account_link.go).
	Account *accountLinkBinding `json:"account,omitempty"`
}

func upstreamStateKey(state string) string { return "upstream-state:" + sha256Hex(state) }
func upstreamPostKey(state string) string  { return "upstream-post:" + sha256Hex(state) }
func fedSessionKey(sid string) string      { return "fed-sid:" + sid }

// fedSession says which identity signed an SSO session in (for the
// upstream refresh of refresh tokens issued under it).
type fedSession struct {
	ConnectorID string `json:"connector_id"`
	Subject     string `json:"subject"`
}

// connectorAllowed reports whether client (and the request's
// connector_id hint) allow signing in through id.
func connectorAllowed(client storage.Client, req *AuthRequest, id string) bool {
	if len(client.AllowedConnectors) > 0 && !slices.Contains(client.AllowedConnectors, id) {
		return false
	}
	// A pending link is proven with the existing account's way in,
	// whatever connector_id chose for the first sign-in.
	return req.ConnectorID == "" || req.ConnectorID == id || req.PendingLink != nil
}

// loginView builds the login page: the password form when "local" or an
// upstream PasswordConnector is allowed, and a button per allowed
// callback connector.
func (b *Broker) loginView(req *AuthRequest, client storage.Client, binding, hint string) LoginView {
	v := LoginView{RequestID: req.ID, CSRF: CSRFToken(binding, req.ID), ClientName: clientName(client), LoginHint: hint, ForgotPassword: b.AccountMailEnabled()}
	if b.password != nil && connectorAllowed(client, req, LocalConnectorID) {
		v.PasswordConnectors = append(v.PasswordConnectors, UpstreamView{ID: LocalConnectorID, Name: "Local account"})
	}
	for _, up := range b.fed.Connectors.List() {
		if !connectorAllowed(client, req, up.Connector.ID()) {
			continue
		}
		uv := UpstreamView{ID: up.Connector.ID(), Name: up.Connector.Name()}
		if _, ok := up.Connector.(providers.PasswordConnector); ok {
			v.PasswordConnectors = append(v.PasswordConnectors, uv)
		}
		_, isCallback := up.Connector.(providers.CallbackConnector)
		_, isSAML := up.Connector.(samlconn.Capability)
		if isCallback || isSAML {
			v.Upstreams = append(v.Upstreams, uv)
		}
	}
	v.Password = len(v.PasswordConnectors) > 0
	v.Register = b.registrationOffered(req, client)
	return v
}

// skipChooser returns the connector to start right away, if any: the
// request's connector_id; or the only way in (one upstream, no password
// form); or, for a login_hint naming a user who signs in through exactly
// one allowed upstream and has no password, that upstream.
func (b *Broker) skipChooser(ctx context.Context, req *AuthRequest, v LoginView) string {
	switch {
	case len(v.Upstreams) == 0:
		return ""
	case req.ConnectorID != "" && req.ConnectorID != LocalConnectorID:
		return v.Upstreams[0].ID // connectorAllowed left only that one
	case len(v.Upstreams) == 1 && !v.Password:
		return v.Upstreams[0].ID
	case req.LoginHint == "" || b.fed.Store == nil:
		return ""
	}
	var pick string
	_ = b.fed.Store.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
		u, err := tx.GetUserByUsername(ctx, req.LoginHint)
		if err != nil {
			users, lerr := tx.ListUsersByEmail(ctx, req.LoginHint)
			if lerr != nil || len(users) != 1 {
				return nil
			}
			u = users[0]
		}
		if u.PasswordHash != "" && v.Password {
			return nil
		}
		ids, err := tx.ListUserIdentities(ctx, u.ID)
		if err != nil {
			return nil
		}
		for _, id := range ids {
			if slices.ContainsFunc(v.PasswordConnectors, func(x UpstreamView) bool { return x.ID == id.ConnectorID }) {
				pick = "" // signs in on the password form
				return nil
			}
			if slices.ContainsFunc(v.Upstreams, func(x UpstreamView) bool { return x.ID == id.ConnectorID }) {
				if pick != "" && pick != id.ConnectorID {
					pick = ""
					return nil
				}
				pick = id.ConnectorID
			}
		}
		return nil
	})
	return pick
}

// BeginUpstream starts a login through connector connectorID for request
// id (the login page's connector button): it stores a fresh state, nonce
// and PKCE verifier for the callback and sends the browser upstream.
func (b *Broker) BeginUpstream(ctx context.Context, id, binding, csrf, connectorID string, meta RequestMeta) Result {
	req, client, perr := b.requestPage(ctx, id, binding)
	if perr != nil {
		return Result{Page: perr}
	}
	if !checkCSRF(binding, id, csrf) {
		return pageErr(400, "Form expired", "The form was not valid for this sign-in. Go back to the application and start again.", errors.New("csrf token mismatch"))
	}
	return b.beginUpstream(ctx, req, client, connectorID, meta)
}

func (b *Broker) beginUpstream(ctx context.Context, req *AuthRequest, client storage.Client, connectorID string, meta RequestMeta) Result {
	up, ok := b.fed.Connectors.Get(connectorID)
	if sc, isSAML := up.Connector.(samlconn.Capability); ok && isSAML && connectorAllowed(client, req, connectorID) {
		return b.beginSAML(ctx, req, client, up, sc, meta)
	}
	cc, isCallback := up.Connector.(providers.CallbackConnector)
	if !ok || !isCallback || !connectorAllowed(client, req, connectorID) {
		return pageErr(400, "Not available", "This sign-in method is not available for this application.", fmt.Errorf("connector %q unknown or not allowed", connectorID))
	}
	ttl := req.CreatedAt.Add(b.reqTTL).Sub(b.now())
	if ttl <= 0 {
		return Result{Page: expiredPage(errRequestExpired)}
	}
	lr := providers.LoginRequest{LoginHint: req.LoginHint}
	switch {
	case slices.Contains(req.Prompt, oauth2.PromptLogin):
		lr.Prompt = oauth2.PromptLogin
	case slices.Contains(req.Prompt, oauth2.PromptSelectAccount):
		lr.Prompt = oauth2.PromptSelectAccount
	}
	loginURL, upErr, err := b.startUpstreamLogin(ctx, cc, upstreamState{RequestID: req.ID, ConnectorID: connectorID}, lr, ttl)
	switch {
	case upErr != nil:
		return b.upstreamFailed(ctx, req, client, up, upErr, meta)
	case err != nil:
		return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err)
	}
	return Result{Redirect: &Redirect{URI: loginURL}}
}

// startUpstreamLogin is the start of every login at a callback
// connector (a sign-in, or a link from the account page): a fresh state,
// nonce and PKCE verifier; the connector's login URL for lr; and st,
// completed with them, stored under the state's hash for ttl. upErr is
// the connector's own failure (for upstreamFailed), err ours.
func (b *Broker) startUpstreamLogin(ctx context.Context, cc providers.CallbackConnector, st upstreamState, lr providers.LoginRequest, ttl time.Duration) (loginURL string, upErr, err error) {
	state, err1 := b.randomToken(32)
	nonce, err2 := b.randomToken(32)
	verifier, err3 := b.randomToken(32)
	if err := errors.Join(err1, err2, err3); err != nil {
		return "", nil, err
	}
	sum := sha256.Sum256([]byte(verifier))
	st.Nonce, st.Verifier, st.CallbackURL = nonce, verifier, b.CallbackURL(st.ConnectorID)
	lr.CallbackURL, lr.State, lr.Nonce = st.CallbackURL, state, nonce
	lr.CodeChallenge = base64.RawURLEncoding.EncodeToString(sum[:])
	if loginURL, upErr = cc.LoginURL(ctx, lr); upErr != nil {
		return "", upErr, nil
	}
	data, err := json.Marshal(st)
	if err == nil {
		err = b.eph.Put(ctx, upstreamStateKey(state), data, ttl)
	}
	if err != nil {
		return "", nil, fmt.Errorf("store upstream state: %w", err)
	}
	return loginURL, nil, nil
}

// maxPostedCallback bounds what a form_post callback may store.
const maxPostedCallback = 64 << 10

// StoreUpstreamPost keeps a callback the upstream POSTed cross-site
// (response_mode=form_post, where the browser sends no Lax cookies) under
// its state for a short while and returns the same-origin URL to answer
// 303 to: the GET there carries the binding cookie, and UpstreamCallback
// continues with the stored parameters.
func (b *Broker) StoreUpstreamPost(ctx context.Context, connectorID string, form url.Values) (string, *PageError) {
	state := form.Get("state")
	enc := form.Encode()
	if state == "" || len(state) > 512 || len(enc) > maxPostedCallback {
		return "", &PageError{Status: 400, Title: "Sign-in failed", Message: "The identity provider's answer could not be read. Go back to the application and start again.", Err: errors.New("posted callback without state or too large")}
	}
	if err := b.eph.Put(ctx, upstreamPostKey(state), []byte(enc), b.codeTTL); err != nil {
		return "", &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}
	}
	return PathCallbackPrefix + url.PathEscape(connectorID) + "?" + url.Values{"state": {state}}.Encode(), nil
}

// UpstreamCallback handles the browser's return from an upstream at
// /callback/{connectorID}: it finds the login by its state (single use),
// checks that this browser started it, lets the connector verify the
// answer, links the identity to a user, signs the browser in and returns
// to the dispatcher.
func (b *Broker) UpstreamCallback(ctx context.Context, connectorID, binding string, query url.Values, bs BrowserSessions, meta RequestMeta) Result {
	st, state, query, perr := b.takeUpstreamState(ctx, connectorID, query)
	if perr != nil {
		return Result{Page: perr}
	}
	if st.Account != nil { // a link from the account page (account_link.go)
		return b.accountLinkCallback(ctx, st, state, query, binding, bs.Active, meta)
	}
	req, client, perr := b.requestPage(ctx, st.RequestID, binding)
	if perr != nil {
		return Result{Page: perr}
	}
	up, ok := b.fed.Connectors.Get(connectorID)
	cc, isCallback := up.Connector.(providers.CallbackConnector)
	if !ok || !isCallback || !connectorAllowed(client, req, connectorID) {
		return pageErr(400, "Not available", "This sign-in method is not available for this application.", fmt.Errorf("connector %q unknown or not allowed", connectorID))
	}
	ident, err := upstreamIdentity(ctx, cc, st, state, query)
	if err != nil {
		return b.upstreamFailed(ctx, req, client, up, err, meta)
	}
	return b.upstreamSignedIn(ctx, req, client, bs, up, ident, meta, linkModeFor(req))
}

// takeUpstreamState reads a callback's state at /callback/{connectorID}:
// a form_post answer stored under it replaces query, and the login in
// flight is taken (single use) and must be this connector's.
func (b *Broker) takeUpstreamState(ctx context.Context, connectorID string, query url.Values) (upstreamState, string, url.Values, *PageError) {
	state := query.Get("state")
	if state == "" || len(state) > 512 {
		return upstreamState{}, "", nil, &PageError{Status: 400, Title: "Sign-in failed", Message: "The identity provider's answer is missing its state. Go back to the application and start again.", Err: errors.New("callback without state")}
	}
	if len(query) == 1 { // a form_post answer, re-read on our own origin
		if posted, err := b.eph.Take(ctx, upstreamPostKey(state)); err == nil {
			if q, err := url.ParseQuery(string(posted)); err == nil {
				query = q
			}
		}
	}
	raw, err := b.eph.Take(ctx, upstreamStateKey(state))
	if errors.Is(err, storage.ErrNotFound) {
		return upstreamState{}, "", nil, expiredPage(errors.New("unknown or replayed upstream state"))
	}
	if err != nil {
		return upstreamState{}, "", nil, &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}
	}
	var st upstreamState
	if err := json.Unmarshal(raw, &st); err != nil {
		return upstreamState{}, "", nil, &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}
	}
	if st.ConnectorID != connectorID {
		return upstreamState{}, "", nil, &PageError{Status: 400, Title: "Sign-in failed", Message: "The identity provider's answer arrived at the wrong address. Go back to the application and start again.",
			Err: fmt.Errorf("state of connector %q at the callback of %q", st.ConnectorID, connectorID)}
	}
	return st, state, query, nil
}

// upstreamIdentity lets the connector verify its answer against the
// login's secrets; the identity's AMR includes "fed".
func upstreamIdentity(ctx context.Context, cc providers.CallbackConnector, st upstreamState, state string, query url.Values) (providers.Identity, error) {
	ident, err := cc.HandleCallback(ctx, providers.CallbackRequest{
		CallbackURL: st.CallbackURL, Query: query, State: state, Nonce: st.Nonce, CodeVerifier: st.Verifier,
	})
	if err != nil {
		return providers.Identity{}, err
	}
	if !slices.Contains(ident.AMR, AMRFederated) {
		ident.AMR = append([]string{AMRFederated}, ident.AMR...)
	}
	return ident, nil
}

// upstreamSignedIn finishes a login through an upstream connector
// (callback or password): it links the identity to a user (mode), signs
// the browser in, records the federated session and returns to the
// dispatcher. An identity whose email names existing accounts it may not
// be linked to without proof leaves a pending link and sends the browser
// to the link page instead (federation_link.go).
func (b *Broker) upstreamSignedIn(ctx context.Context, req *AuthRequest, client storage.Client, bs BrowserSessions, up Upstream, ident providers.Identity, meta RequestMeta, mode linkMode) Result {
	connectorID := up.Connector.ID()
	user, candidates, perr := b.linkIdentity(ctx, up, ident, client, meta, mode)
	if perr != nil {
		return Result{Page: perr}
	}
	if len(candidates) > 0 {
		return b.askLink(ctx, req, connectorID, ident, candidates, meta)
	}
	if perr := req.checkProof(user.ID); perr != nil {
		return Result{Page: perr}
	}
	cookies, sess, err := b.signIn(ctx, req, bs, user.ID, connectorID, ident.AMR, meta)
	if err != nil {
		return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err)
	}
	b.audit(ctx, storage.Event{Type: "user.login.succeeded", Actor: "user:" + user.ID, UserID: user.ID,
		ClientID: client.ID, ConnectorID: connectorID, IP: meta.IP, UserAgent: meta.UserAgent, RequestID: meta.RequestID,
		Data: map[string]any{"sid": sess.SID, "amr": ident.AMR}})
	if data, err := json.Marshal(fedSession{ConnectorID: connectorID, Subject: ident.Subject}); err == nil {
		// As long as a refresh family of this session may live.
		if err := b.eph.Put(ctx, fedSessionKey(sess.SID), data, b.refresh.absolute); err != nil {
			b.log.WarnContext(ctx, "record the federated session", slog.Any("error", err))
		}
	}
	req.UserID, req.AuthTime, req.AMR, req.SID, req.LoginConnID = user.ID, sess.AuthTime, sess.AMR, sess.SID, connectorID
	req.SessionCookie = cookies.SessionCookie
	res := b.dispatch(ctx, req, client, BrowserSessions{Active: cookies.SessionCookie, Others: cookies.Others})
	res.Cookies = mergeCookies(res.Cookies, cookies)
	return res
}

// upstreamFailed turns a connector error into the page the user sees.
func (b *Broker) upstreamFailed(ctx context.Context, req *AuthRequest, client storage.Client, up Upstream, err error, meta RequestMeta) Result {
	name, id := up.Connector.Name(), up.Connector.ID()
	var (
		denied   *providers.DeniedError
		upErr    *providers.UpstreamError
		unavail  *providers.UnavailableError
		refused  *samlconn.ACSError
		evType   = "user.login.failed"
		evReason string
		res      Result
	)
	switch {
	case errors.As(err, &denied):
		evType, evReason = "user.login.denied", denied.Reason
		res = pageErr(403, "Access denied", fmt.Sprintf("%s: %s", name, denied.Reason), err)
	case errors.As(err, &unavail) || errors.Is(err, providers.ErrUpstreamUnavailable):
		evReason = "unavailable"
		res = pageErr(503, name+" is unavailable", fmt.Sprintf("%s is not answering right now. Try again in a moment, or sign in another way.", name), err)
	case errors.As(err, &upErr):
		evReason = "upstream error " + truncate(upErr.Code, 64)
		msg := fmt.Sprintf("%s did not sign you in (%s). Go back to the application and start again.", name, truncate(upErr.Code, 64))
		res = pageErr(400, "Sign-in cancelled", msg, err)
	case errors.As(err, &refused):
		// A refused SAML response: its reason is stable, its message safe
		// to show.
		evReason = "saml " + string(refused.Reason)
		res = pageErr(400, "Sign-in failed", fmt.Sprintf("The answer from %s was refused: %s. Go back to the application and start again.", name, refused.Message), err)
	case errors.Is(err, providers.ErrInvalidCallback):
		evReason = "invalid callback"
		res = pageErr(400, "Sign-in failed", fmt.Sprintf("The answer from %s could not be verified. Go back to the application and start again.", name), err)
	default:
		evReason = "error"
		res = pageErr(500, "Server error", "Something went wrong on our side. Please try again.", err)
	}
	b.log.WarnContext(ctx, "upstream sign-in failed", slog.String("connector_id", id), slog.Any("error", err))
	b.audit(ctx, storage.Event{Type: evType, ClientID: client.ID, ConnectorID: id, IP: meta.IP, UserAgent: meta.UserAgent,
		RequestID: meta.RequestID, Data: map[string]any{"reason": truncate(evReason, 200)}})
	return res
}

// linkIdentity finds or makes the user an upstream identity signs in:
// the user the identity is linked to; else, for a connector with
// trustEmail and a verified email, the one active user with that
// verified email; else, when active users have the identity's email, no
// user but their ids (candidates: the user must prove one of them
// first); else a new user. linkExisting only accepts an identity linked
// already (a proof sign-in); linkNewUser skips the email match (the user
// chose a separate account). A new link is audited with the change. The
// identity's sealed ConnectorData and last login are stored; users
// without a local password take their profile from the upstream.
func (b *Broker) linkIdentity(ctx context.Context, up Upstream, ident providers.Identity, client storage.Client, meta RequestMeta, mode linkMode) (storage.User, []string, *PageError) {
	if b.fed.Store == nil {
		return storage.User{}, nil, &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: errors.New("federation without a store")}
	}
	connID := up.Connector.ID()
	now := b.now()
	var user storage.User
	var candidates []string
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		candidates = nil
		err = b.fed.Store.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
			existing, err := tx.GetIdentity(ctx, connID, ident.Subject)
			switch {
			case err == nil:
				if user, err = tx.GetUser(ctx, existing.UserID); err != nil {
					return err
				}
				ident = mergeStored(up, user, existing, ident)
				if err := tx.UpdateIdentity(ctx, connID, ident.Subject, func(i storage.Identity) (storage.Identity, error) {
					i.Email, i.LastLoginAt = ident.Email, now
					if len(ident.ConnectorData) > 0 {
						i.ConnectorData = ident.ConnectorData
					}
					return i, nil
				}); err != nil {
					return err
				}
				return b.syncProfile(ctx, tx, &user, connID, ident)
			case !errors.Is(err, storage.ErrNotFound):
				return err
			case mode == linkExisting:
				return errNotLinked
			}
			reason := ""
			if mode == linkFirstLogin && up.TrustEmail && ident.EmailVerified && ident.Email != "" {
				users, err := tx.ListUsersByEmail(ctx, ident.Email)
				if err != nil {
					return err
				}
				users = slices.DeleteFunc(users, func(u storage.User) bool { return !u.EmailVerified || u.Disabled })
				if len(users) == 1 {
					user, reason = users[0], "verified_email"
				}
			}
			if reason == "" && mode == linkFirstLogin && ident.Email != "" {
				if candidates, err = emailCandidates(ctx, tx, ident.Email); err != nil || len(candidates) > 0 {
					return err // nothing written: the user proves an account first
				}
			}
			if reason == "" {
				if user, err = b.newFederatedUser(ctx, tx, connID, ident); err != nil {
					return err
				}
				reason = "new_user"
				if err := tx.AppendEvent(ctx, storage.Event{Type: "user.created", Time: now, Actor: "connector:" + connID, UserID: user.ID,
					ConnectorID: connID, ClientID: client.ID, IP: meta.IP, UserAgent: meta.UserAgent, RequestID: meta.RequestID,
					Data: map[string]any{"username": user.Username}}); err != nil {
					return err
				}
			}
			if err := tx.CreateIdentity(ctx, storage.Identity{ConnectorID: connID, Subject: ident.Subject, UserID: user.ID,
				Email: ident.Email, ConnectorData: ident.ConnectorData, CreatedAt: now, LastLoginAt: now}); err != nil {
				return err
			}
			return tx.AppendEvent(ctx, storage.Event{Type: "identity.linked", Time: now, Actor: "user:" + user.ID, UserID: user.ID,
				ConnectorID: connID, ClientID: client.ID, IP: meta.IP, UserAgent: meta.UserAgent, RequestID: meta.RequestID,
				Data: map[string]any{"subject": truncate(ident.Subject, 255), "reason": reason}})
		})
		if !errors.Is(err, storage.ErrConflict) {
			break // a concurrent first login linked it: the retry finds it
		}
	}
	switch {
	case errors.Is(err, errNotLinked):
		return storage.User{}, nil, notTheAccountPage(up.Connector.Name(), err)
	case err != nil:
		return storage.User{}, nil, &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: fmt.Errorf("link identity: %w", err)}
	case len(candidates) > 0:
		return storage.User{}, candidates, nil
	}
	if user.Disabled {
		return storage.User{}, nil, &PageError{Status: 403, Title: "Account disabled", Message: "Your account is disabled. Contact your administrator.", Err: fmt.Errorf("user %q is disabled", user.ID)}
	}
	return user, nil, nil
}

// mergeStored completes a later login's identity from what was stored at
// the first (the name, kept in the user record of a user without a
// password) for connectors whose upstream sends part of the profile only
// once (providers.IdentityMerger: Sign in with Apple's name).
func mergeStored(up Upstream, u storage.User, stored storage.Identity, fresh providers.Identity) providers.Identity {
	m, ok := up.Connector.(providers.IdentityMerger)
	if !ok {
		return fresh
	}
	return m.MergeIdentity(providers.Identity{Subject: stored.Subject, Email: stored.Email, EmailVerified: u.EmailVerified,
		Name: u.Name, Groups: u.Groups}, fresh)
}

// syncProfile copies the upstream's view of the user into a user without
// a local password (one that federation created): the ID token's claims
// follow the upstream's mapped claims. Only the identity the user was
// created with (its oldest) does: one linked later (from the account
// page, or by proof) signs in but does not choose the user's address,
// its verified flag, name or groups.
func (b *Broker) syncProfile(ctx context.Context, tx storage.Durable, u *storage.User, connectorID string, ident providers.Identity) error {
	if u.PasswordHash != "" {
		return nil
	}
	ids, err := tx.ListUserIdentities(ctx, u.ID)
	if err != nil {
		return err
	}
	if len(ids) > 0 && (ids[0].ConnectorID != connectorID || ids[0].Subject != ident.Subject) {
		return nil
	}
	next := *u
	next.Email, next.EmailVerified, next.Name, next.Groups = ident.Email, ident.EmailVerified, ident.Name, ident.Groups
	if sameExceptUpdated(*u, next) {
		return nil
	}
	next.UpdatedAt = b.now()
	if err := tx.UpdateUser(ctx, u.ID, func(storage.User) (storage.User, error) { return next, nil }); err != nil {
		return err
	}
	*u = next
	return nil
}

func sameExceptUpdated(a, b storage.User) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

var usernameUnsafe = regexp.MustCompile(`[^A-Za-z0-9._@+-]+`)

// newFederatedUser creates the user for a first login: the username
// comes from the identity (username, else email, else connector and
// subject), made unique with a numeric suffix.
func (b *Broker) newFederatedUser(ctx context.Context, tx storage.Durable, connID string, ident providers.Identity) (storage.User, error) {
	base := ident.Username
	if base == "" {
		base = ident.Email
	}
	if base = strings.Trim(usernameUnsafe.ReplaceAllString(base, "-"), "-"); base == "" {
		base = connID + "-" + usernameUnsafe.ReplaceAllString(ident.Subject, "-")
	}
	base = truncate(base, 64)
	id, err := b.randomToken(16)
	if err != nil {
		return storage.User{}, err
	}
	u := storage.User{ID: id, Email: ident.Email, EmailVerified: ident.EmailVerified, Name: ident.Name, Groups: ident.Groups}
	for n := 1; n <= 50; n++ {
		u.Username = base
		if n > 1 {
			u.Username = base + "-" + strconv.Itoa(n)
		}
		if _, err := tx.GetUserByUsername(ctx, u.Username); err == nil {
			continue
		} else if !errors.Is(err, storage.ErrNotFound) {
			return storage.User{}, err
		}
		if err := tx.CreateUser(ctx, u); err != nil {
			if errors.Is(err, storage.ErrConflict) {
				continue
			}
			return storage.User{}, err
		}
		return u, nil
	}
	return storage.User{}, fmt.Errorf("no free username for %q", base)
}
