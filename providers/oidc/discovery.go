package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/providers/upstream"
)

// DiscoveryTTL is how long a discovery document is used before it is read
// again. A failed re-read keeps the old document.
const DiscoveryTTL = 24 * time.Hour

// TenantPlaceholder is how Microsoft Entra ID's multi-tenant discovery
// documents spell the tenant in the issuer.
const TenantPlaceholder = "{tenantid}"

// supportedAlgs are the ID token algorithms go-oidc verifies.
var supportedAlgs = []string{
	gooidc.RS256, gooidc.RS384, gooidc.RS512, gooidc.ES256, gooidc.ES384, gooidc.ES512,
	gooidc.PS256, gooidc.PS384, gooidc.PS512, gooidc.EdDSA,
}

// metadata is the part of the discovery document the connector uses.
type metadata struct {
	Issuer                 string   `json:"issuer"`
	AuthorizationEndpoint  string   `json:"authorization_endpoint"`
	TokenEndpoint          string   `json:"token_endpoint"`
	UserinfoEndpoint       string   `json:"userinfo_endpoint"`
	JWKSURI                string   `json:"jwks_uri"`
	EndSessionEndpoint     string   `json:"end_session_endpoint"`
	IDTokenSigningAlgs     []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMeths []string `json:"token_endpoint_auth_methods_supported"`
	IssParameterSupported  bool     `json:"authorization_response_iss_parameter_supported"`
}

// provider is what discovery yields, ready to use.
type provider struct {
	meta metadata
	// issuer is what ID tokens must carry; with tenants it holds
	// TenantPlaceholder and tenantIssuer checks it.
	issuer    string
	tenants   bool
	authStyle oauth2.AuthStyle
	keySet    *gooidc.RemoteKeySet
	verifier  *gooidc.IDTokenVerifier
	fetchedAt time.Time
}

// discover returns the upstream's provider metadata, reading discovery at
// the first use and again after DiscoveryTTL. One read runs at a time; a
// failed re-read keeps the old metadata; a failed first read is
// ErrUpstreamUnavailable.
func (c *Connector) discover(ctx context.Context) (*provider, error) {
	if p := c.cached(); p != nil && c.Clock.Now().Sub(p.fetchedAt) < DiscoveryTTL {
		return p, nil
	}
	select {
	case c.discoverSem <- struct{}{}:
		defer func() { <-c.discoverSem }()
	case <-ctx.Done():
		return nil, fmt.Errorf("oidc: wait for discovery: %w", ctx.Err())
	}
	old := c.cached()
	if old != nil && c.Clock.Now().Sub(old.fetchedAt) < DiscoveryTTL {
		return old, nil // another caller refreshed it while we waited
	}
	p, err := c.fetchDiscovery(ctx, old)
	if err != nil {
		if old != nil {
			c.Log.WarnContext(ctx, "oidc discovery re-read failed; keeping the previous document",
				slog.String("connector", c.Info.ID), slog.String("error", err.Error()))
			return old, nil
		}
		return nil, err
	}
	c.mu.Lock()
	c.provider = p
	c.mu.Unlock()
	return p, nil
}

func (c *Connector) cached() *provider {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.provider
}

