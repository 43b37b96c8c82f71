package oidc

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/mapping"
	"github.com/latchkeyid/latchkey/providers/upstream"
)

// TypeName is the connector type's name in the registry.
const TypeName = "oidc"

// Type is the oidc connector type.
type Type struct{}

var _ providers.Type = Type{}

// Validate checks an oidc connector's config; see Config.
func (Type) Validate(raw json.RawMessage) []providers.FieldProblem {
	_, _, probs := decodeConfig(raw)
	return probs
}

// Open returns a *Connector. It does no network I/O.
func (Type) Open(ctx context.Context, info providers.Info, raw json.RawMessage, deps providers.Deps) (providers.Connector, error) {
	cfg, m, probs := decodeConfig(raw)
	if len(probs) > 0 {
		return nil, &providers.ConfigError{Problems: probs}
	}
	return newConnector(info, cfg, m, deps)
}

// New opens a connector from a typed Config (for tests and callers that
// build configs in Go).
func New(ctx context.Context, info providers.Info, cfg Config, deps providers.Deps) (*Connector, error) {
	return providers.OpenTyped[*Connector](ctx, Type{}, info, cfg, deps)
}

// Connector signs users in at an OpenID Connect provider.
type Connector struct {
	upstream.Base
	cfg    Config
	mapper *mapping.Mapper

	discoverSem chan struct{}
	mu          sync.Mutex
	provider    *provider
}

var (
	_ providers.Connector         = (*Connector)(nil)
	_ providers.CallbackConnector = (*Connector)(nil)
	_ providers.RefreshConnector  = (*Connector)(nil)
)

func newConnector(info providers.Info, cfg Config, m *mapping.Mapper, deps providers.Deps) (*Connector, error) {
	base, err := upstream.NewBase("oidc", info, deps, "upstream refresh tokens")
	if err != nil {
		return nil, err
	}
	return &Connector{Base: base, cfg: cfg, mapper: m, discoverSem: make(chan struct{}, 1)}, nil
}

func (c *Connector) oauth2Config(p *provider, callbackURL string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     c.cfg.ClientID,
		ClientSecret: c.cfg.ClientSecret,
		RedirectURL:  callbackURL,
		Scopes:       c.cfg.Scopes,
		Endpoint: oauth2.Endpoint{
			AuthURL:   p.meta.AuthorizationEndpoint,
			TokenURL:  p.meta.TokenEndpoint,
			AuthStyle: p.authStyle,
		},
	}
}

// LoginURL returns the upstream authorization URL: response_type=code,
// the configured scopes, state, nonce, PKCE S256 (when the broker gave a
// challenge), prompt (the request's, else the config's), login_hint, hd
// and the extra parameters.
func (c *Connector) LoginURL(ctx context.Context, req providers.LoginRequest) (string, error) {
	if req.CallbackURL == "" || req.State == "" {
		return "", errors.New("oidc: LoginURL needs a callback URL and a state")
	}
	p, err := c.discover(ctx)
	if err != nil {
		return "", err
	}
	var opts []oauth2.AuthCodeOption
	for k, v := range c.cfg.ExtraParams {
		opts = append(opts, oauth2.SetAuthURLParam(k, v))
	}
	if req.Nonce != "" {
		opts = append(opts, gooidc.Nonce(req.Nonce))
	}
	if req.CodeChallenge != "" {
		opts = append(opts,
			oauth2.SetAuthURLParam("code_challenge", req.CodeChallenge),
			oauth2.SetAuthURLParam("code_challenge_method", "S256"))
	}
	prompt := c.cfg.Prompt
	if req.Prompt != "" && CheckPrompt(req.Prompt) == "" {
		prompt = req.Prompt
	}
	if prompt != "" {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", prompt))
	}
	if req.LoginHint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", req.LoginHint))
	}
	if c.cfg.HostedDomain != "" {
		opts = append(opts, oauth2.SetAuthURLParam("hd", c.cfg.HostedDomain))
	}
	return c.oauth2Config(p, req.CallbackURL).AuthCodeURL(req.State, opts...), nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("oidc: %w: %s", providers.ErrInvalidCallback, fmt.Sprintf(format, args...))
}

