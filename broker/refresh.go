package broker

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/latchkeyid/latchkey/broker/oauth2"
	"github.com/latchkeyid/latchkey/broker/token"
	"github.com/latchkeyid/latchkey/session"
	"github.com/latchkeyid/latchkey/storage"
)

// ScopeOfflineAccess asks for a refresh token (OIDC Core §11).
const ScopeOfflineAccess = "offline_access"

// Refresh token lifetime defaults (CONTRACTS.md tokens.refreshIdleTTL,
// tokens.refreshAbsoluteTTL).
const (
	DefaultRefreshIdleTTL     = 30 * 24 * time.Hour
	DefaultRefreshAbsoluteTTL = 90 * 24 * time.Hour
)

// refreshKeyInfo is the HKDF info of the refresh successor key.
const refreshKeyInfo = "latchkey refresh successor v1"

// maxRefreshTokenLen bounds a presented refresh token: ours are 43
// characters.
const maxRefreshTokenLen = 256

// DeriveRefreshKey derives Options.RefreshKey from a secret every replica
// has (cmd uses the first key-encryption key) with HKDF-SHA256.
func DeriveRefreshKey(secret []byte) ([]byte, error) {
	if len(secret) < 32 {
		return nil, errors.New("derive refresh key: the secret must be at least 32 bytes")
	}
	k, err := hkdf.Key(sha256.New, secret, nil, refreshKeyInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("derive refresh key: %w", err)
	}
	return k, nil
}

// refreshPolicy is how refresh tokens rotate and expire.
type refreshPolicy struct {
	key      []byte
	grace    time.Duration
	idle     time.Duration
	absolute time.Duration
}

// successor is the token that replaces presented: derived, not random, so
// every replica that rotates presented within the grace window answers
// the same token without storing it.
func (p refreshPolicy) successor(presented string) string {
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte(presented))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// expiresAt is when t stops being usable if it is not rotated: the
// earlier of its idle and its family's absolute end.
func (p refreshPolicy) expiresAt(t storage.RefreshToken) time.Time {
	idle := t.IssuedAt.Add(p.idle)
	abs := t.FamilyCreatedAt.Add(p.absolute)
	if idle.Before(abs) {
		return idle
	}
	return abs
}

// inGrace reports whether a rotated token presented at now still gets its
// successor. A grace window of 0 allows nothing.
func (p refreshPolicy) inGrace(t storage.RefreshToken, now time.Time) bool {
	return p.grace > 0 && !now.After(t.RotatedAt.Add(p.grace))
}

// newRefreshFamily stores the first refresh token of a new family for a
// redeemed code and returns it with the family id.
func (b *Broker) newRefreshFamily(ctx context.Context, client storage.Client, user storage.User, rec codeRecord) (string, string, *oauth2.Error) {
	rt, err := b.randomToken(32)
	if err != nil {
		return "", "", oauth2.ErrServerError("", err)
	}
	family, err := b.randomToken(16)
	if err != nil {
		return "", "", oauth2.ErrServerError("", err)
	}
	now := b.now()
	t := storage.RefreshToken{
		Hash: sha256Hex(rt), FamilyID: family, ClientID: client.ID, UserID: user.ID,
		Scopes: rec.Scopes, SID: rec.SID, AuthTime: rec.AuthTime, AMR: rec.AMR, Claims: rec.Claims,
		IssuedAt: now, FamilyCreatedAt: now,
	}
	if err := b.store.CreateRefreshToken(ctx, t); err != nil {
		return "", "", oauth2.ErrServerError("", fmt.Errorf("store refresh token: %w", err))
	}
	return rt, family, nil
}

const errRefreshInvalid = "the refresh token is invalid, expired or revoked"

