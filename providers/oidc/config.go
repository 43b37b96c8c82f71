package oidc

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/mapping"
	"github.com/latchkeyid/latchkey/providers/upstream"
)

// DefaultScopes are requested when the config sets none.
var defaultScopes = []string{"openid", "profile", "email"}

// DefaultScopes returns the scopes requested when the config sets none.
func DefaultScopes() []string { return slices.Clone(defaultScopes) }

// Config is the `config` object of an oidc connector. Keys are camelCase.
type Config struct {
	// Issuer is the upstream's issuer URL; discovery is read from
	// Issuer + "/.well-known/openid-configuration" and ID tokens must carry
	// it as iss (see AllowedTenants for multi-tenant issuers).
	Issuer       string `json:"issuer"`
	ClientID     string `json:"clientID"`
	ClientSecret string `json:"clientSecret"`
	// TokenEndpointAuthMethod is client_secret_basic or client_secret_post;
	// unset picks from discovery (basic when offered).
	TokenEndpointAuthMethod string `json:"tokenEndpointAuthMethod"`
	// Scopes requested; must include openid. Default openid profile email.
	Scopes []string `json:"scopes"`
	// Prompt sent upstream (none, login, consent, select_account) unless
	// the app's request carries one.
	Prompt string `json:"prompt"`
	// ExtraParams are added to the authorization request (e.g.
	// access_type: offline for Google). Parameters Latchkey sets itself are
	// refused.
	ExtraParams map[string]string `json:"extraParams"`
	// Userinfo merges the userinfo endpoint's claims over the ID token's.
	Userinfo bool `json:"userinfo"`
	// TrustEmail makes every email this upstream reports verified.
	TrustEmail bool `json:"trustEmail"`
	// TrustUpstreamAMR adds the ID token's amr values after "fed".
	TrustUpstreamAMR bool `json:"trustUpstreamAMR"`
	// HostedDomain (Google Workspace) is sent as hd and required in the
	// ID token's hd claim; "*" requires any hosted domain.
	HostedDomain string `json:"hostedDomain"`
	// AllowedTenants (Microsoft Entra ID multi-tenant) lists the tenant ids
	// whose users may sign in when the discovered issuer is the template
	// https://login.microsoftonline.com/{tenantid}/v2.0; "*" allows every
	// tenant.
	AllowedTenants []string `json:"allowedTenants"`

	mapping.Config
}

// reservedParams are set by the connector and may not be in ExtraParams.
var reservedParams = []string{
	"response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
	"code_challenge", "code_challenge_method", "login_hint", "prompt", "hd",
	"response_mode", "request", "request_uri",
}

var promptValues = []string{"none", "login", "consent", "select_account"}

// decodeConfig decodes and checks raw; it returns the config with
// defaults applied, the compiled mapping and every problem.
func decodeConfig(raw json.RawMessage) (Config, *mapping.Mapper, []providers.FieldProblem) {
	var cfg Config
	probs := providers.DecodeConfig(raw, &cfg)
	add := func(path, format string, args ...any) {
		probs = append(probs, providers.FieldProblem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	if msg := checkIssuer(cfg.Issuer); msg != "" {
		add("issuer", "%s", msg)
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
	if cfg.Scopes == nil {
		cfg.Scopes = DefaultScopes()
	}
	for i, s := range cfg.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			add(fmt.Sprintf("scopes[%d]", i), "must be a scope token (no spaces or quotes)")
		}
	}
	if !slices.Contains(cfg.Scopes, "openid") {
		add("scopes", "must include openid")
	}
	if msg := CheckPrompt(cfg.Prompt); msg != "" {
		add("prompt", "%s", msg)
	}
	for k := range cfg.ExtraParams {
		switch {
		case k == "":
			add("extraParams", "empty parameter name")
		case slices.Contains(reservedParams, k):
			add("extraParams."+k, "reserved: Latchkey sets this parameter itself")
		}
	}
	if hd := cfg.HostedDomain; hd != "" && hd != "*" && !validDomain(hd) {
		add("hostedDomain", "must be a domain name or *")
	}
	for i, t := range cfg.AllowedTenants {
		if strings.TrimSpace(t) == "" || strings.ContainsAny(t, "/{} ") {
			add(fmt.Sprintf("allowedTenants[%d]", i), "must be a tenant id or *")
		}
	}
	if slices.Contains(cfg.AllowedTenants, "*") && len(cfg.AllowedTenants) > 1 {
		add("allowedTenants", "* allows every tenant: list nothing else")
	}
	m, mprobs := mapping.Compile(cfg.Config, mapping.Options{TrustEmail: cfg.TrustEmail})
	probs = append(probs, mprobs...)
	return cfg, m, probs
}

// checkIssuer returns why s is not an acceptable issuer URL, or "".
func checkIssuer(s string) string {
	if msg := upstream.CheckURL(s); msg != "" {
		return msg
	}
	if u, _ := url.Parse(s); u.RawQuery != "" {
		return "must not have a query"
	}
	return ""
}

func validDomain(s string) bool {
	if len(s) > 253 || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || !strings.Contains(s, ".") {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// CheckPrompt returns why p is not a valid OpenID Connect prompt value,
// or "".
func CheckPrompt(p string) string {
	if p == "" {
		return ""
	}
	vals := strings.Fields(p)
	for _, v := range vals {
		if !slices.Contains(promptValues, v) {
			return fmt.Sprintf("unknown prompt value %q (want none, login, consent, select_account)", v)
		}
	}
	if slices.Contains(vals, "none") && len(vals) > 1 {
		return "none cannot be combined with other values"
	}
	return ""
}