// HandleCallback checks the callback (state, iss, error), redeems the code
// with the PKCE verifier, verifies the ID token (signature by a key of the
// upstream's JWKS, iss, aud, exp, nonce), merges userinfo when configured,
// and maps the claims to an Identity.
func (c *Connector) HandleCallback(ctx context.Context, req providers.CallbackRequest) (providers.Identity, error) {
	q := req.Query
	if req.State == "" || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(req.State)) != 1 {
		return providers.Identity{}, invalid("state does not match the login request")
	}
	p, err := c.discover(ctx)
	if err != nil {
		return providers.Identity{}, err
	}
	iss, hasIss := q.Get("iss"), q.Has("iss")
	switch {
	case hasIss && !p.tenants && iss != p.issuer:
		return providers.Identity{}, invalid("authorization response iss %q is not the issuer", upstream.Clip(iss, 200))
	case !hasIss && p.meta.IssParameterSupported:
		return providers.Identity{}, invalid("authorization response has no iss although the upstream sends it")
	}
	if e := q.Get("error"); e != "" {
		return providers.Identity{}, &providers.UpstreamError{
			Code:        upstream.Clip(e, 64),
			Description: upstream.Clip(q.Get("error_description"), 300),
		}
	}
	code := q.Get("code")
	if code == "" {
		return providers.Identity{}, invalid("callback has no code")
	}
	octx := context.WithValue(ctx, oauth2.HTTPClient, c.Client.HTTP)
	var opts []oauth2.AuthCodeOption
	if req.CodeVerifier != "" {
		opts = append(opts, oauth2.VerifierOption(req.CodeVerifier))
	}
	tok, err := c.oauth2Config(p, req.CallbackURL).Exchange(octx, code, opts...)
	if err != nil {
		return providers.Identity{}, c.Client.ClassifyTokenError("oidc: redeem code", err, providers.ErrInvalidCallback)
	}
	claims, idIss, err := c.verifyIDToken(ctx, p, tok)
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
	if hasIss && p.tenants && iss != idIss {
		return providers.Identity{}, invalid("authorization response iss is not the ID token's issuer")
	}
	sub := upstream.AsString(claims["sub"])
	if c.cfg.Userinfo && p.meta.UserinfoEndpoint != "" {
		ui, err := c.Client.Userinfo(ctx, p.meta.UserinfoEndpoint, tok.AccessToken)
		if err != nil {
			return providers.Identity{}, fmt.Errorf("oidc: %w", err)
		}
		if got := upstream.AsString(ui["sub"]); got != sub {
			return providers.Identity{}, invalid("userinfo subject is not the ID token's subject")
		}
		merge(claims, ui)
	}
	id, err := c.identity(ctx, claims, []string{"fed"})
	if err != nil {
		return providers.Identity{}, err
	}
	if id.ConnectorData, err = upstream.SealRefreshToken(c.Sealer, c.Info.ID, id.Subject, tok.RefreshToken); err != nil {
		return providers.Identity{}, fmt.Errorf("oidc: %w", err)
	}
	c.Log.DebugContext(ctx, "oidc login", slog.String("connector", c.Info.ID), slog.String("subject", id.Subject),
		slog.Bool("refresh_token", tok.RefreshToken != ""))
	return id, nil
}

// verifyIDToken verifies the token response's ID token and returns its
// claims and issuer; nil claims when the response has none.
func (c *Connector) verifyIDToken(ctx context.Context, p *provider, tok *oauth2.Token) (map[string]any, string, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, "", nil
	}
	idt, err := p.verifier.Verify(gooidc.ClientContext(ctx, c.Client.HTTP), raw)
	if err != nil {
		if upstream.IsUnavailable(err) {
			return nil, "", c.Client.Unavailable(fmt.Errorf("ID token keys: %w", err))
		}
		return nil, "", invalid("ID token: %v", err)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, "", invalid("ID token claims: %v", err)
	}
	if aud := idt.Audience; len(aud) > 1 {
		if azp, _ := claims["azp"].(string); azp != c.cfg.ClientID {
			return nil, "", invalid("ID token has several audiences and azp is not our client id")
		}
	}
	if upstream.AsString(claims["sub"]) == "" {
		return nil, "", invalid("ID token has no sub")
	}
	if p.tenants {
		if err := c.tenantIssuer(p, idt.Issuer, claims); err != nil {
			var te *tenantError
			if errors.As(err, &te) {
				return nil, "", &providers.DeniedError{Reason: "Accounts of your organization cannot sign in here."}
			}
			return nil, "", invalid("%v", err)
		}
	}
	return claims, idt.Issuer, nil
}

// protectedClaims are ID token claims userinfo does not override.
var protectedClaims = []string{"iss", "sub", "aud", "exp", "iat", "nbf", "nonce", "azp", "at_hash", "c_hash", "auth_time", "acr", "amr", "sid", "tid", "hd"}

func merge(claims, userinfo map[string]any) {
	for k, v := range userinfo {
		if !slices.Contains(protectedClaims, k) {
			claims[k] = v
		}
	}
}

