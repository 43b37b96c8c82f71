package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/latchkeyid/latchkey/broker/oauth2"
	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/storage"
)

// Linking by proof. A first upstream login whose email belongs to
// existing accounts, through a connector that may not link by email
// (no trustEmail, an unverified email, or several accounts), creates
// nothing: the identity waits in the auth request (PendingLink: server
// side, bound to the browser by the request's binding cookie, gone with
// the request) and the browser goes to the link page (StepLink). There
// the user signs in with one of those accounts' ways in (its password,
// or another connector linked to it); the second factor follows as for
// any sign-in; then the dispatcher links the identity to that account
// (identity.linked, reason "proven") and the login continues as that
// user. The user may instead create a separate account (emails are not
// unique in storage) or cancel (access_denied to the client).

// StepLink is the link page (/link).
const StepLink Step = "link"

// PendingLink is an upstream identity waiting for the user to prove one
// of the accounts with its email.
type PendingLink struct {
	ConnectorID string             `json:"connector_id"`
	Identity    providers.Identity `json:"identity"` // ConnectorData stays sealed by the connector
	// Candidates are the ids of the active users with the identity's
	// email: the proof must sign in as one of them.
	Candidates []string `json:"candidates"`
	// Meta is the upstream sign-in's request, for the audit of the link.
	Meta RequestMeta `json:"meta"`
}

// linkMode says what linkIdentity may do with an identity not linked
// yet.
type linkMode int

const (
	// linkFirstLogin: link by trusted verified email, ask for proof when
	// the email names existing accounts, else create a user.
	linkFirstLogin linkMode = iota
	// linkExisting: only an identity linked already (a proof sign-in).
	linkExisting
	// linkNewUser: create a user (the user chose a separate account).
	linkNewUser
)

// linkModeFor is the mode of an upstream sign-in for req: a proof while
// a link is pending, a first login otherwise.
func linkModeFor(req *AuthRequest) linkMode {
	if req.PendingLink != nil {
		return linkExisting
	}
	return linkFirstLogin
}

// errNotLinked: a proof sign-in through an identity linked to no one.
var errNotLinked = errors.New("the identity is not linked to an account")

// notTheAccountPage is shown when a proof sign-in is not one of the
// accounts with the email.
func notTheAccountPage(via string, err error) *PageError {
	return &PageError{Status: 403, Title: "Not the same account",
		Message: "You signed in with " + via + " as an account other than the one with this email address. Go back and sign in with that account, or start again.", Err: err}
}

// checkProof refuses a sign-in while a link is pending unless it signed
// in one of the accounts with the email.
func (req *AuthRequest) checkProof(userID string) *PageError {
	if req.PendingLink == nil || slices.Contains(req.PendingLink.Candidates, userID) {
		return nil
	}
	return notTheAccountPage("that account", fmt.Errorf("proof signed in user %q, not a candidate", userID))
}

// emailCandidates returns the ids of the active users whose email is
// email.
func emailCandidates(ctx context.Context, tx storage.Durable, email string) ([]string, error) {
	users, err := tx.ListUsersByEmail(ctx, email)
	if err != nil {
		return nil, fmt.Errorf("users by email: %w", err)
	}
	var ids []string
	for _, u := range users {
		if !u.Disabled {
			ids = append(ids, u.ID)
		}
	}
	return ids, nil
}

// askLink keeps the identity as the request's pending link and sends the
// browser to the link page.
func (b *Broker) askLink(ctx context.Context, req *AuthRequest, connectorID string, ident providers.Identity, candidates []string, meta RequestMeta) Result {
	req.PendingLink = &PendingLink{ConnectorID: connectorID, Identity: ident, Candidates: candidates, Meta: meta}
	return b.next(ctx, req, StepLink)
}

// LinkView is what the link page shows: "An account with this email
// already exists — sign in to link <Provider>", with the ways in of the
// accounts with that email that this client allows.
type LinkView struct {
	RequestID  string
	CSRF       string
	ClientName string
	// Provider is the name of the connector waiting to be linked; Email
	// the address it reported.
	Provider string
	Email    string
	// Password, PasswordConnectors, PasswordConnector and Upstreams are
	// as on LoginView: the password form and the connector buttons.
	Password           bool
	PasswordConnectors []UpstreamView
	PasswordConnector  string
	Upstreams          []UpstreamView
}

