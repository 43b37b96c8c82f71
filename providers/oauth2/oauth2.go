package oauth2

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	xoauth2 "golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/mapping"
	"github.com/latchkeyid/latchkey/providers/upstream"
)

// TypeName is the connector type's name in the registry.
const TypeName = "oauth2"

// Config is the `config` object of an oauth2 connector.
type Config struct {
	AuthURL      string `json:"authURL"`
	TokenURL     string `json:"tokenURL"`
	UserinfoURL  string `json:"userinfoURL"`
	ClientID     string `json:"clientID"`
	ClientSecret string `json:"clientSecret"`
	// TokenEndpointAuthMethod: client_secret_basic (default) or
	// client_secret_post.
	TokenEndpointAuthMethod string   `json:"tokenEndpointAuthMethod"`
	Scopes                  []string `json:"scopes"`
	// PKCE sends the S256 challenge; default true.
	PKCE *bool `json:"pkce"`
	// ExtraParams are added to the authorization request.
	ExtraParams map[string]string `json:"extraParams"`
	// Claims are the dotted paths of the user's claims in the user
	// document.
	Claims ClaimPaths `json:"claims"`
	// TrustEmail makes every email this upstream reports verified.
	TrustEmail bool `json:"trustEmail"`

	mapping.Config
}

// ClaimPaths locate claims in the user document; empty takes the default.
type ClaimPaths struct {
	Subject       string `json:"subject"`
	Email         string `json:"email"`
	EmailVerified string `json:"emailVerified"`
	Name          string `json:"name"`
	Username      string `json:"username"`
	Groups        string `json:"groups"`
}

// DefaultClaimPaths are used for the paths a config leaves empty.
func DefaultClaimPaths() ClaimPaths {
	return ClaimPaths{
		Subject:       "sub",
		Email:         "email",
		EmailVerified: "email_verified",
		Name:          "name",
		Username:      "preferred_username",
		Groups:        "groups",
	}
}

func (p ClaimPaths) withDefaults() ClaimPaths {
	d := DefaultClaimPaths()
	for _, f := range []struct{ v, def *string }{
		{&p.Subject, &d.Subject}, {&p.Email, &d.Email}, {&p.EmailVerified, &d.EmailVerified},
		{&p.Name, &d.Name}, {&p.Username, &d.Username}, {&p.Groups, &d.Groups},
	} {
		if *f.v == "" {
			*f.v = *f.def
		}
	}
	return p
}

var reservedParams = []string{
	"response_type", "client_id", "redirect_uri", "scope", "state",
	"code_challenge", "code_challenge_method",
}

func decodeConfig(raw json.RawMessage) (Config, *mapping.Mapper, []providers.FieldProblem) {
	var cfg Config
	probs := providers.DecodeConfig(raw, &cfg)
	add := func(path, format string, args ...any) {
		probs = append(probs, providers.FieldProblem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	for _, f := range []struct{ path, v string }{
		{"authURL", cfg.AuthURL}, {"tokenURL", cfg.TokenURL}, {"userinfoURL", cfg.UserinfoURL},
	} {
		if msg := upstream.CheckURL(f.v); msg != "" {
			add(f.path, "%s", msg)
		}
	}
	if strings.TrimSpace(cfg.ClientID) == "" {
		add("clientID", "required")
	}
	if cfg.ClientSecret == "" {
		add("clientSecret", "required")
	}
	switch cfg.TokenEndpointAuthMethod {
	case "", "client_secret_basic", "client_secret_post":
	default:
		add("tokenEndpointAuthMethod", "must be client_secret_basic or client_secret_post")
	}
	for i, s := range cfg.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			add(fmt.Sprintf("scopes[%d]", i), "must be a scope token (no spaces or quotes)")
		}
	}
	for k := range cfg.ExtraParams {
		switch {
		case k == "":
			add("extraParams", "empty parameter name")
		case slices.Contains(reservedParams, k):
			add("extraParams."+k, "reserved: Latchkey sets this parameter itself")
		}
	}
	for _, f := range []struct{ path, v string }{
		{"claims.subject", cfg.Claims.Subject}, {"claims.email", cfg.Claims.Email},
		{"claims.emailVerified", cfg.Claims.EmailVerified}, {"claims.name", cfg.Claims.Name},
		{"claims.username", cfg.Claims.Username}, {"claims.groups", cfg.Claims.Groups},
	} {
		if f.v != "" && slices.Contains(strings.Split(f.v, "."), "") {
			add(f.path, "must be a dotted path without empty segments")
		}
	}
	cfg.Claims = cfg.Claims.withDefaults()
	if cfg.PKCE == nil {
		on := true
		cfg.PKCE = &on
	}
	m, mprobs := mapping.Compile(cfg.Config, mapping.Options{TrustEmail: cfg.TrustEmail})
	probs = append(probs, mprobs...)
	return cfg, m, probs
}

