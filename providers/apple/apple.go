package apple

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/mapping"
	"github.com/latchkeyid/latchkey/providers/upstream"
)

// TypeName is the connector type's name in the registry.
const TypeName = "apple"

// Paths of Apple's endpoints below the base URL.
const (
	AuthorizePath = "/auth/authorize"
	TokenPath     = "/auth/token"
	KeysPath      = "/auth/keys"
)

// Type is the apple connector type.
type Type struct{}

var _ providers.Type = Type{}

// Validate checks an apple connector's config; see Config.
func (Type) Validate(raw json.RawMessage) []providers.FieldProblem {
	_, _, probs := decodeConfig(raw)
	return probs
}

// Open returns a *Connector. It does no network I/O: Apple's keys are
// read at the first callback.
func (Type) Open(ctx context.Context, info providers.Info, raw json.RawMessage, deps providers.Deps) (providers.Connector, error) {
	s, m, probs := decodeConfig(raw)
	if len(probs) > 0 {
		return nil, &providers.ConfigError{Problems: probs}
	}
	base, err := upstream.NewBase("apple", info, deps, "upstream refresh tokens")
	if err != nil {
		return nil, err
	}
	clk := base.Clock
	// The key set keeps ctx only for its values (the HTTP client);
	// go-oidc drops its cancellation. Nothing is fetched until a token
	// is verified.
	keys := gooidc.NewRemoteKeySet(gooidc.ClientContext(ctx, base.Client.HTTP), s.BaseURL+KeysPath)
	return &Connector{
		Base:   base,
		cfg:    s,
		mapper: m,
		secret: &clientSecret{
			teamID: s.TeamID, clientID: s.ClientID, keyID: s.KeyID, key: s.key, ttl: s.ttl, clock: clk,
		},
		verifier: gooidc.NewVerifier(Issuer, keys, &gooidc.Config{
			ClientID:             s.ClientID,
			SupportedSigningAlgs: []string{gooidc.RS256},
			Now:                  clk.Now,
		}),
	}, nil
}

// New opens a connector from a typed Config.
func New(ctx context.Context, info providers.Info, cfg Config, deps providers.Deps) (*Connector, error) {
	return providers.OpenTyped[*Connector](ctx, Type{}, info, cfg, deps)
}

// Connector signs users in with Sign in with Apple.
type Connector struct {
	upstream.Base
	cfg      settings
	mapper   *mapping.Mapper
	secret   *clientSecret
	verifier *gooidc.IDTokenVerifier
}

var (
	_ providers.Connector         = (*Connector)(nil)
	_ providers.CallbackConnector = (*Connector)(nil)
	_ providers.RefreshConnector  = (*Connector)(nil)
	_ providers.IdentityMerger    = (*Connector)(nil)
)

// ClientSecret returns the client secret the token endpoint gets now (a
// cached one, or a new one when less than a quarter of its lifetime is
// left). It is a credential: never log it.
func (c *Connector) ClientSecret() (string, error) { return c.secret.get() }

func (c *Connector) oauth2Config(callbackURL, secret string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     c.cfg.ClientID,
		ClientSecret: secret,
		RedirectURL:  callbackURL,
		Endpoint: oauth2.Endpoint{
			AuthURL:   c.cfg.BaseURL + AuthorizePath,
			TokenURL:  c.cfg.BaseURL + TokenPath,
			AuthStyle: oauth2.AuthStyleInParams, // client_secret_post, Apple's only method
		},
	}
}

// LoginURL returns Apple's authorization URL: response_type=code,
// response_mode=form_post (Apple requires it when name or email is asked
// for, and the callback then arrives as a cross-site POST), the scopes
// space-separated and percent-encoded as Apple documents (name%20email),
// state, nonce and the PKCE S256 challenge. Apple has no login_hint or
// prompt. It does no I/O.
func (c *Connector) LoginURL(ctx context.Context, req providers.LoginRequest) (string, error) {
	if req.CallbackURL == "" || req.State == "" {
		return "", errors.New("apple: LoginURL needs a callback URL and a state")
	}
	q := url.Values{
		"client_id":     {c.cfg.ClientID},
		"redirect_uri":  {req.CallbackURL},
		"response_type": {"code"},
		"response_mode": {"form_post"},
		"state":         {req.State},
	}
	if len(c.cfg.Scopes) > 0 {
		q.Set("scope", strings.Join(c.cfg.Scopes, " "))
	}
	if req.Nonce != "" {
		q.Set("nonce", req.Nonce)
	}
	if req.CodeChallenge != "" {
		q.Set("code_challenge", req.CodeChallenge)
		q.Set("code_challenge_method", "S256")
	}
	// Encode writes a space as "+"; Apple documents %20.
	return c.cfg.BaseURL + AuthorizePath + "?" + strings.ReplaceAll(q.Encode(), "+", "%20"), nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("apple: %w: %s", providers.ErrInvalidCallback, fmt.Sprintf(format, args...))
}

