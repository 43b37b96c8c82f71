package github

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

// Defaults for github.com.
const (
	DefaultBaseURL = "https://github.com"
	DefaultAPIURL  = "https://api.github.com"
)

var defaultScopes = []string{"read:user", "user:email", "read:org"}

// DefaultScopes returns the scopes requested when the config sets none:
// the profile, the email addresses (with their verified flags) and the
// organization and team memberships (private ones included).
func DefaultScopes() []string { return slices.Clone(defaultScopes) }

// Config is the `config` object of a github connector. Keys are camelCase.
type Config struct {
	// BaseURL is GitHub's web address: https://github.com (default) or a
	// GitHub Enterprise Server's (https://github.example.com). The
	// authorization and token endpoints are BaseURL/login/oauth/authorize
	// and BaseURL/login/oauth/access_token.
	BaseURL string `json:"baseURL"`
	// APIURL is the REST API's root: https://api.github.com for
	// github.com, BaseURL/api/v3 for GitHub Enterprise Server. Set it only
	// where the API lives elsewhere (GitHub Enterprise Cloud with data
	// residency: https://api.SUBDOMAIN.ghe.com).
	APIURL       string `json:"apiURL"`
	ClientID     string `json:"clientID"`
	ClientSecret string `json:"clientSecret"`
	// Scopes requested (OAuth apps; GitHub Apps ignore them and use the
	// app's permissions). Default read:user user:email read:org.
	Scopes []string `json:"scopes"`
	// Orgs and Teams restrict the login: when either is set, only members
	// of at least one listed organization, or of at least one listed team
	// ("org:team-slug"), may sign in, and groups are limited to those
	// organizations. Organization names compare case-insensitively.
	Orgs  []string `json:"orgs"`
	Teams []string `json:"teams"`

	mapping.Config
}

// restricted reports whether Orgs or Teams limit who may sign in.
func (c Config) restricted() bool { return len(c.Orgs) > 0 || len(c.Teams) > 0 }

// validLogin reports whether s is a GitHub user or organization name:
// 1-39 letters, digits and single inner hyphens.
func validLogin(s string) bool {
	if len(s) == 0 || len(s) > 39 || strings.HasPrefix(s, "-") || strings.HasSuffix(s, "-") || strings.Contains(s, "--") {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// validSlug reports whether s is a team slug: lower-case letters, digits,
// hyphens and underscores.
func validSlug(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z') {
			return false
		}
	}
	return true
}

func checkRoot(s string) string {
	if msg := upstream.CheckURL(s); msg != "" {
		return msg
	}
	if u, _ := url.Parse(s); u.RawQuery != "" || u.ForceQuery {
		return "must not have a query"
	}
	return ""
}

// decodeConfig decodes and checks raw; it returns the config with
// defaults applied, the compiled mapping and every problem.
func decodeConfig(raw json.RawMessage) (Config, *mapping.Mapper, []providers.FieldProblem) {
	var cfg Config
	probs := providers.DecodeConfig(raw, &cfg)
	add := func(path, format string, args ...any) {
		probs = append(probs, providers.FieldProblem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	} else if msg := checkRoot(cfg.BaseURL); msg != "" {
		add("baseURL", "%s", msg)
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	if cfg.APIURL != "" {
		if msg := checkRoot(cfg.APIURL); msg != "" {
			add("apiURL", "%s", msg)
		}
	} else if cfg.BaseURL == DefaultBaseURL {
		cfg.APIURL = DefaultAPIURL
	} else {
		cfg.APIURL = cfg.BaseURL + "/api/v3"
	}
	cfg.APIURL = strings.TrimSuffix(cfg.APIURL, "/")
	if strings.TrimSpace(cfg.ClientID) == "" {
		add("clientID", "required")
	}
	if cfg.ClientSecret == "" {
		add("clientSecret", "required")
	}
	explicitScopes := cfg.Scopes != nil
	if !explicitScopes {
		cfg.Scopes = DefaultScopes()
	}
	for i, s := range cfg.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\,") {
			add(fmt.Sprintf("scopes[%d]", i), "must be a scope token (no spaces, commas or quotes)")
		}
	}
	if explicitScopes && cfg.restricted() && !slices.Contains(cfg.Scopes, "read:org") &&
		!slices.Contains(cfg.Scopes, "admin:org") {
		add("scopes", "must include read:org when orgs or teams restrict the login (private memberships are invisible without it)")
	}
	for i, o := range cfg.Orgs {
		if !validLogin(o) {
			add(fmt.Sprintf("orgs[%d]", i), "must be an organization name")
		}
	}
	for i, t := range cfg.Teams {
		org, slug, ok := strings.Cut(t, ":")
		if !ok || !validLogin(org) || !validSlug(slug) {
			add(fmt.Sprintf("teams[%d]", i), "must be org:team-slug (the team's slug, lower case)")
		}
	}
	m, mprobs := mapping.Compile(cfg.Config, mapping.Options{})
	probs = append(probs, mprobs...)
	return cfg, m, probs
}
