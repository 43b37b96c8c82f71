package facebook

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/mapping"
	"github.com/latchkeyid/latchkey/providers/upstream"
)

// TypeName is the connector type's name in the registry.
const TypeName = "facebook"

// Type is the facebook connector type.
type Type struct{}

var _ providers.Type = Type{}

// Validate checks a facebook connector's config; see Config.
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
	base, err := upstream.NewBase("facebook", info, deps, "the access token")
	if err != nil {
		return nil, err
	}
	return &Connector{Base: base, cfg: cfg, mapper: m}, nil
}

// New opens a connector from a typed Config.
func New(ctx context.Context, info providers.Info, cfg Config, deps providers.Deps) (*Connector, error) {
	return providers.OpenTyped[*Connector](ctx, Type{}, info, cfg, deps)
}

// Connector signs users in with Facebook Login.
type Connector struct {
	upstream.Base
	cfg    Config
	mapper *mapping.Mapper
}

var (
	_ providers.Connector         = (*Connector)(nil)
	_ providers.CallbackConnector = (*Connector)(nil)
	_ providers.RefreshConnector  = (*Connector)(nil)
)

func (c *Connector) oauth2Config(callbackURL string) *oauth2.Config {
	v := "/" + c.cfg.GraphAPIVersion
	return &oauth2.Config{
		ClientID:     c.cfg.ClientID,
		ClientSecret: c.cfg.ClientSecret,
		RedirectURL:  callbackURL,
		Scopes:       c.cfg.Scopes,
		Endpoint: oauth2.Endpoint{
			AuthURL:   c.cfg.FacebookURL + v + "/dialog/oauth",
			TokenURL:  c.cfg.GraphURL + v + "/oauth/access_token",
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}
}

// LoginURL returns the login dialog's URL: the permissions, state and the
// PKCE S256 challenge (unless pkce: false). Facebook has no login_hint or
// prompt. It does no I/O.
func (c *Connector) LoginURL(ctx context.Context, req providers.LoginRequest) (string, error) {
	if req.CallbackURL == "" || req.State == "" {
		return "", errors.New("facebook: LoginURL needs a callback URL and a state")
	}
	var opts []oauth2.AuthCodeOption
	if *c.cfg.PKCE && req.CodeChallenge != "" {
		opts = append(opts,
			oauth2.SetAuthURLParam("code_challenge", req.CodeChallenge),
			oauth2.SetAuthURLParam("code_challenge_method", "S256"))
	}
	return c.oauth2Config(req.CallbackURL).AuthCodeURL(req.State, opts...), nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("facebook: %w: %s", providers.ErrInvalidCallback, fmt.Sprintf(format, args...))
}

// HandleCallback checks state, redeems the code, reads /me and keeps the
// access token sealed in ConnectorData (Facebook has no refresh tokens).
func (c *Connector) HandleCallback(ctx context.Context, req providers.CallbackRequest) (providers.Identity, error) {
	q := req.Query
	if req.State == "" || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(req.State)) != 1 {
		return providers.Identity{}, invalid("state does not match the login request")
	}
	if e := q.Get("error"); e != "" {
		desc := q.Get("error_description")
		if desc == "" {
			desc = q.Get("error_reason")
		}
		return providers.Identity{}, &providers.UpstreamError{Code: upstream.Clip(e, 64), Description: upstream.Clip(desc, 300)}
	}
	code := q.Get("code")
	if code == "" {
		return providers.Identity{}, invalid("callback has no code")
	}
	var opts []oauth2.AuthCodeOption
	if *c.cfg.PKCE && req.CodeVerifier != "" {
		opts = append(opts, oauth2.VerifierOption(req.CodeVerifier))
	}
	octx := context.WithValue(ctx, oauth2.HTTPClient, c.Client.HTTP)
	tok, err := c.oauth2Config(req.CallbackURL).Exchange(octx, code, opts...)
	if err != nil {
		return providers.Identity{}, c.classifyTokenError("facebook: redeem code", err, providers.ErrInvalidCallback)
	}
	doc, err := c.me(ctx, tok.AccessToken)
	if errors.Is(err, errTokenInvalid) {
		return providers.Identity{}, fmt.Errorf("facebook: %w: %w", providers.ErrInvalidCallback, err)
	}
	if err != nil {
		return providers.Identity{}, err
	}
	id, err := c.identity(ctx, doc)
	if err != nil {
		return providers.Identity{}, err
	}
	id.AMR = []string{"fed"}
	if id.ConnectorData, err = upstream.SealAccessToken(c.Sealer, c.Info.ID, id.Subject, tok.AccessToken, tok.Expiry); err != nil {
		return providers.Identity{}, fmt.Errorf("facebook: %w", err)
	}
	c.Log.DebugContext(ctx, "facebook login", slog.String("connector", c.Info.ID), slog.String("subject", id.Subject),
		slog.Time("token_expiry", tok.Expiry))
	return id, nil
}

// identity builds the Identity from /me: Subject the app-scoped user id,
// Name, Email (verified: Facebook returns only a confirmed address), then
// the CEL mapping and rules over the /me document.
func (c *Connector) identity(ctx context.Context, doc map[string]any) (providers.Identity, error) {
	id := providers.Identity{
		Subject: upstream.AsString(doc["id"]),
		Name:    upstream.AsString(doc["name"]),
		Email:   upstream.AsString(doc["email"]),
	}
	if id.Subject == "" {
		return providers.Identity{}, errors.New("facebook: Graph API /me has no id")
	}
	id.EmailVerified = id.Email != ""
	if err := c.mapper.Apply(ctx, doc, &id); err != nil {
		var d *providers.DeniedError
		if errors.As(err, &d) {
			return providers.Identity{}, err
		}
		return providers.Identity{}, fmt.Errorf("facebook: %w", err)
	}
	return id, nil
}

// Refresh re-reads /me with the access token kept at login (Facebook
// issues no refresh tokens; the token of a server-side login lasts about
// 60 days). Code 190 (the user removed the app, changed the password, the
// token was revoked) is ErrUpstreamUserGone. Once the token has expired
// there is nothing to re-check with, and the identity is returned
// unchanged until the user signs in again.
func (c *Connector) Refresh(ctx context.Context, old providers.Identity) (providers.Identity, error) {
	at, exp, err := upstream.OpenAccessToken(c.Sealer, c.Info.ID, old.Subject, old.ConnectorData)
	if err != nil {
		return providers.Identity{}, fmt.Errorf("facebook: refresh: %w", err)
	}
	if at == "" || !exp.IsZero() && !c.Clock.Now().Before(exp) {
		return old, nil
	}
	doc, err := c.me(ctx, at)
	switch {
	case errors.Is(err, errTokenInvalid):
		return providers.Identity{}, fmt.Errorf("facebook: refresh: %w: %w", providers.ErrUpstreamUserGone, err)
	case err != nil:
		return providers.Identity{}, err
	}
	if upstream.AsString(doc["id"]) != old.Subject {
		return providers.Identity{}, errors.New("facebook: refresh: the token belongs to another user")
	}
	id, err := c.identity(ctx, doc)
	if err != nil {
		return providers.Identity{}, err
	}
	id.AMR = slices.Clone(old.AMR)
	id.ConnectorData = old.ConnectorData
	return id, nil
}
