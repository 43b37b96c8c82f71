package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"

	"github.com/latchkeyid/latchkey/session"
	"github.com/latchkeyid/latchkey/storage"
)

// Why a session ended: the reason in the session.ended audit event.
const (
	// ReasonLogout: the user signed out (RP-initiated logout).
	ReasonLogout = "logout"
	// ReasonRevoked: an administrator revoked it (`latchkey sessions
	// revoke`, later the admin API and the account page).
	ReasonRevoked = "revoked"
	// ReasonUserDisabled: the user was disabled.
	ReasonUserDisabled = "user_disabled"
	// ReasonReplaced: another user signed in in the same browser without
	// adding an account.
	ReasonReplaced = "replaced"
)

// UpstreamLogout ends the user's session at the upstream identity
// provider the SSO session signed in through, where the connector can do
// so from the server (OIDC back-channel or token revocation, SAML SOAP
// single logout). It is the hook for connectors; none is wired yet, and
// cmd passes nil. Browser-redirect logout at the upstream (OIDC
// RP-initiated, SAML redirect SLO) is not covered by it.
type UpstreamLogout interface {
	EndUpstreamSession(ctx context.Context, connectorID string, s session.Session) error
}

// endSession ends the session sid and everything bound to it: the
// session-bound refresh tokens of the clients it signed into, the
// upstream session (UpstreamLogout), and every client with a
// backchannel_logout_uri gets a logout token (asynchronously: see
// WaitLogoutDeliveries). It writes a session.ended event by actor
// ("user:<id>", "cli", "admin:<key prefix>", "system") and returns the
// ended session and its clients (for the front-channel page). ok is
// false when there was no such session (already ended, expired).
func (b *Broker) endSession(ctx context.Context, sid, reason string, actor string, meta RequestMeta) (session.Session, []storage.Client, bool, error) {
	sess, err := b.sessions.End(ctx, sid)
	if errors.Is(err, session.ErrNoSession) {
		return session.Session{}, nil, false, nil
	}
	if err != nil && sess.SID == "" {
		return session.Session{}, nil, false, fmt.Errorf("end session: %w", err)
	}
	if err != nil {
		// The record is gone; only the cookie pointer or the index entry
		// was left behind, and both expire on their own.
		b.log.WarnContext(ctx, "end session: clean-up", slog.Any("error", err))
	}
	now := b.now()
	// Every access token issued under the session until now stops
	// working at introspection and /userinfo (accessRevoked); tokens a
	// surviving refresh token mints later are not touched.
	if err := b.markSIDEnded(ctx, sess.SID, now); err != nil {
		b.log.ErrorContext(ctx, "end session: mark its access tokens ended", slog.Any("error", err))
	}
	var clients []storage.Client
	var revoked int64
	for _, id := range sess.Clients {
		c, err := b.store.GetClient(ctx, id)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			b.log.ErrorContext(ctx, "end session: load client", slog.String("client_id", id), slog.Any("error", err))
			continue
		}
		clients = append(clients, c)
		if c.SessionBoundRefresh {
			n, err := b.store.RevokeRefreshTokensBySID(ctx, c.ID, sess.SID, now)
			if err != nil {
				b.log.ErrorContext(ctx, "end session: revoke session-bound refresh tokens", slog.String("client_id", c.ID), slog.Any("error", err))
			}
			revoked += n
		}
	}
	if b.upstream != nil {
		if err := b.upstream.EndUpstreamSession(ctx, sess.ConnectorID, sess); err != nil {
			b.log.WarnContext(ctx, "end upstream session", slog.String("connector_id", sess.ConnectorID), slog.Any("error", err))
		}
	}
	b.sendBackchannelLogout(ctx, sess, clients)
	data := map[string]any{"sid": sess.SID, "reason": reason, "clients": slices.Clone(sess.Clients), "refresh_tokens_revoked": revoked}
	if data["clients"] == nil {
		data["clients"] = []string{}
	}
	b.audit(ctx, storage.Event{Type: "session.ended", Actor: actor, UserID: sess.UserID, ConnectorID: sess.ConnectorID,
		IP: meta.IP, UserAgent: meta.UserAgent, RequestID: meta.RequestID, Data: data})
	return sess, clients, true, nil
}

// EndSession ends one SSO session by its public id (`latchkey sessions
// revoke --id`, an admin, the user's account page) with everything bound
// to it; see endSession. ok is false when there was no such session.
func (b *Broker) EndSession(ctx context.Context, sid, reason string, actor string) (bool, error) {
	_, _, ok, err := b.endSession(ctx, sid, reason, actor, RequestMeta{})
	return ok, err
}

// EndSessions ends every SSO session of a user (sign out everywhere; the
// user was disabled) and returns how many it ended.
func (b *Broker) EndSessions(ctx context.Context, userID, reason string, actor string) (int, error) {
	sessions, err := b.sessions.ListByUser(ctx, userID)
	if err != nil {
		return 0, fmt.Errorf("list sessions of user %q: %w", userID, err)
	}
	n := 0
	var errs []error
	for _, s := range sessions {
		_, _, ok, err := b.endSession(ctx, s.SID, reason, actor, RequestMeta{})
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			n++
		}
	}
	return n, errors.Join(errs...)
}

// Sessions lists a user's live SSO sessions, oldest first.
func (b *Broker) Sessions(ctx context.Context, userID string) ([]session.Session, error) {
	return b.sessions.ListByUser(ctx, userID)
}

// frontChannelURLs are the frontchannel_logout_uri of the clients, each
// with iss and sid added (Front-Channel Logout 1.0 §2: always sent, which
// satisfies frontchannel_logout_session_required either way).
func (b *Broker) frontChannelURLs(sess session.Session, clients []storage.Client) []string {
	var out []string
	for _, c := range clients {
		if c.FrontchannelLogoutURI == "" {
			continue
		}
		u, err := url.Parse(c.FrontchannelLogoutURI)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			continue
		}
		q := u.Query()
		q.Set("iss", b.issuer)
		q.Set("sid", sess.SID)
		u.RawQuery = q.Encode()
		out = append(out, u.String())
	}
	return out
}
