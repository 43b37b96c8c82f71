package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/latchkeyid/latchkey/broker/oauth2"
	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/storage"
)

const (
	// upstreamLockTTL bounds how long one replica holds a session's
	// upstream refresh (longer than any connector timeout).
	upstreamLockTTL = 30 * time.Second
	// upstreamDoneTTL: a session refreshed upstream this recently is not
	// refreshed again by the refreshes that waited for it.
	upstreamDoneTTL = 5 * time.Second
)

func upstreamLockKey(sid string) string { return "fed-refresh-lock:" + sid }
func upstreamDoneKey(sid string) string { return "fed-refresh-done:" + sid }

// upstreamRefresh re-checks the user at the upstream that signed the
// refresh token's session in (DESIGN-NOTES "Upstream refresh"): once per
// session at a time across replicas (a lock in the ephemeral store; the
// refreshes that waited reuse the result). An upstream that no longer
// vouches for the user, or whose rules now deny them, revokes the family
// and answers invalid_grant; an unreachable upstream answers
// temporarily_unavailable and revokes nothing.
func (b *Broker) upstreamRefresh(ctx context.Context, client storage.Client, rec storage.RefreshToken, user *storage.User, meta RequestMeta) *oauth2.Error {
	if b.fed.Connectors == nil || b.fed.Store == nil || rec.SID == "" {
		return nil
	}
	raw, err := b.eph.Get(ctx, fedSessionKey(rec.SID))
	if errors.Is(err, storage.ErrNotFound) {
		return nil // not a federated login
	}
	if err != nil {
		return oauth2.ErrServerError("", fmt.Errorf("load federated session: %w", err))
	}
	var fs fedSession
	if err := json.Unmarshal(raw, &fs); err != nil {
		return oauth2.ErrServerError("", fmt.Errorf("decode federated session: %w", err))
	}
	up, ok := b.fed.Connectors.Get(fs.ConnectorID)
	if !ok {
		return b.upstreamRevoke(ctx, client, rec, fs, "connector removed", meta)
	}
	rc, ok := up.Connector.(providers.RefreshConnector)
	if !ok {
		return nil
	}
	// Single flight per session.
	waited := false
	for tries := 0; ; tries++ {
		err := b.eph.Create(ctx, upstreamLockKey(rec.SID), []byte(meta.RequestID), upstreamLockTTL)
		if err == nil {
			break
		}
		if !errors.Is(err, storage.ErrConflict) {
			return oauth2.ErrServerError("", fmt.Errorf("upstream refresh lock: %w", err))
		}
		waited = true
		if _, err := b.eph.Get(ctx, upstreamDoneKey(rec.SID)); err == nil {
			return b.reloadUser(ctx, rec.UserID, user) // refreshed just now by the holder
		}
		if tries >= int(upstreamLockTTL/(25*time.Millisecond)) {
			return oauth2.ErrTemporarilyUnavailable(up.Connector.Name()+" is busy; try again", errors.New("upstream refresh lock held too long"))
		}
		select {
		case <-ctx.Done():
			return oauth2.ErrServerError("", ctx.Err())
		case <-time.After(25 * time.Millisecond):
		}
	}
	defer func() {
		if err := b.eph.Delete(context.WithoutCancel(ctx), upstreamLockKey(rec.SID)); err != nil {
			b.log.WarnContext(ctx, "release upstream refresh lock", slog.Any("error", err))
		}
	}()
	if _, err := b.eph.Get(ctx, upstreamDoneKey(rec.SID)); waited && err == nil {
		return b.reloadUser(ctx, rec.UserID, user) // the refresh we waited for has just finished
	}
	ident, err := b.fed.Store.GetIdentity(ctx, fs.ConnectorID, fs.Subject)
	if errors.Is(err, storage.ErrNotFound) {
		return b.upstreamRevoke(ctx, client, rec, fs, "identity unlinked", meta)
	}
	if err != nil {
		return oauth2.ErrServerError("", fmt.Errorf("load identity: %w", err))
	}
	if ident.UserID != rec.UserID {
		return b.upstreamRevoke(ctx, client, rec, fs, "identity linked to another user", meta)
	}
	got, err := rc.Refresh(ctx, providers.Identity{Subject: ident.Subject, Email: ident.Email, AMR: rec.AMR, ConnectorData: ident.ConnectorData})
	var denied *providers.DeniedError
	switch {
	case errors.Is(err, providers.ErrUpstreamUserGone):
		return b.upstreamRevoke(ctx, client, rec, fs, "upstream user gone", meta)
	case errors.As(err, &denied):
		return b.upstreamRevoke(ctx, client, rec, fs, "denied: "+denied.Reason, meta)
	case errors.Is(err, providers.ErrUpstreamUnavailable):
		return oauth2.ErrTemporarilyUnavailable(up.Connector.Name()+" is unavailable; try again later", err)
	case err != nil:
		return oauth2.ErrServerError("", fmt.Errorf("upstream refresh: %w", err))
	}
	now := b.now()
	var synced storage.User
	err = b.fed.Store.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
		if err := tx.UpdateIdentity(ctx, fs.ConnectorID, fs.Subject, func(i storage.Identity) (storage.Identity, error) {
			if len(got.ConnectorData) > 0 {
				i.ConnectorData = got.ConnectorData
			}
			if got.Email != "" {
				i.Email = got.Email
			}
			return i, nil
		}); err != nil {
			return err
		}
		u, err := tx.GetUser(ctx, rec.UserID)
		if err != nil {
			return err
		}
		got.Subject = fs.Subject
		got = mergeStored(up, u, ident, got)
		if err := b.syncProfile(ctx, tx, &u, fs.ConnectorID, got); err != nil {
			return err
		}
		synced = u
		return nil
	})
	if err != nil {
		return oauth2.ErrServerError("", fmt.Errorf("store refreshed identity: %w", err))
	}
	*user = synced // the tokens of this refresh carry the profile just synced
	_ = b.eph.Put(ctx, upstreamDoneKey(rec.SID), []byte("1"), upstreamDoneTTL)
	b.log.DebugContext(ctx, "upstream refreshed", slog.String("connector_id", fs.ConnectorID), slog.Time("at", now))
	return nil
}