// HandleCallback reads the form Apple had the browser post
// (CallbackRequest.Query holds it): it checks state, turns error=... into
// a *providers.UpstreamError (user_cancelled_authorize becomes
// access_denied), redeems the code with a client secret JWT and the PKCE
// verifier, verifies the ID token (Apple's keys, iss
// https://appleid.apple.com, aud the Services ID, exp, nonce), and builds
// the Identity. The name comes from the user field, which Apple sends at
// the user's first login only: later logins have an empty Name, and the
// broker keeps the stored one (providers.IdentityMerger).
func (c *Connector) HandleCallback(ctx context.Context, req providers.CallbackRequest) (providers.Identity, error) {
	q := req.Query
	if req.State == "" || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(req.State)) != 1 {
		return providers.Identity{}, invalid("state does not match the login request")
	}
	if e := q.Get("error"); e != "" {
		if e == "user_cancelled_authorize" {
			return providers.Identity{}, &providers.UpstreamError{Code: "access_denied", Description: e}
		}
		return providers.Identity{}, &providers.UpstreamError{
			Code:        upstream.Clip(e, 64),
			Description: upstream.Clip(q.Get("error_description"), 300),
		}
	}
	code := q.Get("code")
	if code == "" {
		return providers.Identity{}, invalid("callback has no code")
	}
	secret, err := c.secret.get()
	if err != nil {
		return providers.Identity{}, err
	}
	var opts []oauth2.AuthCodeOption
	if req.CodeVerifier != "" {
		opts = append(opts, oauth2.VerifierOption(req.CodeVerifier))
	}
	octx := context.WithValue(ctx, oauth2.HTTPClient, c.Client.HTTP)
	tok, err := c.oauth2Config(req.CallbackURL, secret).Exchange(octx, code, opts...)
	if err != nil {
		return providers.Identity{}, c.classifyTokenError("apple: redeem code", err, providers.ErrInvalidCallback)
	}
	claims, err := c.verifyIDToken(ctx, tok)
	if err != nil {
		return providers.Identity{}, err
	}
	if claims == nil {
		return providers.Identity{}, invalid("token response has no id_token")
	}
	if req.Nonce != "" {
		got, _ := claims["nonce"].(string)
		if subtle.ConstantTimeCompare([]byte(got), []byte(req.Nonce)) != 1 {
			return providers.Identity{}, invalid("ID token nonce does not match the login request")
		}
	}
	var name string
	if u, ok := ParseUser(q.Get("user")); ok {
		name = u.FullName()
		claims["user"] = map[string]any{
			"name": map[string]any{"firstName": u.Name.FirstName, "lastName": u.Name.LastName}, "email": u.Email,
		}
	} else if q.Has("user") {
		c.Log.WarnContext(ctx, "apple: the user form field is not the documented JSON; the name is lost",
			slog.String("connector", c.Info.ID))
	}
	id, err := c.identity(ctx, claims, name)
	if err != nil {
		return providers.Identity{}, err
	}
	id.AMR = []string{"fed"}
	if id.ConnectorData, err = upstream.SealRefreshToken(c.Sealer, c.Info.ID, id.Subject, tok.RefreshToken); err != nil {
		return providers.Identity{}, fmt.Errorf("apple: %w", err)
	}
	c.Log.DebugContext(ctx, "apple login", slog.String("connector", c.Info.ID), slog.String("subject", id.Subject),
		slog.Bool("first_login", name != ""), slog.Bool("private_relay", IsPrivateRelay(id.Email)),
		slog.Bool("refresh_token", tok.RefreshToken != ""))
	return id, nil
}

