package ldap

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/mapping"
)

// Defaults applied where the config leaves a key out, and limits.
const (
	DefaultIDAttr         = "entryUUID"
	DefaultUsernameAttr   = "uid"
	DefaultEmailAttr      = "mail"
	DefaultNameAttr       = "cn"
	DefaultGroupNameAttr  = "cn"
	DefaultConnectTimeout = 5 * time.Second
	DefaultRequestTimeout = 10 * time.Second
	DefaultMaxConnections = 5
	DefaultMaxIdleTime    = time.Minute
	MaxMaxConnections     = 100
)

const (
	maxTimeout             = 5 * time.Minute
	maxIdleTimeLimit       = time.Hour
	maxExtraAttributes     = 32
	maxAllowedGroupsLength = 1000
	placeholderUsername    = "{username}"
	placeholderDN          = "{dn}"
	attrDN                 = "dn" // as an attribute name: the entry's DN
	scopeSub, scopeOne     = "sub", "one"
	reservedClaimDN        = "dn"
	reservedClaimGroups    = "groups"
)

// Config is the `config` object of an ldap connector. Keys are camelCase.
type Config struct {
	// URL is ldap://host[:port] or ldaps://host[:port] (default ports 389
	// and 636). No path, query or credentials.
	URL string `json:"url"`
	// StartTLS upgrades an ldap:// connection with the StartTLS extended
	// operation before anything else is sent.
	StartTLS bool `json:"startTLS"`
	// InsecureNoTLS allows ldap:// without StartTLS: passwords then cross
	// the network in clear text. For a directory on the same host or in
	// tests only. There is no switch to skip certificate verification.
	InsecureNoTLS bool `json:"insecureNoTLS"`
	// RootCA is the absolute path of a PEM file with the CA certificates
	// that may sign the server's certificate, read when the connector is
	// opened; RootCAData is the PEM text itself. Neither: the system roots.
	RootCA     string `json:"rootCA"`
	RootCAData string `json:"rootCAData"`

	// BindDN and BindPassword are the service account that searches for
	// users and groups. Both empty: searches are anonymous.
	BindDN       string `json:"bindDN"`
	BindPassword string `json:"bindPassword"`

	UserSearch  UserSearch   `json:"userSearch"`
	GroupSearch *GroupSearch `json:"groupSearch"`

	// AllowedGroups, when set, refuses users who are in none of these
	// groups (names as the group search finds them, compared without
	// regard to case). Requires groupSearch.
	AllowedGroups []string `json:"allowedGroups"`

	// EmailVerified is what email_verified says for the directory's
	// addresses (default true: the directory is the authority).
	EmailVerified *bool `json:"emailVerified"`

	// ConnectTimeout bounds the TCP connect and the TLS handshake,
	// RequestTimeout each LDAP operation (bind, search). Go durations.
	ConnectTimeout string `json:"connectTimeout"`
	RequestTimeout string `json:"requestTimeout"`
	// MaxConnections bounds the pool of service-account connections.
	MaxConnections int `json:"maxConnections"`
	// MaxIdleTime: a pooled connection idle longer is closed, not reused
	// (servers and firewalls drop idle connections).
	MaxIdleTime string `json:"maxIdleTime"`

	mapping.Config
}

// UserSearch finds the entry of the user who signs in.
type UserSearch struct {
	// BaseDN is where the search starts.
	BaseDN string `json:"baseDN"`
	// Filter must contain {username}, replaced by the entered username
	// escaped for LDAP filters (RFC 4515), e.g.
	// (&(objectClass=inetOrgPerson)(uid={username})).
	Filter string `json:"filter"`
	// Scope is sub (default: the whole subtree) or one (direct children).
	Scope string `json:"scope"`
	// IDAttr is the attribute whose value is the stable subject (default
	// entryUUID; objectGUID for Active Directory; "dn" for the DN). An
	// entry without it is identified by its DN.
	IDAttr string `json:"idAttr"`
	// UsernameAttr, EmailAttr and NameAttr name the attributes for the
	// username (default uid), email (mail) and display name (cn).
	UsernameAttr string `json:"usernameAttr"`
	EmailAttr    string `json:"emailAttr"`
	NameAttr     string `json:"nameAttr"`
	// ExtraAttributes are read too, for claimMapping and rules.
	ExtraAttributes []string `json:"extraAttributes"`
}

