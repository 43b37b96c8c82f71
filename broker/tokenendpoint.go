package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/latchkeyid/latchkey/broker/oauth2"
	"github.com/latchkeyid/latchkey/broker/token"
	"github.com/latchkeyid/latchkey/storage"
)

// Token handles a token request whose form was parsed by
// oauth2.ParseTokenForm: the authorization_code, refresh_token and
// client_credentials grants.
func (b *Broker) Token(ctx context.Context, form url.Values, cc ClientCredentials, meta RequestMeta) (*oauth2.TokenResponse, *oauth2.Error) {
	client, method, oerr := b.authenticateClient(ctx, cc, form, PathToken)
	if oerr != nil {
		return nil, oerr
	}
	if oerr := b.checkTokenLimit(ctx, client.ID); oerr != nil {
		return nil, oerr
	}
	grant := form.Get("grant_type")
	switch grant {
	case "":
		return nil, oauth2.ErrInvalidRequest("grant_type is required", nil)
	case oauth2.GrantTypeAuthorizationCode, oauth2.GrantTypeRefreshToken, GrantTypeClientCredentials:
	default:
		return nil, oauth2.ErrUnsupportedGrantType(fmt.Sprintf("grant_type %q is not supported", truncate(grant, 40)), nil)
	}
	if !slices.Contains(grantTypes(client), grant) {
		return nil, oauth2.ErrUnauthorizedClient("the client may not use this grant type", nil)
	}
	switch grant {
	case oauth2.GrantTypeRefreshToken:
		return b.refreshGrant(ctx, client, form, meta)
	case GrantTypeClientCredentials:
		return b.clientCredentialsGrant(ctx, client, method, form, meta)
	}
	return b.redeemCode(ctx, client, form, meta)
}

// GrantTypeClientCredentials is RFC 6749 §4.4's grant_type.
const GrantTypeClientCredentials = "client_credentials"

// redeemedRecord marks a code as used and names what it issued, so a
// second redemption can revoke it (RFC 6749 §4.1.2).
type redeemedRecord struct {
	JTI       string    `json:"jti"`
	ExpiresAt time.Time `json:"exp"`
	UserID    string    `json:"user_id"`
	// FamilyID is the refresh token family the code started, if any.
	FamilyID string `json:"family_id,omitempty"`
}

func revokedKey(jti string) string { return "revoked-jti:" + jti }

func (b *Broker) redeemCode(ctx context.Context, client storage.Client, form url.Values, meta RequestMeta) (*oauth2.TokenResponse, *oauth2.Error) {
	code := form.Get("code")
	if code == "" {
		return nil, oauth2.ErrInvalidRequest("code is required", nil)
	}
	if form.Get("redirect_uri") == "" {
		return nil, oauth2.ErrInvalidRequest("redirect_uri is required", nil)
	}
	verifier := form.Get("code_verifier")
	if verifier != "" {
		if err := oauth2.ValidateVerifier(verifier); err != nil {
			if e, ok := oauth2.As(err); ok {
				return nil, e
			}
			return nil, oauth2.ErrInvalidRequest("malformed code_verifier", err)
		}
	}
	if len(code) > 256 {
		return nil, oauth2.ErrInvalidGrant("invalid authorization code", nil)
	}
	hash := sha256Hex(code)
	data, err := b.eph.Take(ctx, codeKey(hash))
	if errors.Is(err, storage.ErrNotFound) {
		b.revokeRedeemed(ctx, hash, client.ID, meta)
		return nil, oauth2.ErrInvalidGrant("the authorization code is invalid, expired or already used", nil)
	}
	if err != nil {
		return nil, oauth2.ErrServerError("", fmt.Errorf("take code: %w", err))
	}
	var rec codeRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, oauth2.ErrServerError("", fmt.Errorf("decode code: %w", err))
	}
	switch {
	case rec.ClientID != client.ID:
		return nil, oauth2.ErrInvalidGrant("the authorization code was issued to another client", nil)
	case rec.RedirectURI != form.Get("redirect_uri"):
		return nil, oauth2.ErrInvalidGrant("redirect_uri does not match the authorization request", nil)
	case rec.CodeChallenge == "" && verifier != "":
		return nil, oauth2.ErrInvalidGrant("code_verifier sent for a code issued without code_challenge", nil)
	case rec.CodeChallenge != "" && verifier == "":
		return nil, oauth2.ErrInvalidGrant("code_verifier is required", nil)
	case rec.CodeChallenge != "" && !oauth2.VerifyS256(verifier, rec.CodeChallenge):
		return nil, oauth2.ErrInvalidGrant("code_verifier does not match the code_challenge", nil)
	}
	user, err := b.store.GetUser(ctx, rec.UserID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && user.Disabled) {
		return nil, oauth2.ErrInvalidGrant("the account is not available", nil)
	}
	if err != nil {
		return nil, oauth2.ErrServerError("", fmt.Errorf("load user: %w", err))
	}
	// offline_access stands for the refresh token: without the grant
	// there is none, and the scope is not granted.
	scopes := rec.Scopes
	offline := slices.Contains(scopes, ScopeOfflineAccess)
	if offline && !slices.Contains(grantTypes(client), oauth2.GrantTypeRefreshToken) {
		scopes = slices.DeleteFunc(slices.Clone(scopes), func(s string) bool { return s == ScopeOfflineAccess })
		offline = false
	}
	g := token.Grant{
		ClientID: client.ID, Audience: client.Audience, Scopes: scopes, Nonce: rec.Nonce,
		AuthTime: rec.AuthTime, AMR: rec.AMR, SID: rec.SID, IDTokenAlg: client.IDTokenSignedAlg, Claims: rec.Claims,
	}
	resp, jti, exp, oerr := b.issueTokens(ctx, user, g)
	if oerr != nil {
		return nil, oerr
	}
	mark := redeemedRecord{JTI: jti, ExpiresAt: exp, UserID: user.ID}
	if offline {
		rt, familyID, oerr := b.newRefreshFamily(ctx, client, user, rec)
		if oerr != nil {
			return nil, oerr
		}
		resp.RefreshToken, mark.FamilyID = rt, familyID
	}
	markJSON, _ := json.Marshal(mark)
	if err := b.eph.Put(ctx, redeemedKey(hash), markJSON, max(exp.Sub(b.now()), b.codeTTL)); err != nil {
		b.log.WarnContext(ctx, "store redeemed-code marker", "error", err)
	}
	ev := map[string]any{"grant_type": "authorization_code", "scope": strings.Join(scopes, " "), "jti": jti}
	if mark.FamilyID != "" {
		ev["refresh_family"] = mark.FamilyID
	}
	b.auditBatched(ctx, storage.Event{Type: "token.issued", Actor: "client:" + client.ID, UserID: user.ID, ClientID: client.ID,
		IP: meta.IP, UserAgent: meta.UserAgent, RequestID: meta.RequestID, Data: ev})
	return resp, nil
}