func (c *Connector) fetchDiscovery(ctx context.Context, old *provider) (*provider, error) {
	wellKnown := strings.TrimSuffix(c.cfg.Issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, wellKnown, nil)
	if err != nil {
		return nil, fmt.Errorf("oidc: discovery request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Client.HTTP.Do(req)
	if err != nil {
		return nil, c.Client.Unavailable(fmt.Errorf("discovery: %w", err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, c.Client.Unavailable(&upstream.StatusError{Endpoint: "discovery", Status: resp.StatusCode})
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, c.Client.Unavailable(fmt.Errorf("discovery: read: %w", err))
	}
	var m metadata
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, c.Client.Unavailable(fmt.Errorf("discovery: decode: %w", err))
	}
	p, err := c.newProvider(ctx, m, old)
	if err != nil {
		return nil, c.Client.Unavailable(fmt.Errorf("discovery: %w", err))
	}
	return p, nil
}

// newProvider checks the discovery document and prepares the verifier.
// The key set is kept from old when jwks_uri did not change, so its cache
// survives a re-read.
func (c *Connector) newProvider(ctx context.Context, m metadata, old *provider) (*provider, error) {
	p := &provider{meta: m, issuer: m.Issuer, fetchedAt: c.Clock.Now()}
	switch {
	case m.Issuer == c.cfg.Issuer:
	case strings.Contains(m.Issuer, TenantPlaceholder):
		if len(c.cfg.AllowedTenants) == 0 {
			return nil, fmt.Errorf("issuer %q is multi-tenant: set allowedTenants", m.Issuer)
		}
		p.tenants = true
	default:
		return nil, fmt.Errorf("issuer %q in the discovery document is not the configured issuer %q", m.Issuer, c.cfg.Issuer)
	}
	for name, v := range map[string]string{
		"authorization_endpoint": m.AuthorizationEndpoint,
		"token_endpoint":         m.TokenEndpoint,
		"jwks_uri":               m.JWKSURI,
	} {
		if err := checkEndpoint(v); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if m.UserinfoEndpoint != "" {
		if err := checkEndpoint(m.UserinfoEndpoint); err != nil {
			return nil, fmt.Errorf("userinfo_endpoint: %w", err)
		}
	}

	var algs []string
	for _, a := range m.IDTokenSigningAlgs {
		if slices.Contains(supportedAlgs, a) {
			algs = append(algs, a)
		}
	}
	if len(algs) == 0 {
		algs = []string{gooidc.RS256}
	}

	switch c.cfg.TokenEndpointAuthMethod {
	case "client_secret_post":
		p.authStyle = oauth2.AuthStyleInParams
	case "client_secret_basic":
		p.authStyle = oauth2.AuthStyleInHeader
	default:
		meths := m.TokenEndpointAuthMeths
		if len(meths) == 0 || slices.Contains(meths, "client_secret_basic") || !slices.Contains(meths, "client_secret_post") {
			p.authStyle = oauth2.AuthStyleInHeader
		} else {
			p.authStyle = oauth2.AuthStyleInParams
		}
	}

	if old != nil && old.meta.JWKSURI == m.JWKSURI {
		p.keySet = old.keySet
	} else {
		// The key set keeps ctx only for its values (the HTTP client);
		// go-oidc drops its cancellation.
		p.keySet = gooidc.NewRemoteKeySet(gooidc.ClientContext(ctx, c.Client.HTTP), m.JWKSURI)
	}
	p.verifier = gooidc.NewVerifier(p.issuer, p.keySet, &gooidc.Config{
		ClientID:             c.cfg.ClientID,
		SupportedSigningAlgs: algs,
		Now:                  c.Clock.Now,
		// With tenants the issuer differs per tenant: tenantIssuer checks
		// it against the token's tid.
		SkipIssuerCheck: p.tenants,
	})
	return p, nil
}

func checkEndpoint(s string) error {
	if s == "" {
		return errors.New("missing")
	}
	if msg := upstream.CheckURL(s); msg != "" {
		return errors.New(msg)
	}
	return nil
}

// tenantIssuer checks a multi-tenant ID token: its tid must be allowed
// and its iss must be the template with that tid.
func (c *Connector) tenantIssuer(p *provider, iss string, claims map[string]any) error {
	tid, _ := claims["tid"].(string)
	if tid == "" {
		return errors.New("ID token has no tid claim")
	}
	if !slices.Contains(c.cfg.AllowedTenants, "*") && !slices.Contains(c.cfg.AllowedTenants, tid) {
		return &tenantError{tid: tid}
	}
	if want := strings.ReplaceAll(p.issuer, TenantPlaceholder, tid); iss != want {
		return fmt.Errorf("ID token issuer %q is not %q", iss, want)
	}
	return nil
}

type tenantError struct{ tid string }

func (e *tenantError) Error() string { return fmt.Sprintf("tenant %q is not in allowedTenants", e.tid) }
