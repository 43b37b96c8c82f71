package broker

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/latchkeyid/latchkey/broker/oauth2"
	"github.com/latchkeyid/latchkey/broker/token"
	"github.com/latchkeyid/latchkey/storage"
)

// Introspection is the RFC 7662 §2.2 response. An inactive token is
// {"active": false} and nothing else.
type Introspection struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	Username  string   `json:"username,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
	Exp       int64    `json:"exp,omitempty"`
	Iat       int64    `json:"iat,omitempty"`
	Sub       string   `json:"sub,omitempty"`
	Aud       []string `json:"aud,omitempty"`
	Iss       string   `json:"iss,omitempty"`
	JTI       string   `json:"jti,omitempty"`
}

var inactive = &Introspection{}

// looksLikeJWT: ours are compact JWS (three parts); refresh tokens are
// opaque base64url without dots.
func looksLikeJWT(s string) bool { return strings.Count(s, ".") == 2 }

// Introspect answers /introspect (RFC 7662) for a form parsed by
// oauth2.ParseTokenForm. The caller must be a confidential client
// (client_secret_basic, client_secret_post or private_key_jwt); a public
// client's client_id proves nothing, so it gets invalid_client. A client
// sees its own tokens, and access tokens whose aud names it (a resource
// server registered as a client); any other token is inactive, as is an
// expired, revoked or unknown one, or one whose user or client is gone or
// disabled. token_type_hint is not needed: the token's shape tells.
func (b *Broker) Introspect(ctx context.Context, form url.Values, cc ClientCredentials, meta RequestMeta) (*Introspection, *oauth2.Error) {
	caller, method, oerr := b.authenticateClient(ctx, cc, form, PathIntrospect)
	if oerr != nil {
		return nil, oerr
	}
	if method == AuthMethodNone {
		return nil, oauth2.ErrInvalidClient("introspection needs client authentication", fmt.Errorf("public client %q", caller.ID))
	}
	tok := form.Get("token")
	if tok == "" {
		return nil, oauth2.ErrInvalidRequest("token is required", nil)
	}
	if looksLikeJWT(tok) {
		return b.introspectAccess(ctx, caller, tok)
	}
	return b.introspectRefresh(ctx, caller, tok)
}

func (b *Broker) introspectAccess(ctx context.Context, caller storage.Client, tok string) (*Introspection, *oauth2.Error) {
	claims, err := b.tokens.VerifyAccessToken(ctx, tok)
	if err != nil {
		return inactive, nil
	}
	if claims.ClientID != caller.ID && !slices.Contains(claims.Audience, caller.ID) {
		return inactive, nil
	}
	revoked, oerr := b.accessRevoked(ctx, claims)
	if oerr != nil || revoked {
		return inactive, oerr
	}
	if claims.ClientID != caller.ID {
		c, err := b.store.GetClient(ctx, claims.ClientID)
		if errors.Is(err, storage.ErrNotFound) || (err == nil && c.Disabled) {
			return inactive, nil
		}
		if err != nil {
			return nil, oauth2.ErrServerError("", fmt.Errorf("load client %q: %w", claims.ClientID, err))
		}
	}
	out := &Introspection{
		Active: true, Scope: strings.Join(claims.Scopes, " "), ClientID: claims.ClientID, TokenType: oauth2.TokenTypeBearer,
		Exp: claims.ExpiresAt.Unix(), Iat: claims.IssuedAt.Unix(), Sub: claims.Subject, Aud: claims.Audience,
		Iss: b.issuer, JTI: claims.JTI,
	}
	if isClientToken(claims) {
		return out, nil // the issuing client was checked above or is the caller
	}
	user, err := b.store.GetUser(ctx, claims.Subject)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && user.Disabled) {
		return inactive, nil
	}
	if err != nil {
		return nil, oauth2.ErrServerError("", fmt.Errorf("load user: %w", err))
	}
	out.Username = user.Username
	return out, nil
}

// isClientToken tells a client_credentials access token (sub is the
// client, no user ever authenticated) from a user's, which always carries
// auth_time.
func isClientToken(c token.AccessClaims) bool { return c.Subject == c.ClientID && c.AuthTime.IsZero() }

// accessRevoked tells whether an access token was revoked: its jti is
// on the denylist (/revoke), or it names a session (sid) that ended at or
// after the token was issued (logout, an admin or the user ending it),
// or in which its client's refresh family was revoked for reuse since
// (sidmarks.go).
// iat has whole seconds, so a token minted in the second the session
// ended counts as before it.
func (b *Broker) accessRevoked(ctx context.Context, claims token.AccessClaims) (bool, *oauth2.Error) {
	_, err := b.eph.Get(ctx, revokedKey(claims.JTI))
	switch {
	case err == nil:
		return true, nil
	case !errors.Is(err, storage.ErrNotFound):
		return false, oauth2.ErrServerError("", fmt.Errorf("check access token denylist: %w", err))
	}
	if claims.SID == "" {
		return false, nil
	}
	raw, err := b.eph.Get(ctx, endedSIDKey(claims.SID))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return false, nil
	case err != nil:
		return false, oauth2.ErrServerError("", fmt.Errorf("check ended sessions: %w", err))
	}
	marks, ok := parseSIDMarks(raw)
	if !ok {
		return true, nil // unreadable: fail closed
	}
	return marks.revokes(claims.ClientID, claims.IssuedAt), nil
}

// endedSIDKey holds a session's sidMarks (sidmarks.go) for as long as an
// access token issued under it may live.
func endedSIDKey(sid string) string { return "ended-sid:" + sid }

func (b *Broker) introspectRefresh(ctx context.Context, caller storage.Client, tok string) (*Introspection, *oauth2.Error) {
	if len(tok) > maxRefreshTokenLen {
		return inactive, nil
	}
	rec, err := b.store.GetRefreshToken(ctx, sha256Hex(tok))
	if errors.Is(err, storage.ErrNotFound) {
		return inactive, nil
	}
	if err != nil {
		return nil, oauth2.ErrServerError("", fmt.Errorf("load refresh token: %w", err))
	}
	now := b.now()
	exp := b.refresh.expiresAt(rec)
	switch {
	case rec.ClientID != caller.ID, !rec.RevokedAt.IsZero():
		return inactive, nil
	case !rec.RotatedAt.IsZero():
		// Rotated: usable only for the rest of the grace window (and it
		// then answers its successor).
		if !b.refresh.inGrace(rec, now) {
			return inactive, nil
		}
		exp = rec.RotatedAt.Add(b.refresh.grace)
	}
	if !now.Before(exp) {
		return inactive, nil
	}
	user, err := b.store.GetUser(ctx, rec.UserID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && user.Disabled) {
		return inactive, nil
	}
	if err != nil {
		return nil, oauth2.ErrServerError("", fmt.Errorf("load user: %w", err))
	}
	return &Introspection{
		Active: true, Scope: strings.Join(rec.Scopes, " "), ClientID: rec.ClientID, Username: user.Username,
		Exp: exp.Unix(), Iat: rec.IssuedAt.Unix(), Sub: rec.UserID, Iss: b.issuer,
	}, nil
}

// Revoke answers /revoke (RFC 7009) for a form parsed by
// oauth2.ParseTokenForm. Any client that may use the token endpoint may
// revoke its own tokens (a public client by its client_id, RFC 7009 §5).
// A refresh token revokes its whole family; an access token goes on the
// denylist until it expires. An unknown, invalid or expired token is not
// an error (§2.2: 200). A token issued to another client is refused with
// unauthorized_client (§2.1: the server verifies the token was issued to
// the caller and refuses the request otherwise).
func (b *Broker) Revoke(ctx context.Context, form url.Values, cc ClientCredentials, meta RequestMeta) *oauth2.Error {
	caller, _, oerr := b.authenticateClient(ctx, cc, form, PathRevoke)
	if oerr != nil {
		return oerr
	}
	tok := form.Get("token")
	if tok == "" {
		return oauth2.ErrInvalidRequest("token is required", nil)
	}
	if looksLikeJWT(tok) {
		return b.revokeAccess(ctx, caller, tok, meta)
	}
	return b.revokeRefresh(ctx, caller, tok, meta)
}

const errNotYours = "the token was not issued to this client"

func (b *Broker) revokeAccess(ctx context.Context, caller storage.Client, tok string, meta RequestMeta) *oauth2.Error {
	claims, err := b.tokens.VerifyAccessToken(ctx, tok)
	if err != nil {
		return nil // invalid or expired: nothing to revoke
	}
	if claims.ClientID != caller.ID {
		return oauth2.ErrUnauthorizedClient(errNotYours, fmt.Errorf("access token of client %q", claims.ClientID))
	}
	ttl := claims.ExpiresAt.Sub(b.now())
	if ttl <= 0 {
		return nil
	}
	if err := b.eph.Put(ctx, revokedKey(claims.JTI), []byte("1"), ttl); err != nil {
		return oauth2.ErrServerError("", fmt.Errorf("deny access token: %w", err))
	}
	ev := storage.Event{Type: "token.revoked", Actor: "client:" + caller.ID, ClientID: caller.ID,
		IP: meta.IP, UserAgent: meta.UserAgent, RequestID: meta.RequestID,
		Data: map[string]any{"token_type": "access_token", "jti": claims.JTI}}
	if !isClientToken(claims) {
		ev.UserID = claims.Subject
	}
	b.audit(ctx, ev)
	return nil
}

func (b *Broker) revokeRefresh(ctx context.Context, caller storage.Client, tok string, meta RequestMeta) *oauth2.Error {
	if len(tok) > maxRefreshTokenLen {
		return nil
	}
	rec, err := b.store.GetRefreshToken(ctx, sha256Hex(tok))
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return oauth2.ErrServerError("", fmt.Errorf("load refresh token: %w", err))
	}
	if rec.ClientID != caller.ID {
		return oauth2.ErrUnauthorizedClient(errNotYours, fmt.Errorf("refresh token of client %q", rec.ClientID))
	}
	now := b.now()
	err = b.store.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
		n, err := tx.RevokeRefreshFamily(ctx, rec.FamilyID, now)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil // already revoked
		}
		return tx.AppendEvent(ctx, storage.Event{Type: "token.revoked", Time: now, Actor: "client:" + caller.ID,
			UserID: rec.UserID, ClientID: caller.ID, IP: meta.IP, UserAgent: meta.UserAgent, RequestID: meta.RequestID,
			Data: map[string]any{"token_type": "refresh_token", "refresh_family": rec.FamilyID, "revoked": n}})
	})
	if err != nil {
		return oauth2.ErrServerError("", fmt.Errorf("revoke refresh family: %w", err))
	}
	return nil
}
