package facebook

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/mapping"
	"github.com/latchkeyid/latchkey/providers/upstream"
)

// Defaults.
const (
	DefaultGraphAPIVersion = "v19.0"
	DefaultFacebookURL     = "https://www.facebook.com"
	DefaultGraphURL        = "https://graph.facebook.com"
)

var defaultScopes = []string{"public_profile", "email"}

// DefaultScopes returns the permissions asked for when the config sets
// none: the public profile (id, name) and the email address.
func DefaultScopes() []string { return slices.Clone(defaultScopes) }

var versionRE = regexp.MustCompile(`^v[1-9][0-9]*\.[0-9]+$`)

// Config is the `config` object of a facebook connector. Keys are
// camelCase.
type Config struct {
	// ClientID is the app's App ID, ClientSecret its App Secret.
	ClientID     string `json:"clientID"`
	ClientSecret string `json:"clientSecret"`
	// GraphAPIVersion is the versioned path of the login dialog and the
	// Graph API ("v19.0"). Default DefaultGraphAPIVersion.
	GraphAPIVersion string `json:"graphAPIVersion"`
	// Scopes are the permissions asked for. Default public_profile email.
	Scopes []string `json:"scopes"`
	// PKCE sends the S256 challenge; default true.
	PKCE *bool `json:"pkce"`
	// FacebookURL and GraphURL are where the login dialog and the Graph
	// API live; change them only for a proxy or a test fake.
	FacebookURL string `json:"facebookURL"`
	GraphURL    string `json:"graphURL"`

	mapping.Config
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
	if strings.TrimSpace(cfg.ClientID) == "" {
		add("clientID", "required")
	}
	if cfg.ClientSecret == "" {
		add("clientSecret", "required")
	}
	if cfg.GraphAPIVersion == "" {
		cfg.GraphAPIVersion = DefaultGraphAPIVersion
	} else if !versionRE.MatchString(cfg.GraphAPIVersion) {
		add("graphAPIVersion", "must be a Graph API version such as %s", DefaultGraphAPIVersion)
	}
	if cfg.Scopes == nil {
		cfg.Scopes = DefaultScopes()
	}
	for i, s := range cfg.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\,") {
			add(fmt.Sprintf("scopes[%d]", i), "must be a permission name (no spaces, commas or quotes)")
		}
	}
	if cfg.PKCE == nil {
		on := true
		cfg.PKCE = &on
	}
	for _, f := range []struct {
		path string
		v    *string
		def  string
	}{{"facebookURL", &cfg.FacebookURL, DefaultFacebookURL}, {"graphURL", &cfg.GraphURL, DefaultGraphURL}} {
		if *f.v == "" {
			*f.v = f.def
		} else if msg := checkRoot(*f.v); msg != "" {
			add(f.path, "%s", msg)
		}
		*f.v = strings.TrimSuffix(*f.v, "/")
	}
	// Facebook reports only confirmed addresses: every email is verified,
	// so a mapped email keeps its flag only when it is the reported one.
	m, mprobs := mapping.Compile(cfg.Config, mapping.Options{})
	probs = append(probs, mprobs...)
	return cfg, m, probs
}