// revokeRedeemed handles a second redemption: what the first issued is
// revoked.
func (b *Broker) revokeRedeemed(ctx context.Context, hash, clientID string, meta RequestMeta) {
	data, err := b.eph.Take(ctx, redeemedKey(hash))
	if err != nil {
		return
	}
	var r redeemedRecord
	if json.Unmarshal(data, &r) != nil || r.JTI == "" {
		return
	}
	if ttl := r.ExpiresAt.Sub(b.now()); ttl > 0 {
		if err := b.eph.Put(ctx, revokedKey(r.JTI), []byte("1"), ttl); err != nil {
			b.log.ErrorContext(ctx, "revoke tokens of a reused code", "error", err)
		}
	}
	now := b.now()
	ev := storage.Event{Type: "token.code_reused", Time: now, Actor: "client:" + clientID, UserID: r.UserID, ClientID: clientID,
		IP: meta.IP, UserAgent: meta.UserAgent, RequestID: meta.RequestID, Data: map[string]any{"revoked_jti": r.JTI}}
	if r.FamilyID == "" {
		b.audit(ctx, ev)
		return
	}
	// The refresh family is revoked together with the event.
	ev.Data["refresh_family"] = r.FamilyID
	err = b.store.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
		if _, err := tx.RevokeRefreshFamily(ctx, r.FamilyID, now); err != nil {
			return err
		}
		return tx.AppendEvent(ctx, ev)
	})
	if err != nil {
		b.log.ErrorContext(ctx, "revoke refresh tokens of a reused code", "error", err)
	}
}

func subjectOf(u storage.User) token.Subject {
	return token.Subject{UserID: u.ID, Username: u.Username, Name: u.Name, Email: u.Email, EmailVerified: u.EmailVerified, Groups: u.Groups}
}

// issueTokens signs an access token for user under g and, when g's
// scopes include openid, an ID token bound to it. It returns the response
// (without a refresh token) and the access token's jti and expiry.
func (b *Broker) issueTokens(ctx context.Context, user storage.User, g token.Grant) (*oauth2.TokenResponse, string, time.Time, *oauth2.Error) {
	s := subjectOf(user)
	at, jti, exp, err := b.tokens.AccessToken(ctx, s, g)
	if err != nil {
		return nil, "", time.Time{}, oauth2.ErrServerError("", fmt.Errorf("sign access token: %w", err))
	}
	resp := &oauth2.TokenResponse{
		AccessToken: at, TokenType: oauth2.TokenTypeBearer,
		ExpiresIn: expiresIn(exp, b.now()), Scope: strings.Join(g.Scopes, " "),
	}
	if slices.Contains(g.Scopes, "openid") {
		idt, err := b.tokens.IDToken(ctx, s, g, at)
		if err != nil {
			return nil, "", time.Time{}, oauth2.ErrServerError("", fmt.Errorf("sign ID token: %w", err))
		}
		resp.IDToken = idt
	}
	return resp, jti, exp, nil
}

// expiresIn is expires_in: whole seconds from now to exp.
func expiresIn(exp, now time.Time) int64 {
	return int64(exp.Sub(now).Round(time.Second) / time.Second)
}

// UserInfo answers /userinfo for a bearer access token.
func (b *Broker) UserInfo(ctx context.Context, bearer string) (map[string]any, *oauth2.Error) {
	if bearer == "" {
		return nil, &oauth2.Error{Code: "", Status: 401, Description: "no access token"}
	}
	claims, err := b.tokens.VerifyAccessToken(ctx, bearer)
	if err != nil {
		return nil, oauth2.ErrInvalidToken("the access token is invalid or expired", err)
	}
	if revoked, oerr := b.accessRevoked(ctx, claims); oerr != nil {
		return nil, oerr
	} else if revoked {
		return nil, oauth2.ErrInvalidToken("the access token was revoked", nil)
	}
	if !slices.Contains(claims.Scopes, "openid") {
		return nil, oauth2.ErrInsufficientScope("the access token lacks the openid scope", nil)
	}
	user, err := b.store.GetUser(ctx, claims.Subject)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && user.Disabled) {
		return nil, oauth2.ErrInvalidToken("the account is not available", nil)
	}
	if err != nil {
		return nil, oauth2.ErrServerError("", err)
	}
	return b.tokens.UserInfo(subjectOf(user), claims.Scopes, claims.UserinfoClaims...), nil
}