// GroupSearch finds the groups of the signed-in user.
type GroupSearch struct {
	BaseDN string `json:"baseDN"`
	// Filter must contain {dn} (the user's DN) or {username} (the user's
	// usernameAttr value from the directory), each escaped, e.g.
	// (&(objectClass=groupOfNames)(member={dn})).
	Filter string `json:"filter"`
	// Scope is sub (default) or one.
	Scope string `json:"scope"`
	// NameAttr is the attribute that names a group (default cn; "dn" for
	// the group's DN).
	NameAttr string `json:"nameAttr"`
}

// String leaves the bind password out, so %v does not print it.
func (c Config) String() string {
	return fmt.Sprintf("ldap.Config{URL: %q, BindDN: %q, BindPassword: %s}", c.URL, c.BindDN, redacted(c.BindPassword))
}

// GoString is String, for %#v.
func (c Config) GoString() string { return c.String() }

// LogValue leaves the bind password out of structured logs.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("url", c.URL), slog.String("bind_dn", c.BindDN))
}

func redacted(s string) string {
	if s == "" {
		return `""`
	}
	return "REDACTED"
}

// settings is a Config checked, with defaults applied and durations
// parsed.
type settings struct {
	cfg            Config
	scheme         string // ldap or ldaps
	hostPort       string
	host           string
	userScope      int
	groupScope     int
	connectTimeout time.Duration
	requestTimeout time.Duration
	maxIdleTime    time.Duration
	emailVerified  bool
}

var attrName = regexp.MustCompile(`^(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+)(?:;[A-Za-z0-9-]+)*$`)

