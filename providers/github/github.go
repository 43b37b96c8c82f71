package github

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

	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/mapping"
	"github.com/latchkeyid/latchkey/providers/upstream"
)

// TypeName is the connector type's name in the registry.
const TypeName = "github"

// DefaultNotAllowedReason is shown to a user outside the configured
// organizations and teams when notAllowedReason is not set.
const DefaultNotAllowedReason = "Your GitHub account is not a member of an organization or team allowed to sign in here."

// Type is the github connector type.
type Type struct{}

var _ providers.Type = Type{}

// Validate checks a github connector's config; see Config.
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
	base, err := upstream.NewBase("github", info, deps, "upstream tokens")
	if err != nil {
		return nil, err
	}
	api, err := url.Parse(cfg.APIURL)
	if err != nil {
		return nil, fmt.Errorf("github: apiURL: %w", err)
	}
	return &Connector{
		Base:    base,
		cfg:     cfg,
		mapper:  m,
		apiPath: strings.TrimSuffix(api.Path, "/"),
	}, nil
}

// New opens a connector from a typed Config.
func New(ctx context.Context, info providers.Info, cfg Config, deps providers.Deps) (*Connector, error) {
	return providers.OpenTyped[*Connector](ctx, Type{}, info, cfg, deps)
}

// Connector signs users in with GitHub (github.com or GitHub Enterprise
// Server).
type Connector struct {
	upstream.Base
	cfg     Config
	mapper  *mapping.Mapper
	apiPath string
}

var (
	_ providers.Connector         = (*Connector)(nil)
	_ providers.CallbackConnector = (*Connector)(nil)
	_ providers.RefreshConnector  = (*Connector)(nil)
)

func (c *Connector) oauth2Config(callbackURL string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     c.cfg.ClientID,
		ClientSecret: c.cfg.ClientSecret,
		RedirectURL:  callbackURL,
		Scopes:       c.cfg.Scopes,
		Endpoint: oauth2.Endpoint{
			AuthURL:   c.cfg.BaseURL + "/login/oauth/authorize",
			TokenURL:  c.cfg.BaseURL + "/login/oauth/access_token",
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}
}

// LoginURL returns GitHub's authorization URL: the scopes, state, PKCE
// S256 (GitHub accepts only S256), and prompt=select_account when the
// app's request asks for it (GitHub's only prompt value). It does no I/O.
func (c *Connector) LoginURL(ctx context.Context, req providers.LoginRequest) (string, error) {
	if req.CallbackURL == "" || req.State == "" {
		return "", errors.New("github: LoginURL needs a callback URL and a state")
	}
	var opts []oauth2.AuthCodeOption
	if req.CodeChallenge != "" {
		opts = append(opts,
			oauth2.SetAuthURLParam("code_challenge", req.CodeChallenge),
			oauth2.SetAuthURLParam("code_challenge_method", "S256"))
	}
	if slices.Contains(strings.Fields(req.Prompt), "select_account") {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "select_account"))
	}
	return c.oauth2Config(req.CallbackURL).AuthCodeURL(req.State, opts...), nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("github: %w: %s", providers.ErrInvalidCallback, fmt.Sprintf(format, args...))
}

// classifyTokenError reads GitHub's token endpoint errors, which come in
// a 200 answer: bad_verification_code (a used, expired or unknown code)
// and bad_refresh_token are refused (ErrInvalidCallback for a code,
// ErrUpstreamUserGone for a refresh token), like invalid_grant;
// incorrect_client_credentials and redirect_uri_mismatch are the config's
// fault (server errors).
func (c *Connector) classifyTokenError(op string, err error, refused error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && (re.ErrorCode == "bad_verification_code" || re.ErrorCode == "bad_refresh_token") {
		te := &upstream.TokenEndpointError{Code: re.ErrorCode, Description: upstream.Clip(re.ErrorDescription, 200)}
		if re.Response != nil {
			te.Status = re.Response.StatusCode
		}
		return fmt.Errorf("%s: %w: %w", op, refused, te)
	}
	return c.Client.ClassifyTokenError(op, err, refused)
}