// upstreamRevoke revokes the family of a refresh token whose upstream no
// longer vouches for the user, with an audit event, and answers
// invalid_grant.
func (b *Broker) upstreamRevoke(ctx context.Context, client storage.Client, rec storage.RefreshToken, fs fedSession, reason string, meta RequestMeta) *oauth2.Error {
	now := b.now()
	err := b.store.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
		n, err := tx.RevokeRefreshFamily(ctx, rec.FamilyID, now)
		if err != nil {
			return err
		}
		return tx.AppendEvent(ctx, storage.Event{Type: "token.upstream_revoked", Time: now, Actor: "connector:" + fs.ConnectorID,
			UserID: rec.UserID, ClientID: client.ID, ConnectorID: fs.ConnectorID, IP: meta.IP, UserAgent: meta.UserAgent, RequestID: meta.RequestID,
			Data: map[string]any{"refresh_family": rec.FamilyID, "reason": truncate(reason, 200), "revoked": n}})
	})
	if err != nil {
		b.log.ErrorContext(ctx, "revoke refresh family after upstream refusal", slog.Any("error", err))
	}
	return oauth2.ErrInvalidGrant("the identity provider no longer vouches for the user", fmt.Errorf("upstream %s: %s", fs.ConnectorID, reason))
}

// reloadUser reads the user again after another request's upstream
// refresh synced the profile, so that this refresh's tokens carry it too.
func (b *Broker) reloadUser(ctx context.Context, id string, user *storage.User) *oauth2.Error {
	u, err := b.store.GetUser(ctx, id)
	if err != nil {
		return oauth2.ErrServerError("", fmt.Errorf("reload user after the upstream refresh: %w", err))
	}
	*user = u
	return nil
}