// identity builds the Identity from upstream claims: the standard claims,
// email_verified per CONTRACTS.md, amr, the hosted domain check, then the
// CEL mapping and rules.
func (c *Connector) identity(ctx context.Context, claims map[string]any, amr []string) (providers.Identity, error) {
	id := providers.Identity{
		Subject:  upstream.AsString(claims["sub"]),
		Email:    upstream.AsString(claims["email"]),
		Name:     upstream.AsString(claims["name"]),
		Username: upstream.AsString(claims["preferred_username"]),
		Groups:   upstream.AsStrings(claims["groups"]),
	}
	if id.Name == "" {
		id.Name = strings.TrimSpace(upstream.AsString(claims["given_name"]) + " " + upstream.AsString(claims["family_name"]))
	}
	if id.Email != "" {
		id.EmailVerified = c.cfg.TrustEmail || upstream.AsBool(claims["email_verified"])
	}
	id.AMR = slices.Clone(amr)
	if c.cfg.TrustUpstreamAMR && len(amr) > 0 && amr[0] == "fed" {
		for _, v := range upstream.AsStrings(claims["amr"]) {
			if !slices.Contains(id.AMR, v) {
				id.AMR = append(id.AMR, v)
			}
		}
	}
	if hd := c.cfg.HostedDomain; hd != "" {
		got, _ := claims["hd"].(string)
		if got == "" || (hd != "*" && !strings.EqualFold(got, hd)) {
			reason := "Sign in with an account of " + hd + "."
			if hd == "*" {
				reason = "Sign in with an organization account."
			}
			return providers.Identity{}, &providers.DeniedError{Reason: reason}
		}
	}
	if err := c.mapper.Apply(ctx, claims, &id); err != nil {
		var d *providers.DeniedError
		if errors.As(err, &d) {
			return providers.Identity{}, err
		}
		return providers.Identity{}, fmt.Errorf("oidc: %w", err)
	}
	return id, nil
}

// Refresh spends the upstream refresh token kept (sealed) in
// ConnectorData, verifies the new ID token if one comes back (same
// subject), re-reads userinfo when configured, and maps the claims again.
// An identity without an upstream refresh token is returned unchanged:
// there is nothing to re-check it with (ask for offline_access to have
// upstream removals detected). invalid_grant is ErrUpstreamUserGone.
func (c *Connector) Refresh(ctx context.Context, old providers.Identity) (providers.Identity, error) {
	rt, err := upstream.OpenRefreshToken(c.Sealer, c.Info.ID, old.Subject, old.ConnectorData)
	if err != nil {
		return providers.Identity{}, fmt.Errorf("oidc: refresh: %w", err)
	}
	if rt == "" {
		return old, nil
	}
	p, err := c.discover(ctx)
	if err != nil {
		return providers.Identity{}, err
	}
	octx := context.WithValue(ctx, oauth2.HTTPClient, c.Client.HTTP)
	tok, err := c.oauth2Config(p, "").TokenSource(octx, &oauth2.Token{RefreshToken: rt}).Token()
	if err != nil {
		return providers.Identity{}, c.Client.ClassifyTokenError("oidc: refresh", err, providers.ErrUpstreamUserGone)
	}
	claims, _, err := c.verifyIDToken(ctx, p, tok)
	if err != nil {
		return providers.Identity{}, err
	}
	if claims != nil && upstream.AsString(claims["sub"]) != old.Subject {
		return providers.Identity{}, fmt.Errorf("oidc: refresh: ID token subject changed")
	}
	if c.cfg.Userinfo && p.meta.UserinfoEndpoint != "" {
		ui, err := c.Client.Userinfo(ctx, p.meta.UserinfoEndpoint, tok.AccessToken)
		switch {
		case errors.Is(err, upstream.ErrUserinfoRefused):
			return providers.Identity{}, fmt.Errorf("oidc: refresh: %w: %w", providers.ErrUpstreamUserGone, err)
		case err != nil:
			return providers.Identity{}, fmt.Errorf("oidc: refresh: %w", err)
		}
		if got := upstream.AsString(ui["sub"]); got != old.Subject {
			return providers.Identity{}, fmt.Errorf("oidc: refresh: userinfo subject is not the user's")
		}
		if claims == nil {
			claims = map[string]any{"sub": old.Subject}
		}
		merge(claims, ui)
	}
	id := old
	if claims != nil {
		// Refreshing is not signing in: the AMR of the login stays.
		id, err = c.identity(ctx, claims, nil)
		if err != nil {
			return providers.Identity{}, err
		}
		id.AMR = slices.Clone(old.AMR)
	}
	if id.ConnectorData, err = upstream.SealRefreshToken(c.Sealer, c.Info.ID, old.Subject, tok.RefreshToken); err != nil {
		return providers.Identity{}, fmt.Errorf("oidc: %w", err)
	}
	return id, nil
}