// HandleCallback checks state, redeems the code with the PKCE verifier,
// reads the user, their emails, organizations and teams, applies the
// organization and team restriction and the rules, and keeps the upstream
// token (refresh token, or the access token of an OAuth app) sealed in
// ConnectorData.
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
	var opts []oauth2.AuthCodeOption
	if req.CodeVerifier != "" {
		opts = append(opts, oauth2.VerifierOption(req.CodeVerifier))
	}
	octx := context.WithValue(ctx, oauth2.HTTPClient, c.Client.HTTP)
	tok, err := c.oauth2Config(req.CallbackURL).Exchange(octx, code, opts...)
	if err != nil {
		return providers.Identity{}, c.classifyTokenError("github: redeem code", err, providers.ErrInvalidCallback)
	}
	p, err := c.fetch(ctx, tok.AccessToken)
	if errors.Is(err, errTokenRefused) {
		return providers.Identity{}, fmt.Errorf("github: %w: %w", providers.ErrInvalidCallback, err)
	}
	if err != nil {
		return providers.Identity{}, err
	}
	id, err := c.identity(ctx, p)
	if err != nil {
		return providers.Identity{}, err
	}
	id.AMR = []string{"fed"}
	if tok.RefreshToken != "" {
		id.ConnectorData, err = upstream.SealRefreshToken(c.Sealer, c.Info.ID, id.Subject, tok.RefreshToken)
	} else {
		id.ConnectorData, err = upstream.SealAccessToken(c.Sealer, c.Info.ID, id.Subject, tok.AccessToken, tok.Expiry)
	}
	if err != nil {
		return providers.Identity{}, fmt.Errorf("github: %w", err)
	}
	c.Log.DebugContext(ctx, "github login", slog.String("connector", c.Info.ID), slog.String("subject", id.Subject),
		slog.Bool("refresh_token", tok.RefreshToken != ""), slog.Int("orgs", len(p.orgs)), slog.Int("teams", len(p.teams)))
	return id, nil
}

// identity builds the Identity: subject the numeric user id, username the
// login, the primary email (verified only when GitHub verified it),
// groups "org" and "org:team-slug"; then the org and team restriction and
// the CEL mapping and rules over claims (the /user document plus orgs,
// teams and emails).
func (c *Connector) identity(ctx context.Context, p *profile) (providers.Identity, error) {
	id := providers.Identity{
		Subject:  upstream.AsString(p.user["id"]),
		Username: upstream.AsString(p.user["login"]),
		Name:     upstream.AsString(p.user["name"]),
	}
	if id.Subject == "" {
		return providers.Identity{}, errors.New("github: GitHub API /user has no id")
	}
	for _, e := range p.emails {
		if e.Primary {
			id.Email, id.EmailVerified = e.Email, e.Verified
			break
		}
	}
	if !p.emailsRead {
		// Without user:email only the public profile email is known, and
		// GitHub does not say whether it was verified.
		id.Email = upstream.AsString(p.user["email"])
	}
	if id.Email == "" {
		id.EmailVerified = false
	}

	allowedOrgs := slices.Clone(c.cfg.Orgs)
	for _, t := range c.cfg.Teams {
		o, _, _ := strings.Cut(t, ":")
		allowedOrgs = append(allowedOrgs, o)
	}
	inScope := func(org string) bool { return !c.cfg.restricted() || containsFold(allowedOrgs, org) }
	member := false
	orgClaim := make([]any, 0, len(p.orgs))
	for _, o := range p.orgs {
		orgClaim = append(orgClaim, o)
		member = member || containsFold(c.cfg.Orgs, o)
		if inScope(o) {
			id.Groups = append(id.Groups, o)
		}
	}
	teamClaim := make([]any, 0, len(p.teams))
	for _, t := range p.teams {
		name := t[0] + ":" + t[1]
		teamClaim = append(teamClaim, name)
		for _, want := range c.cfg.Teams {
			wo, ws, _ := strings.Cut(want, ":")
			member = member || strings.EqualFold(wo, t[0]) && ws == t[1]
		}
		if inScope(t[0]) {
			id.Groups = append(id.Groups, name)
		}
	}
	if c.cfg.restricted() && !member {
		reason := c.cfg.NotAllowedReason
		if reason == "" {
			reason = DefaultNotAllowedReason
		}
		return providers.Identity{}, &providers.DeniedError{Reason: reason}
	}

	claims := make(map[string]any, len(p.user)+3)
	for k, v := range p.user {
		claims[k] = v
	}
	emailClaim := make([]any, 0, len(p.emails))
	for _, e := range p.emails {
		emailClaim = append(emailClaim, map[string]any{"email": e.Email, "primary": e.Primary, "verified": e.Verified})
	}
	claims["orgs"], claims["teams"], claims["emails"] = orgClaim, teamClaim, emailClaim
	if err := c.mapper.Apply(ctx, claims, &id); err != nil {
		var d *providers.DeniedError
		if errors.As(err, &d) {
			return providers.Identity{}, err
		}
		return providers.Identity{}, fmt.Errorf("github: %w", err)
	}
	return id, nil
}

