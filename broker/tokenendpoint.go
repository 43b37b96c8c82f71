package broker

import (
	"context"
	"crypto/subtle"
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

// ClientCredentials is what the token request carried to authenticate the
// client: HTTP Basic (already form-urlencoding-decoded by the caller, RFC
// 6749 §2.3.1) and/or form parameters.
type ClientCredentials struct {
	Basic        bool
	BasicID      string
	BasicSecret  string
	FormID       string
	FormSecret   string
	FormSecretOK bool // client_secret was present in the form
}

// authenticateClient implements client_secret_basic, client_secret_post
// and none (public clients), per the client's token_endpoint_auth_method
// (CONTRACTS.md: unset accepts basic and post).
func (b *Broker) authenticateClient(ctx context.Context, cc ClientCredentials) (storage.Client, *oauth2.Error) {
	var id, secret, method string
	switch {
	case cc.Basic && (cc.FormSecretOK || (cc.FormID != "" && cc.FormID != cc.BasicID)):
		return storage.Client{}, oauth2.ErrInvalidRequest("use only one client authentication method", nil)
	case cc.Basic:
		id, secret, method = cc.BasicID, cc.BasicSecret, "client_secret_basic"
	case cc.FormSecretOK:
		id, secret, method = cc.FormID, cc.FormSecret, "client_secret_post"
	case cc.FormID != "":
		id, method = cc.FormID, "none"
	default:
		return storage.Client{}, oauth2.ErrInvalidClient("client authentication is required", nil)
	}
	client, err := b.store.GetClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && client.Disabled) {
		return storage.Client{}, oauth2.ErrInvalidClient("client authentication failed", fmt.Errorf("client %q unknown or disabled", id))
	}
	if err != nil {
		return storage.Client{}, oauth2.ErrServerError("", fmt.Errorf("load client %q: %w", id, err))
	}
	if !clientAllows(client, method) {
		return storage.Client{}, oauth2.ErrInvalidClient("client authentication failed", fmt.Errorf("client %q may not use %s", id, method))
	}
	if method == "none" {
		return client, nil
	}
	if client.SecretHash == "" || subtle.ConstantTimeCompare([]byte(sha256Hex(secret)), []byte(client.SecretHash)) != 1 {
		return storage.Client{}, oauth2.ErrInvalidClient("client authentication failed", fmt.Errorf("client %q: wrong secret", id))
	}
	return client, nil
}

func clientAllows(c storage.Client, method string) bool {
	switch {
	case c.TokenEndpointAuthMethod != "":
		return c.TokenEndpointAuthMethod == method
	case c.Public:
		return method == "none"
	default:
		return method == "client_secret_basic" || method == "client_secret_post"
	}
}

// Token handles a token request whose form was parsed by
// oauth2.ParseTokenForm.
func (b *Broker) Token(ctx context.Context, form url.Values, cc ClientCredentials, meta RequestMeta) (*oauth2.TokenResponse, *oauth2.Error) {
	client, oerr := b.authenticateClient(ctx, cc)
	if oerr != nil {
		return nil, oerr
	}
	grant := form.Get("grant_type")
	switch {
	case grant == "":
		return nil, oauth2.ErrInvalidRequest("grant_type is required", nil)
	case grant != oauth2.GrantTypeAuthorizationCode:
		return nil, oauth2.ErrUnsupportedGrantType(fmt.Sprintf("grant_type %q is not supported", truncate(grant, 40)), nil)
	case !slices.Contains(grantTypes(client), grant):
		return nil, oauth2.ErrUnauthorizedClient("the client may not use this grant type", nil)
	}
	return b.redeemCode(ctx, client, form, meta)
}

// redeemedRecord marks a code as used and names what it issued, so a
// second redemption can revoke it (RFC 6749 §4.1.2).
type redeemedRecord struct {
	JTI       string    `json:"jti"`
	ExpiresAt time.Time `json:"exp"`
	UserID    string    `json:"user_id"`
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
	resp, jti, exp, oerr := b.issueTokens(ctx, client, user, rec)
	if oerr != nil {
		return nil, oerr
	}
	mark, _ := json.Marshal(redeemedRecord{JTI: jti, ExpiresAt: exp, UserID: user.ID})
	if err := b.eph.Put(ctx, redeemedKey(hash), mark, max(time.Until(exp), b.codeTTL)); err != nil {
		b.log.WarnContext(ctx, "store redeemed-code marker", "error", err)
	}
	b.audit(ctx, storage.Event{Type: "token.issued", Actor: "client:" + client.ID, UserID: user.ID, ClientID: client.ID,
		IP: meta.IP, UserAgent: meta.UserAgent, RequestID: meta.RequestID,
		Data: map[string]any{"grant_type": "authorization_code", "scope": strings.Join(rec.Scopes, " "), "jti": jti}})
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
	b.audit(ctx, storage.Event{Type: "token.code_reused", Actor: "client:" + clientID, UserID: r.UserID, ClientID: clientID,
		IP: meta.IP, UserAgent: meta.UserAgent, RequestID: meta.RequestID, Data: map[string]any{"revoked_jti": r.JTI}})
}

func subjectOf(u storage.User) token.Subject {
	return token.Subject{UserID: u.ID, Username: u.Username, Name: u.Name, Email: u.Email, EmailVerified: u.EmailVerified, Groups: u.Groups}
}

func (b *Broker) issueTokens(ctx context.Context, client storage.Client, user storage.User, rec codeRecord) (*oauth2.TokenResponse, string, time.Time, *oauth2.Error) {
	g := token.Grant{
		ClientID: client.ID, Audience: client.Audience, Scopes: rec.Scopes, Nonce: rec.Nonce,
		AuthTime: rec.AuthTime, AMR: rec.AMR, ACR: token.ACRFor(rec.AMR), SID: rec.SID,
		IDTokenAlg: client.IDTokenSignedAlg, Claims: rec.Claims,
	}
	s := subjectOf(user)
	at, jti, exp, err := b.tokens.AccessToken(ctx, s, g)
	if err != nil {
		return nil, "", time.Time{}, oauth2.ErrServerError("", fmt.Errorf("sign access token: %w", err))
	}
	resp := &oauth2.TokenResponse{
		AccessToken: at, TokenType: oauth2.TokenTypeBearer,
		ExpiresIn: int64(exp.Sub(b.now()).Round(time.Second) / time.Second), Scope: strings.Join(rec.Scopes, " "),
	}
	if slices.Contains(rec.Scopes, "openid") {
		idt, err := b.tokens.IDToken(ctx, s, g, at)
		if err != nil {
			return nil, "", time.Time{}, oauth2.ErrServerError("", fmt.Errorf("sign ID token: %w", err))
		}
		resp.IDToken = idt
	}
	return resp, jti, exp, nil
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
	if _, err := b.eph.Get(ctx, revokedKey(claims.JTI)); err == nil {
		return nil, oauth2.ErrInvalidToken("the access token was revoked", nil)
	} else if !errors.Is(err, storage.ErrNotFound) {
		return nil, oauth2.ErrServerError("", err)
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
	return b.tokens.UserInfo(subjectOf(user), claims.Scopes), nil
}