// Type is the oauth2 connector type.
type Type struct{}

var _ providers.Type = Type{}

// Validate checks an oauth2 connector's config.
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
	base, err := upstream.NewBase("oauth2", info, deps, "upstream refresh tokens")
	if err != nil {
		return nil, err
	}
	style := xoauth2.AuthStyleInHeader
	if cfg.TokenEndpointAuthMethod == "client_secret_post" {
		style = xoauth2.AuthStyleInParams
	}
	return &Connector{
		Base:   base,
		cfg:    cfg,
		mapper: m,
		style:  style,
	}, nil
}

// New opens a connector from a typed Config.
func New(ctx context.Context, info providers.Info, cfg Config, deps providers.Deps) (*Connector, error) {
	return providers.OpenTyped[*Connector](ctx, Type{}, info, cfg, deps)
}

// Connector signs users in at a plain OAuth 2.0 upstream.
type Connector struct {
	upstream.Base
	cfg    Config
	mapper *mapping.Mapper
	style  xoauth2.AuthStyle
}

var (
	_ providers.Connector         = (*Connector)(nil)
	_ providers.CallbackConnector = (*Connector)(nil)
	_ providers.RefreshConnector  = (*Connector)(nil)
)

func (c *Connector) config(callbackURL string) *xoauth2.Config {
	return &xoauth2.Config{
		ClientID:     c.cfg.ClientID,
		ClientSecret: c.cfg.ClientSecret,
		RedirectURL:  callbackURL,
		Scopes:       c.cfg.Scopes,
		Endpoint:     xoauth2.Endpoint{AuthURL: c.cfg.AuthURL, TokenURL: c.cfg.TokenURL, AuthStyle: c.style},
	}
}

// LoginURL returns the authorization URL; it does no I/O.
func (c *Connector) LoginURL(ctx context.Context, req providers.LoginRequest) (string, error) {
	if req.CallbackURL == "" || req.State == "" {
		return "", errors.New("oauth2: LoginURL needs a callback URL and a state")
	}
	var opts []xoauth2.AuthCodeOption
	for k, v := range c.cfg.ExtraParams {
		opts = append(opts, xoauth2.SetAuthURLParam(k, v))
	}
	if *c.cfg.PKCE && req.CodeChallenge != "" {
		opts = append(opts,
			xoauth2.SetAuthURLParam("code_challenge", req.CodeChallenge),
			xoauth2.SetAuthURLParam("code_challenge_method", "S256"))
	}
	return c.config(req.CallbackURL).AuthCodeURL(req.State, opts...), nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("oauth2: %w: %s", providers.ErrInvalidCallback, fmt.Sprintf(format, args...))
}