// decodeConfig decodes and checks raw; it returns the settings with
// defaults applied, the compiled mapping and every problem. It reads no
// files (rootCA is read by Open).
func decodeConfig(raw json.RawMessage) (settings, *mapping.Mapper, []providers.FieldProblem) {
	var cfg Config
	probs := providers.DecodeConfig(raw, &cfg)
	add := func(path, format string, args ...any) {
		probs = append(probs, providers.FieldProblem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	s := settings{}

	// Connection and TLS.
	if cfg.URL == "" {
		add("url", "required")
	} else if scheme, hostPort, host, msg := parseURL(cfg.URL); msg != "" {
		add("url", "%s", msg)
	} else {
		s.scheme, s.hostPort, s.host = scheme, hostPort, host
		switch {
		case scheme == "ldaps" && cfg.StartTLS:
			add("startTLS", "ldaps:// is TLS from the start: startTLS is for ldap:// URLs")
		case scheme == "ldaps" && cfg.InsecureNoTLS, cfg.StartTLS && cfg.InsecureNoTLS:
			add("insecureNoTLS", "contradicts TLS (ldaps:// or startTLS)")
		case scheme == "ldap" && !cfg.StartTLS && !cfg.InsecureNoTLS:
			add("url", "ldap:// without TLS sends passwords in clear text: use ldaps://, set startTLS: true, or (a directory on this host, tests) insecureNoTLS: true")
		}
	}
	if cfg.RootCA != "" && cfg.RootCAData != "" {
		add("rootCAData", "set rootCA or rootCAData, not both")
	}
	if cfg.RootCA != "" && !filepath.IsAbs(cfg.RootCA) {
		add("rootCA", "must be an absolute path")
	}
	if cfg.RootCAData != "" {
		if _, err := certPool([]byte(cfg.RootCAData)); err != nil {
			add("rootCAData", "%v", err)
		}
	}
	if cfg.InsecureNoTLS && (cfg.RootCA != "" || cfg.RootCAData != "") {
		add("insecureNoTLS", "a CA is configured but TLS is off")
	}

	// Service account.
	switch {
	case cfg.BindDN == "" && cfg.BindPassword != "":
		add("bindDN", "required with bindPassword")
	case cfg.BindDN != "" && cfg.BindPassword == "":
		add("bindPassword", "required with bindDN (an empty password would be an unauthenticated bind)")
	}
	if cfg.BindDN != "" {
		if _, err := goldap.ParseDN(cfg.BindDN); err != nil {
			add("bindDN", "not a DN: %v", err)
		}
	}

	// User search.
	us := &cfg.UserSearch
	checkBaseDN("userSearch.baseDN", us.BaseDN, add)
	checkFilter("userSearch.filter", us.Filter, []string{placeholderUsername}, []string{placeholderUsername}, add)
	s.userScope = checkScope("userSearch.scope", us.Scope, add)
	setDefault(&us.IDAttr, DefaultIDAttr)
	setDefault(&us.UsernameAttr, DefaultUsernameAttr)
	setDefault(&us.EmailAttr, DefaultEmailAttr)
	setDefault(&us.NameAttr, DefaultNameAttr)
	checkAttr("userSearch.idAttr", us.IDAttr, true, add)
	checkAttr("userSearch.usernameAttr", us.UsernameAttr, false, add)
	checkAttr("userSearch.emailAttr", us.EmailAttr, false, add)
	checkAttr("userSearch.nameAttr", us.NameAttr, false, add)
	if len(us.ExtraAttributes) > maxExtraAttributes {
		add("userSearch.extraAttributes", "at most %d attributes", maxExtraAttributes)
	}
	for i, a := range us.ExtraAttributes {
		path := fmt.Sprintf("userSearch.extraAttributes[%d]", i)
		checkAttr(path, a, false, add)
		if strings.EqualFold(a, reservedClaimDN) || strings.EqualFold(a, reservedClaimGroups) {
			add(path, "%q is reserved (claims.dn and claims.groups are set by the connector)", a)
		}
	}

	// Group search.
	if gs := cfg.GroupSearch; gs != nil {
		checkBaseDN("groupSearch.baseDN", gs.BaseDN, add)
		checkFilter("groupSearch.filter", gs.Filter, []string{placeholderDN, placeholderUsername}, nil, add)
		s.groupScope = checkScope("groupSearch.scope", gs.Scope, add)
		setDefault(&gs.NameAttr, DefaultGroupNameAttr)
		checkAttr("groupSearch.nameAttr", gs.NameAttr, true, add)
	}
	if len(cfg.AllowedGroups) > 0 && cfg.GroupSearch == nil {
		add("allowedGroups", "requires groupSearch")
	}
	if len(cfg.AllowedGroups) > maxAllowedGroupsLength {
		add("allowedGroups", "at most %d groups", maxAllowedGroupsLength)
	}
	for i, g := range cfg.AllowedGroups {
		if strings.TrimSpace(g) == "" {
			add(fmt.Sprintf("allowedGroups[%d]", i), "must not be empty")
		}
	}

	s.emailVerified = cfg.EmailVerified == nil || *cfg.EmailVerified

	// Limits.
	s.connectTimeout = checkDuration("connectTimeout", cfg.ConnectTimeout, DefaultConnectTimeout, maxTimeout, add)
	s.requestTimeout = checkDuration("requestTimeout", cfg.RequestTimeout, DefaultRequestTimeout, maxTimeout, add)
	s.maxIdleTime = checkDuration("maxIdleTime", cfg.MaxIdleTime, DefaultMaxIdleTime, maxIdleTimeLimit, add)
	switch {
	case cfg.MaxConnections == 0:
		cfg.MaxConnections = DefaultMaxConnections
	case cfg.MaxConnections < 0 || cfg.MaxConnections > MaxMaxConnections:
		add("maxConnections", "must be between 1 and %d", MaxMaxConnections)
	}

	// The directory is the authority for its addresses (emailVerified),
	// and an address claimMapping builds from its attributes is the
	// admin's choice: it keeps the connector's emailVerified.
	m, mprobs := mapping.Compile(cfg.Config, mapping.Options{TrustEmail: s.emailVerified})
	probs = append(probs, mprobs...)
	s.cfg = cfg
	return s, m, probs
}

// parseURL checks an ldap:// or ldaps:// URL and returns its scheme,
// host:port (with the default port filled in) and host, or a message.
func parseURL(raw string) (scheme, hostPort, host, msg string) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", "", "not a URL"
	}
	scheme = strings.ToLower(u.Scheme)
	var port string
	switch scheme {
	case "ldap":
		port = "389"
	case "ldaps":
		port = "636"
	default:
		return "", "", "", "must be an ldap:// or ldaps:// URL"
	}
	switch {
	case u.Opaque != "" || u.Host == "":
		return "", "", "", "must name a host: ldap://host[:port] or ldaps://host[:port]"
	case u.User != nil:
		return "", "", "", "must not hold credentials (use bindDN and bindPassword)"
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "", u.ForceQuery:
		return "", "", "", "must not have a path, query or fragment (use userSearch for the base DN)"
	}
	host = u.Hostname()
	if host == "" {
		return "", "", "", "must name a host"
	}
	if p := u.Port(); p != "" {
		port = p
	} else if strings.HasSuffix(u.Host, ":") {
		return "", "", "", "empty port"
	}
	return scheme, net.JoinHostPort(host, port), host, ""
}