// classifyTokenError: invalid_grant (a used or expired code, a revoked
// refresh token) is refused; invalid_client means the client secret was
// refused: the teamID, keyID, clientID or privateKey is wrong.
func (c *Connector) classifyTokenError(op string, err error, refused error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorCode == "invalid_client" {
		op += " (Apple refused the client secret: check teamID, keyID, clientID and privateKey)"
	}
	return c.Client.ClassifyTokenError(op, err, refused)
}

// verifyIDToken verifies the token response's ID token and returns its
// claims, with email_verified and is_private_email as booleans (Apple
// sends them as "true" or true); nil when there is none.
func (c *Connector) verifyIDToken(ctx context.Context, tok *oauth2.Token) (map[string]any, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, nil
	}
	idt, err := c.verifier.Verify(gooidc.ClientContext(ctx, c.Client.HTTP), raw)
	if err != nil {
		if upstream.IsUnavailable(err) {
			return nil, c.Client.Unavailable(fmt.Errorf("ID token keys: %w", err))
		}
		return nil, invalid("ID token: %v", err)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, invalid("ID token claims: %v", err)
	}
	if upstream.AsString(claims["sub"]) == "" {
		return nil, invalid("ID token has no sub")
	}
	for _, k := range []string{"email_verified", "is_private_email"} {
		if v, ok := claims[k]; ok {
			claims[k] = upstream.AsBool(v)
		}
	}
	return claims, nil
}

// identity builds the Identity: Subject sub (Apple's stable, team-scoped
// user id), Email and EmailVerified from the ID token, Name as given,
// then the CEL mapping and rules over the claims.
func (c *Connector) identity(ctx context.Context, claims map[string]any, name string) (providers.Identity, error) {
	id := providers.Identity{
		Subject: upstream.AsString(claims["sub"]),
		Email:   upstream.AsString(claims["email"]),
		Name:    name,
	}
	if id.Email != "" {
		id.EmailVerified = upstream.AsBool(claims["email_verified"])
	}
	if err := c.mapper.Apply(ctx, claims, &id); err != nil {
		var d *providers.DeniedError
		if errors.As(err, &d) {
			return providers.Identity{}, err
		}
		return providers.Identity{}, fmt.Errorf("apple: %w", err)
	}
	return id, nil
}

// MergeIdentity keeps the stored name when Apple did not send it again
// (it sends it at the first login only).
func (c *Connector) MergeIdentity(stored, fresh providers.Identity) providers.Identity {
	if fresh.Name == "" {
		fresh.Name = stored.Name
	}
	return fresh
}

// Refresh validates the refresh token kept at login with a fresh client
// secret (Apple does not rotate it: the same token stays in
// ConnectorData), verifies the ID token that comes back (same subject)
// and maps its claims again; the name is kept. invalid_grant (the user
// revoked the app, or deleted the Apple ID) is ErrUpstreamUserGone. Apple
// may throttle validating a refresh token more than once a day.
func (c *Connector) Refresh(ctx context.Context, old providers.Identity) (providers.Identity, error) {
	rt, err := upstream.OpenRefreshToken(c.Sealer, c.Info.ID, old.Subject, old.ConnectorData)
	if err != nil {
		return providers.Identity{}, fmt.Errorf("apple: refresh: %w", err)
	}
	if rt == "" {
		return old, nil
	}
	secret, err := c.secret.get()
	if err != nil {
		return providers.Identity{}, err
	}
	octx := context.WithValue(ctx, oauth2.HTTPClient, c.Client.HTTP)
	tok, err := c.oauth2Config("", secret).TokenSource(octx, &oauth2.Token{RefreshToken: rt}).Token()
	if err != nil {
		return providers.Identity{}, c.classifyTokenError("apple: refresh", err, providers.ErrUpstreamUserGone)
	}
	claims, err := c.verifyIDToken(ctx, tok)
	if err != nil {
		return providers.Identity{}, err
	}
	id := old
	if claims != nil {
		if upstream.AsString(claims["sub"]) != old.Subject {
			return providers.Identity{}, errors.New("apple: refresh: ID token subject changed")
		}
		if id, err = c.identity(ctx, claims, old.Name); err != nil {
			return providers.Identity{}, err
		}
		id.AMR = slices.Clone(old.AMR)
	}
	if id.ConnectorData, err = upstream.SealRefreshToken(c.Sealer, c.Info.ID, old.Subject, tok.RefreshToken); err != nil {
		return providers.Identity{}, fmt.Errorf("apple: %w", err)
	}
	return id, nil
}