// HandleCallback checks state, redeems the code and reads the user
// document.
func (c *Connector) HandleCallback(ctx context.Context, req providers.CallbackRequest) (providers.Identity, error) {
	q := req.Query
	if req.State == "" || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(req.State)) != 1 {
		return providers.Identity{}, invalid("state does not match the login request")
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
	var opts []xoauth2.AuthCodeOption
	if *c.cfg.PKCE && req.CodeVerifier != "" {
		opts = append(opts, xoauth2.VerifierOption(req.CodeVerifier))
	}
	octx := context.WithValue(ctx, xoauth2.HTTPClient, c.Client.HTTP)
	tok, err := c.config(req.CallbackURL).Exchange(octx, code, opts...)
	if err != nil {
		return providers.Identity{}, c.Client.ClassifyTokenError("oauth2: redeem code", err, providers.ErrInvalidCallback)
	}
	claims, err := c.Client.Userinfo(ctx, c.cfg.UserinfoURL, tok.AccessToken)
	if err != nil {
		return providers.Identity{}, fmt.Errorf("oauth2: %w", err)
	}
	id, err := c.identity(ctx, claims)
	if err != nil {
		return providers.Identity{}, err
	}
	id.AMR = []string{"fed"}
	if id.ConnectorData, err = upstream.SealRefreshToken(c.Sealer, c.Info.ID, id.Subject, tok.RefreshToken); err != nil {
		return providers.Identity{}, fmt.Errorf("oauth2: %w", err)
	}
	c.Log.DebugContext(ctx, "oauth2 login", slog.String("connector", c.Info.ID), slog.String("subject", id.Subject),
		slog.Bool("refresh_token", tok.RefreshToken != ""))
	return id, nil
}

func (c *Connector) claim(claims map[string]any, path string) any {
	v, _ := upstream.Lookup(claims, path)
	return v
}

func (c *Connector) identity(ctx context.Context, claims map[string]any) (providers.Identity, error) {
	p := c.cfg.Claims
	id := providers.Identity{
		Subject:  upstream.AsString(c.claim(claims, p.Subject)),
		Email:    upstream.AsString(c.claim(claims, p.Email)),
		Name:     upstream.AsString(c.claim(claims, p.Name)),
		Username: upstream.AsString(c.claim(claims, p.Username)),
		Groups:   upstream.AsStrings(c.claim(claims, p.Groups)),
	}
	if id.Subject == "" {
		return providers.Identity{}, fmt.Errorf("oauth2: the user document has no subject at %q", p.Subject)
	}
	if id.Email != "" {
		id.EmailVerified = c.cfg.TrustEmail || upstream.AsBool(c.claim(claims, p.EmailVerified))
	}
	if err := c.mapper.Apply(ctx, claims, &id); err != nil {
		var d *providers.DeniedError
		if errors.As(err, &d) {
			return providers.Identity{}, err
		}
		return providers.Identity{}, fmt.Errorf("oauth2: %w", err)
	}
	return id, nil
}

// Refresh spends the sealed upstream refresh token and re-reads the user
// document.
func (c *Connector) Refresh(ctx context.Context, old providers.Identity) (providers.Identity, error) {
	rt, err := upstream.OpenRefreshToken(c.Sealer, c.Info.ID, old.Subject, old.ConnectorData)
	if err != nil {
		return providers.Identity{}, fmt.Errorf("oauth2: refresh: %w", err)
	}
	if rt == "" {
		return old, nil
	}
	octx := context.WithValue(ctx, xoauth2.HTTPClient, c.Client.HTTP)
	tok, err := c.config("").TokenSource(octx, &xoauth2.Token{RefreshToken: rt}).Token()
	if err != nil {
		return providers.Identity{}, c.Client.ClassifyTokenError("oauth2: refresh", err, providers.ErrUpstreamUserGone)
	}
	claims, err := c.Client.Userinfo(ctx, c.cfg.UserinfoURL, tok.AccessToken)
	switch {
	case errors.Is(err, upstream.ErrUserinfoRefused):
		return providers.Identity{}, fmt.Errorf("oauth2: refresh: %w: %w", providers.ErrUpstreamUserGone, err)
	case err != nil:
		return providers.Identity{}, fmt.Errorf("oauth2: refresh: %w", err)
	}
	if upstream.AsString(c.claim(claims, c.cfg.Claims.Subject)) != old.Subject {
		return providers.Identity{}, errors.New("oauth2: refresh: the user document names another subject")
	}
	id, err := c.identity(ctx, claims)
	if err != nil {
		return providers.Identity{}, err
	}
	id.AMR = slices.Clone(old.AMR)
	if id.ConnectorData, err = upstream.SealRefreshToken(c.Sealer, c.Info.ID, old.Subject, tok.RefreshToken); err != nil {
		return providers.Identity{}, fmt.Errorf("oauth2: %w", err)
	}
	return id, nil
}