// LinkPage returns what the link page shows for request id.
func (b *Broker) LinkPage(ctx context.Context, id, binding string) (LinkView, *PageError) {
	req, client, perr := b.requestPage(ctx, id, binding)
	if perr != nil {
		return LinkView{}, perr
	}
	pl := req.PendingLink
	if pl == nil {
		return LinkView{}, &PageError{Status: 400, Title: "Nothing to link", Message: "This sign-in has no account waiting to be linked. Go back to the application and start again.", Err: errors.New("link page without a pending link")}
	}
	v := LinkView{RequestID: req.ID, CSRF: CSRFToken(binding, req.ID), ClientName: clientName(client), Provider: pl.ConnectorID, Email: pl.Identity.Email}
	if up, ok := b.fed.Connectors.Get(pl.ConnectorID); ok {
		v.Provider = up.Connector.Name()
	}
	add := func(list *[]UpstreamView, uv UpstreamView) {
		if !slices.ContainsFunc(*list, func(x UpstreamView) bool { return x.ID == uv.ID }) {
			*list = append(*list, uv)
		}
	}
	for _, uid := range pl.Candidates {
		u, err := b.store.GetUser(ctx, uid)
		if errors.Is(err, storage.ErrNotFound) || (err == nil && u.Disabled) {
			continue
		}
		if err != nil {
			return LinkView{}, &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}
		}
		if u.PasswordHash != "" && b.password != nil && connectorAllowed(client, req, LocalConnectorID) {
			add(&v.PasswordConnectors, UpstreamView{ID: LocalConnectorID, Name: "Local account"})
		}
		if b.fed.Store == nil {
			continue
		}
		var ids []storage.Identity
		if err := b.fed.Store.Tx(ctx, func(ctx context.Context, tx storage.Durable) (err error) {
			ids, err = tx.ListUserIdentities(ctx, uid)
			return err
		}); err != nil {
			return LinkView{}, &PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err}
		}
		for _, ident := range ids {
			up, ok := b.fed.Connectors.Get(ident.ConnectorID)
			if !ok || ident.ConnectorID == pl.ConnectorID || !connectorAllowed(client, req, ident.ConnectorID) {
				continue
			}
			uv := UpstreamView{ID: ident.ConnectorID, Name: up.Connector.Name()}
			if _, ok := up.Connector.(providers.PasswordConnector); ok {
				add(&v.PasswordConnectors, uv)
			}
			if _, ok := up.Connector.(providers.CallbackConnector); ok {
				add(&v.Upstreams, uv)
			}
		}
	}
	v.Password = len(v.PasswordConnectors) > 0
	return v, nil
}

// DeclineLink answers the link page's other choices for request id:
// separate creates a new account for the waiting identity and signs in
// with it; otherwise the sign-in is cancelled and the client gets
// access_denied.
func (b *Broker) DeclineLink(ctx context.Context, id, binding, csrf string, bs BrowserSessions, separate bool, meta RequestMeta) Result {
	req, client, perr := b.requestPage(ctx, id, binding)
	if perr != nil {
		return Result{Page: perr}
	}
	if !checkCSRF(binding, id, csrf) {
		return pageErr(400, "Form expired", "The form was not valid for this sign-in. Go back to the application and start again.", errors.New("csrf token mismatch"))
	}
	pl := req.PendingLink
	if pl == nil || req.UserID != "" {
		return pageErr(400, "Nothing to link", "This sign-in has no account waiting to be linked. Go back to the application and start again.", errors.New("decline without a pending link"))
	}
	if !separate {
		_, _ = b.eph.Take(ctx, requestKey(req.ID))
		return b.errorRedirect(req, oauth2.ErrAccessDenied("the user cancelled linking the account", nil))
	}
	up, ok := b.fed.Connectors.Get(pl.ConnectorID)
	if !ok {
		return pageErr(400, "Not available", "This sign-in method is not available for this application.", fmt.Errorf("connector %q gone", pl.ConnectorID))
	}
	ident := pl.Identity
	req.PendingLink = nil
	return b.upstreamSignedIn(ctx, req, client, bs, up, ident, meta, linkNewUser)
}