// refreshGrant handles grant_type=refresh_token (RFC 6749 §6): the
// presented token is rotated (or, inside the grace window after its
// rotation, answered with the same successor), and new access and ID
// tokens are issued with the same auth_time and sid. The optional scope
// narrows what the new access and ID tokens carry; the successor keeps the
// family's scopes (RFC 6749 §6: a new refresh token has the scope of the
// one presented).
func (b *Broker) refreshGrant(ctx context.Context, client storage.Client, form url.Values, meta RequestMeta) (*oauth2.TokenResponse, *oauth2.Error) {
	presented := form.Get("refresh_token")
	if presented == "" {
		return nil, oauth2.ErrInvalidRequest("refresh_token is required", nil)
	}
	if len(presented) > maxRefreshTokenLen {
		return nil, oauth2.ErrInvalidGrant(errRefreshInvalid, errors.New("refresh token too long"))
	}
	hash := sha256Hex(presented)
	rec, err := b.store.GetRefreshToken(ctx, hash)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, oauth2.ErrInvalidGrant(errRefreshInvalid, errors.New("unknown refresh token"))
	}
	if err != nil {
		return nil, oauth2.ErrServerError("", fmt.Errorf("load refresh token: %w", err))
	}
	if rec.ClientID != client.ID {
		return nil, oauth2.ErrInvalidGrant("the refresh token was issued to another client",
			fmt.Errorf("refresh token of client %q presented by %q", rec.ClientID, client.ID))
	}
	now := b.now()
	if oerr := b.checkReuse(ctx, client, rec, now, meta); oerr != nil {
		return nil, oerr
	}
	if !now.Before(rec.FamilyCreatedAt.Add(b.refresh.absolute)) {
		return nil, oauth2.ErrInvalidGrant(errRefreshInvalid, errors.New("refresh family reached its absolute lifetime"))
	}
	scopes, oerr := narrowScopes(form.Get("scope"), rec.Scopes)
	if oerr != nil {
		return nil, oerr
	}
	user, err := b.store.GetUser(ctx, rec.UserID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && user.Disabled) {
		return nil, oauth2.ErrInvalidGrant("the account is not available", fmt.Errorf("user %q unknown or disabled", rec.UserID))
	}
	if err != nil {
		return nil, oauth2.ErrServerError("", fmt.Errorf("load user: %w", err))
	}
	// A session-bound token lives only as long as its SSO session: ending
	// the session revokes it (endSession); a session that merely expired
	// refuses it here.
	if client.SessionBoundRefresh && rec.SID != "" {
		if _, err := b.sessions.GetBySID(ctx, rec.SID); errors.Is(err, session.ErrNoSession) {
			return nil, oauth2.ErrInvalidGrant(errRefreshInvalid, errors.New("the session of a session-bound refresh token ended"))
		} else if err != nil {
			return nil, oauth2.ErrServerError("", fmt.Errorf("load session: %w", err))
		}
	}

	// A federated login is re-checked at its upstream (federation_refresh.go).
	if oerr := b.upstreamRefresh(ctx, client, rec, &user, meta); oerr != nil {
		return nil, oerr
	}

	successor := b.refresh.successor(presented)
	rotatedHere := false
	if rec.RotatedAt.IsZero() {
		if !now.Before(rec.IssuedAt.Add(b.refresh.idle)) {
			return nil, oauth2.ErrInvalidGrant(errRefreshInvalid, errors.New("refresh token idle for too long"))
		}
		next := rec
		next.Hash, next.ParentHash, next.IssuedAt = sha256Hex(successor), rec.Hash, now
		next.RotatedAt, next.SuccessorHash, next.RevokedAt = time.Time{}, "", time.Time{}
		err := b.store.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
			if err := tx.RotateRefreshToken(ctx, hash, now, next); err != nil {
				return err
			}
			return tx.AppendEvent(ctx, storage.Event{Type: "token.refreshed", Time: now, Actor: "client:" + client.ID,
				UserID: rec.UserID, ClientID: client.ID, IP: meta.IP, UserAgent: meta.UserAgent, RequestID: meta.RequestID,
				Data: map[string]any{"refresh_family": rec.FamilyID, "scope": strings.Join(scopes, " ")}})
		})
		switch {
		case err == nil:
			rotatedHere = true
		case errors.Is(err, storage.ErrConflict):
			// Another request rotated it (or revoked the family) first:
			// from here on this is a request inside (or after) the grace
			// window.
			if rec, err = b.store.GetRefreshToken(ctx, hash); err != nil {
				return nil, oauth2.ErrServerError("", fmt.Errorf("reload refresh token: %w", err))
			}
			if oerr := b.checkReuse(ctx, client, rec, now, meta); oerr != nil {
				return nil, oerr
			}
		case errors.Is(err, storage.ErrNotFound):
			return nil, oauth2.ErrInvalidGrant(errRefreshInvalid, err)
		default:
			return nil, oauth2.ErrServerError("", fmt.Errorf("rotate refresh token: %w", err))
		}
	}
	if !rotatedHere && subtle.ConstantTimeCompare([]byte(sha256Hex(successor)), []byte(rec.SuccessorHash)) != 1 {
		// The successor was derived with another key: the replica that
		// rotated had another first key-encryption key.
		b.log.WarnContext(ctx, "refresh inside the grace window: the successor differs (refresh key changed?)",
			slog.String("client_id", client.ID), slog.String("refresh_family", rec.FamilyID))
		return nil, oauth2.ErrInvalidGrant(errRefreshInvalid, errors.New("successor mismatch inside the grace window"))
	}

	g := token.Grant{
		ClientID: client.ID, Audience: client.Audience, Scopes: scopes,
		AuthTime: rec.AuthTime, AMR: rec.AMR, SID: rec.SID, IDTokenAlg: client.IDTokenSignedAlg, Claims: rec.Claims,
	}
	resp, jti, _, oerr := b.issueTokens(ctx, user, g)
	if oerr != nil {
		return nil, oerr
	}
	resp.RefreshToken = successor
	if !rotatedHere {
		b.audit(ctx, storage.Event{Type: "token.refreshed", Actor: "client:" + client.ID, UserID: rec.UserID, ClientID: client.ID,
			IP: meta.IP, UserAgent: meta.UserAgent, RequestID: meta.RequestID,
			Data: map[string]any{"refresh_family": rec.FamilyID, "scope": strings.Join(scopes, " "), "grace": true, "jti": jti}})
	}
	return resp, nil
}