func containsFold(list []string, s string) bool {
	return slices.ContainsFunc(list, func(e string) bool { return strings.EqualFold(e, s) })
}

// Refresh re-checks the user at GitHub. With a refresh token (GitHub Apps
// with expiring user tokens) it spends it (GitHub rotates it:
// bad_refresh_token is ErrUpstreamUserGone); with the access token of an
// OAuth app it reads the user with it (401 Bad credentials: the user
// revoked the authorization, ErrUpstreamUserGone). Then the organization
// and team restriction and the rules apply again (*DeniedError for a user
// who left). An identity without either, or whose access token has
// expired, is returned unchanged.
func (c *Connector) Refresh(ctx context.Context, old providers.Identity) (providers.Identity, error) {
	rt, err := upstream.OpenRefreshToken(c.Sealer, c.Info.ID, old.Subject, old.ConnectorData)
	if err != nil {
		return providers.Identity{}, fmt.Errorf("github: refresh: %w", err)
	}
	var access string
	data := old.ConnectorData
	if rt != "" {
		octx := context.WithValue(ctx, oauth2.HTTPClient, c.Client.HTTP)
		tok, err := c.oauth2Config("").TokenSource(octx, &oauth2.Token{RefreshToken: rt}).Token()
		if err != nil {
			return providers.Identity{}, c.classifyTokenError("github: refresh", err, providers.ErrUpstreamUserGone)
		}
		access = tok.AccessToken
		if data, err = upstream.SealRefreshToken(c.Sealer, c.Info.ID, old.Subject, tok.RefreshToken); err != nil {
			return providers.Identity{}, fmt.Errorf("github: %w", err)
		}
	} else {
		at, exp, err := upstream.OpenAccessToken(c.Sealer, c.Info.ID, old.Subject, old.ConnectorData)
		if err != nil {
			return providers.Identity{}, fmt.Errorf("github: refresh: %w", err)
		}
		if at == "" || !exp.IsZero() && !c.Clock.Now().Before(exp) {
			return old, nil
		}
		access = at
	}
	p, err := c.fetch(ctx, access)
	if errors.Is(err, errTokenRefused) {
		return providers.Identity{}, fmt.Errorf("github: refresh: %w: %w", providers.ErrUpstreamUserGone, err)
	}
	if err != nil {
		return providers.Identity{}, err
	}
	if got := upstream.AsString(p.user["id"]); got != old.Subject {
		return providers.Identity{}, errors.New("github: refresh: the token belongs to another user")
	}
	id, err := c.identity(ctx, p)
	if err != nil {
		return providers.Identity{}, err
	}
	id.AMR = slices.Clone(old.AMR)
	id.ConnectorData = data
	return id, nil
}