// completeLink links the pending identity to the user the proof signed
// in (called by the dispatcher once the second factor is done), audited
// in the same transaction; done is true with the page to show when that
// fails.
func (b *Broker) completeLink(ctx context.Context, req *AuthRequest, client storage.Client) (Result, bool) {
	pl := req.PendingLink
	if pl == nil {
		return Result{}, false
	}
	if perr := req.checkProof(req.UserID); perr != nil {
		return Result{Page: perr}, true
	}
	if b.fed.Store == nil {
		return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", errors.New("federation without a store")), true
	}
	now := b.now()
	err := b.fed.Store.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
		if err := tx.CreateIdentity(ctx, storage.Identity{ConnectorID: pl.ConnectorID, Subject: pl.Identity.Subject, UserID: req.UserID,
			Email: pl.Identity.Email, ConnectorData: pl.Identity.ConnectorData, CreatedAt: now, LastLoginAt: now}); err != nil {
			return err
		}
		return tx.AppendEvent(ctx, storage.Event{Type: "identity.linked", Time: now, Actor: "user:" + req.UserID, UserID: req.UserID,
			ConnectorID: pl.ConnectorID, ClientID: client.ID, IP: pl.Meta.IP, UserAgent: pl.Meta.UserAgent, RequestID: pl.Meta.RequestID,
			Data: map[string]any{"subject": truncate(pl.Identity.Subject, 255), "reason": "proven", "proof_connector": req.LoginConnID}})
	})
	if errors.Is(err, storage.ErrConflict) {
		// Linked meanwhile (another tab): fine if to this user.
		if cur, gerr := b.fed.Store.GetIdentity(ctx, pl.ConnectorID, pl.Identity.Subject); gerr == nil && cur.UserID == req.UserID {
			err = nil
		} else {
			name := pl.ConnectorID
			if up, ok := b.fed.Connectors.Get(pl.ConnectorID); ok {
				name = up.Connector.Name()
			}
			return pageErr(409, "Already linked", "This "+name+" account is linked to another account already. Go back to the application and start again.", err), true
		}
	}
	if err != nil {
		return pageErr(500, "Server error", "Something went wrong on our side. Please try again.", fmt.Errorf("link identity: %w", err)), true
	}
	req.PendingLink = nil
	return Result{}, false
}

// ErrLastWayIn: unlinking would leave the user no way to sign in.
var ErrLastWayIn = errors.New("it is the user's last way to sign in (no password and no other linked identity)")

// Unlink removes user userID's identities at connector connectorID and
// writes identity.unlinked for each, in one transaction. It refuses with
// ErrLastWayIn to leave a user without a local password and without any
// other identity, and answers storage.ErrNotFound when the user has no
// identity there. It returns the number of identities removed. meta is
// the request that asked (none from the CLI), for the events.
func Unlink(ctx context.Context, db interface {
	Tx(ctx context.Context, fn func(ctx context.Context, tx storage.Durable) error) error
}, userID, connectorID, actor string, meta RequestMeta) (int, error) {
	n := 0
	err := db.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
		n = 0
		u, err := tx.GetUser(ctx, userID)
		if err != nil {
			return fmt.Errorf("load user: %w", err)
		}
		ids, err := tx.ListUserIdentities(ctx, userID)
		if err != nil {
			return fmt.Errorf("list identities: %w", err)
		}
		var drop []storage.Identity
		for _, id := range ids {
			if id.ConnectorID == connectorID {
				drop = append(drop, id)
			}
		}
		switch {
		case len(drop) == 0:
			return fmt.Errorf("no identity at connector %q: %w", connectorID, storage.ErrNotFound)
		case u.PasswordHash == "" && len(drop) == len(ids):
			return ErrLastWayIn
		}
		for _, id := range drop {
			if err := tx.DeleteIdentity(ctx, id.ConnectorID, id.Subject); err != nil {
				return fmt.Errorf("delete identity: %w", err)
			}
			if err := tx.AppendEvent(ctx, storage.Event{Type: "identity.unlinked", Actor: actor, UserID: userID, ConnectorID: connectorID,
				IP: meta.IP, UserAgent: meta.UserAgent, RequestID: meta.RequestID, Data: map[string]any{"subject": truncate(id.Subject, 255)}}); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