func setDefault(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

func checkBaseDN(path, dn string, add func(string, string, ...any)) {
	if strings.TrimSpace(dn) == "" {
		add(path, "required")
		return
	}
	if _, err := goldap.ParseDN(dn); err != nil {
		add(path, "not a DN: %v", err)
	}
}

// checkFilter checks a filter template: only the allowed placeholders;
// every one in required, or with required nil at least one placeholder;
// and it must compile once the placeholders are filled in.
func checkFilter(path, tmpl string, allowed, required []string, add func(string, string, ...any)) {
	if strings.TrimSpace(tmpl) == "" {
		add(path, "required")
		return
	}
	for _, p := range placeholderRE.FindAllString(tmpl, -1) {
		known := false
		for _, a := range allowed {
			known = known || p == a
		}
		if !known {
			add(path, "unknown placeholder %s (use %s)", p, strings.Join(allowed, " or "))
			return
		}
	}
	for _, r := range required {
		if !strings.Contains(tmpl, r) {
			add(path, "must contain %s", r)
			return
		}
	}
	if required == nil && !placeholderRE.MatchString(tmpl) {
		add(path, "must contain %s: without it every user gets the same groups", strings.Join(allowed, " or "))
		return
	}
	sample := expandFilter(tmpl, map[string]string{placeholderUsername: "x", placeholderDN: "cn=x"})
	if _, err := goldap.CompileFilter(sample); err != nil {
		add(path, "not an LDAP filter: %v", err)
	}
}

var placeholderRE = regexp.MustCompile(`\{[A-Za-z]+\}`)

// expandFilter replaces each placeholder of tmpl by its value escaped for
// an LDAP filter (RFC 4515: ( ) * \ NUL and every non-ASCII byte become
// \xx), so no value can change the filter's structure.
func expandFilter(tmpl string, values map[string]string) string {
	return placeholderRE.ReplaceAllStringFunc(tmpl, func(p string) string {
		v, ok := values[p]
		if !ok {
			return p
		}
		return goldap.EscapeFilter(v)
	})
}

// checkScope returns the go-ldap scope for s (default sub).
func checkScope(path, s string, add func(string, string, ...any)) int {
	switch s {
	case "", scopeSub:
		return goldap.ScopeWholeSubtree
	case scopeOne:
		return goldap.ScopeSingleLevel
	default:
		add(path, "must be sub or one")
		return goldap.ScopeWholeSubtree
	}
}

func checkAttr(path, a string, dnAllowed bool, add func(string, string, ...any)) {
	if dnAllowed && strings.EqualFold(a, attrDN) {
		return
	}
	if !attrName.MatchString(a) {
		add(path, "not an attribute name")
	}
}

func checkDuration(path, s string, def, limit time.Duration, add func(string, string, ...any)) time.Duration {
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		add(path, "must be a duration such as 5s")
		return def
	}
	if d <= 0 || d > limit {
		add(path, "must be more than 0 and at most %s", limit)
		return def
	}
	return d
}

// certPool parses PEM certificates; at least one is required.
func certPool(pemData []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		return nil, fmt.Errorf("no PEM certificate found")
	}
	return pool, nil
}