// checkReuse answers invalid_grant, revoking the family, for a token that
// was revoked or rotated longer ago than the grace window.
func (b *Broker) checkReuse(ctx context.Context, client storage.Client, rec storage.RefreshToken, now time.Time, meta RequestMeta) *oauth2.Error {
	switch {
	case !rec.RevokedAt.IsZero():
		b.refreshReused(ctx, client, rec, "revoked", meta)
		return oauth2.ErrInvalidGrant(errRefreshInvalid, fmt.Errorf("refresh family %s is revoked", rec.FamilyID))
	case !rec.RotatedAt.IsZero() && !b.refresh.inGrace(rec, now):
		b.refreshReused(ctx, client, rec, "rotated", meta)
		return oauth2.ErrInvalidGrant(errRefreshInvalid, fmt.Errorf("refresh token reused after rotation; family %s revoked", rec.FamilyID))
	}
	return nil
}

// narrowScopes applies the scope parameter of a refresh request: omitted
// means all granted scopes; otherwise each must have been granted
// (invalid_scope), and the order is the request's.
func narrowScopes(param string, granted []string) ([]string, *oauth2.Error) {
	if param == "" {
		return granted, nil
	}
	requested, err := oauth2.ParseScope(param)
	if err != nil {
		if e, ok := oauth2.As(err); ok {
			return nil, e
		}
		return nil, oauth2.ErrInvalidScope("invalid scope", err)
	}
	for _, s := range requested {
		if !slices.Contains(granted, s) {
			return nil, oauth2.ErrInvalidScope(fmt.Sprintf("scope %s was not granted", quoteScope(s)), nil)
		}
	}
	return requested, nil
}

// quoteScope puts a client-supplied scope into a description.
func quoteScope(s string) string { return "'" + truncate(s, 64) + "'" }

// refreshReused revokes the family of a token presented after its
// rotation's grace window, or after revocation, and records it with the
// change.
func (b *Broker) refreshReused(ctx context.Context, client storage.Client, rec storage.RefreshToken, reason string, meta RequestMeta) {
	now := b.now()
	err := b.store.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
		n, err := tx.RevokeRefreshFamily(ctx, rec.FamilyID, now)
		if err != nil {
			return err
		}
		return tx.AppendEvent(ctx, storage.Event{Type: "token.refresh_reused", Time: now, Actor: "client:" + client.ID,
			UserID: rec.UserID, ClientID: client.ID, IP: meta.IP, UserAgent: meta.UserAgent, RequestID: meta.RequestID,
			Data: map[string]any{"refresh_family": rec.FamilyID, "reason": reason, "revoked": n}})
	})
	if err != nil {
		b.log.ErrorContext(ctx, "revoke a reused refresh token's family", slog.String("refresh_family", rec.FamilyID), slog.Any("error", err))
		return
	}
	// The family's access tokens go too: they carry the family's sid.
	if rec.SID != "" {
		if err := b.markSIDClient(ctx, rec.SID, client.ID, now); err != nil {
			b.log.ErrorContext(ctx, "revoke a reused refresh token's access tokens", slog.String("refresh_family", rec.FamilyID), slog.Any("error", err))
		}
	}
	b.log.WarnContext(ctx, "refresh token reused: family revoked", slog.String("client_id", client.ID),
		slog.String("refresh_family", rec.FamilyID), slog.String("reason", reason))
}
