package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration file with defaults applied. See
// docs/configuration.md for every key.
type Config struct {
	// Issuer is the OpenID Connect issuer identifier: an absolute http(s)
	// URL without query or fragment.
	Issuer     string            `yaml:"issuer" json:"issuer"`
	HTTP       HTTP              `yaml:"http" json:"http"`
	Storage    Storage           `yaml:"storage" json:"storage"`
	Ephemeral  Ephemeral         `yaml:"ephemeral" json:"ephemeral"`
	Keys       Keys              `yaml:"keys" json:"keys"`
	Tokens     Tokens            `yaml:"tokens" json:"tokens"`
	Outbound   Outbound          `yaml:"outbound" json:"outbound"`
	Clients    []ClientConfig    `yaml:"clients" json:"clients"`
	Connectors []ConnectorConfig `yaml:"connectors" json:"connectors"`
	Logging    Logging           `yaml:"logging" json:"logging"`
	Limits     Limits            `yaml:"limits" json:"limits"`
	MFA        MFA               `yaml:"mfa" json:"mfa"`
	Notify     Notify            `yaml:"notify" json:"notify"`     // notify.go
	Accounts   Accounts          `yaml:"accounts" json:"accounts"` // notify.go
	Demo       Demo              `yaml:"demo" json:"demo"`
	Admin      Admin             `yaml:"admin" json:"admin"`
	UI         UI                `yaml:"ui" json:"ui"` // ui.go

	// BaseDir is the directory relative paths in the file were resolved
	// against: the config file's directory for Load, the baseDir argument
	// for Parse.
	BaseDir string `yaml:"-" json:"baseDir"`
}

// HTTP is the public listener.
type HTTP struct {
	Address string `yaml:"address" json:"address"`
	TLS     TLS    `yaml:"tls" json:"tls"`
	// TrustedProxies are the networks whose X-Forwarded-For and
	// X-Forwarded-Proto headers are believed.
	TrustedProxies    []netip.Prefix `yaml:"trustedProxies" json:"trustedProxies"`
	ReadHeaderTimeout time.Duration  `yaml:"readHeaderTimeout" json:"readHeaderTimeout"`
	ReadTimeout       time.Duration  `yaml:"readTimeout" json:"readTimeout"`
	WriteTimeout      time.Duration  `yaml:"writeTimeout" json:"writeTimeout"`
	IdleTimeout       time.Duration  `yaml:"idleTimeout" json:"idleTimeout"`
	ShutdownTimeout   time.Duration  `yaml:"shutdownTimeout" json:"shutdownTimeout"`
	MaxBodyBytes      ByteSize       `yaml:"maxBodyBytes" json:"maxBodyBytes"`
}

// TLS names a certificate and key file (PEM). Both empty: plain HTTP.
type TLS struct {
	Cert string `yaml:"cert" json:"cert"`
	Key  string `yaml:"key" json:"key"`
}

// Enabled reports whether a certificate is configured.
func (t TLS) Enabled() bool { return t.Cert != "" }

// Storage is the durable store: exactly one of SQLite and Postgres is set.
type Storage struct {
	SQLite   *SQLite   `yaml:"sqlite" json:"sqlite,omitempty"`
	Postgres *Postgres `yaml:"postgres" json:"postgres,omitempty"`
}

// SQLite is an embedded SQLite database file.
type SQLite struct {
	// Path is the database file; relative paths in the file are resolved
	// against the config file's directory.
	Path string `yaml:"path" json:"path"`
}

// Postgres is a PostgreSQL database.
type Postgres struct {
	// DSN is a connection URL or key=value string; it usually contains a
	// password, hence Secret.
	DSN Secret `yaml:"dsn" json:"dsn"`
}

// Ephemeral is the store for short-lived data: exactly one of Redis and SQL
// is set.
type Ephemeral struct {
	Redis *Redis `yaml:"redis" json:"redis,omitempty"`
	// SQL means the durable SQL database also holds ephemeral data.
	SQL *EphemeralSQL `yaml:"sql" json:"sql,omitempty"`
	// KeyPrefix is prepended to every key of the ephemeral store, so that
	// several deployments can share one Redis.
	KeyPrefix string `yaml:"keyPrefix" json:"keyPrefix"`
}

// EphemeralSQL selects the SQL database as the ephemeral store. It has no
// settings yet.
type EphemeralSQL struct{}

// Redis is a Redis standalone server, Sentinel group (MasterName set) or
// Cluster (several Addrs, no MasterName), as go-redis's UniversalClient
// understands them.
type Redis struct {
	Addrs      []string `yaml:"addrs" json:"addrs"`
	Username   string   `yaml:"username" json:"username,omitempty"`
	Password   Secret   `yaml:"password" json:"password,omitempty"`
	DB         int      `yaml:"db" json:"db"`
	MasterName string   `yaml:"masterName" json:"masterName,omitempty"`
	TLS        RedisTLS `yaml:"tls" json:"tls"`
}

// RedisTLS configures TLS to Redis. There is deliberately no way to skip
// certificate verification; give CAFile for a private CA.
type RedisTLS struct {
	Enabled    bool   `yaml:"enabled" json:"enabled"`
	CAFile     string `yaml:"caFile" json:"caFile,omitempty"`
	ServerName string `yaml:"serverName" json:"serverName,omitempty"`
}

// Keys configures signing keys and the key-encryption keys.
type Keys struct {
	// Algorithms are the signing algorithms to keep keys for (RS256, ES256,
	// EdDSA); RS256 is always among them.
	Algorithms     []string      `yaml:"algorithms" json:"algorithms"`
	RotationPeriod time.Duration `yaml:"rotationPeriod" json:"rotationPeriod"`
	// PrePublish is how long a new key is in the JWKS before it signs.
	PrePublish time.Duration `yaml:"prePublish" json:"prePublish"`
	// CheckInterval is how often each replica checks whether a rotation
	// is due and whether another replica changed the keys.
	CheckInterval time.Duration `yaml:"checkInterval" json:"checkInterval"`
	// RetireAfter is how long a replaced key stays in the JWKS; 0 means the
	// caller derives it from the token lifetimes.
	RetireAfter time.Duration `yaml:"retireAfter" json:"retireAfter"`
	// EncryptionKeys encrypt secrets at rest (AES-256-GCM). The first one
	// encrypts; all decrypt.
	EncryptionKeys []EncryptionKey `yaml:"encryptionKeys" json:"encryptionKeys"`
}

// EncryptionKey is one key-encryption key.
type EncryptionKey struct {
	ID string `yaml:"id" json:"id"`
	// Key is exactly 32 bytes (given in the file as base64).
	Key SecretBytes `yaml:"key" json:"key"`
}

// Tokens are the lifetimes of what the broker issues.
type Tokens struct {
	IDTokenTTL     time.Duration `yaml:"idTokenTTL" json:"idTokenTTL"`
	AccessTokenTTL time.Duration `yaml:"accessTokenTTL" json:"accessTokenTTL"`
	CodeTTL        time.Duration `yaml:"codeTTL" json:"codeTTL"`
	AuthRequestTTL time.Duration `yaml:"authRequestTTL" json:"authRequestTTL"`
	// RefreshGraceWindow is how long a rotated refresh token still returns
	// the same successor (0 allowed: no grace).
	RefreshGraceWindow time.Duration `yaml:"refreshGraceWindow" json:"refreshGraceWindow"`
	RefreshIdleTTL     time.Duration `yaml:"refreshIdleTTL" json:"refreshIdleTTL"`
	RefreshAbsoluteTTL time.Duration `yaml:"refreshAbsoluteTTL" json:"refreshAbsoluteTTL"`
}

// Outbound configures the hardened HTTP client (internal/httpclient).
type Outbound struct {
	// AllowedNetworks may be reached although private, loopback or
	// link-local.
	AllowedNetworks []netip.Prefix `yaml:"allowedNetworks" json:"allowedNetworks"`
	Timeout         time.Duration  `yaml:"timeout" json:"timeout"`
	MaxBodyBytes    ByteSize       `yaml:"maxBodyBytes" json:"maxBodyBytes"`
}

// Limits are the rate limits and the account lockout (internal/ratelimit).
type Limits struct {
	LoginPerIP           LimitRule `yaml:"loginPerIP" json:"loginPerIP"`
	LoginPerAccount      LimitRule `yaml:"loginPerAccount" json:"loginPerAccount"`
	FactorPerAccount     LimitRule `yaml:"factorPerAccount" json:"factorPerAccount"`
	TokenPerClient       LimitRule `yaml:"tokenPerClient" json:"tokenPerClient"`
	RecoveryPerAccount   LimitRule `yaml:"recoveryPerAccount" json:"recoveryPerAccount"`
	RegistrationPerIP    LimitRule `yaml:"registrationPerIP" json:"registrationPerIP"`
	EnrollmentPerAccount LimitRule `yaml:"enrollmentPerAccount" json:"enrollmentPerAccount"`
	OTPSendPerAccount    LimitRule `yaml:"otpSendPerAccount" json:"otpSendPerAccount"`
	RecoveryPerIP        LimitRule `yaml:"recoveryPerIP" json:"recoveryPerIP"`
	// RegistrationPerAddress bounds self-registrations per e-mail address.
	RegistrationPerAddress LimitRule `yaml:"registrationPerAddress" json:"registrationPerAddress"`
	Lockout                Lockout   `yaml:"lockout" json:"lockout"`
}

// LimitRule allows Limit events per Window (a sliding estimate); Limit 0
// turns the rule off. FailOpen lets requests through when the store is
// down (otherwise they get 503).
type LimitRule struct {
	Limit    int           `yaml:"limit" json:"limit"`
	Window   time.Duration `yaml:"window" json:"window"`
	FailOpen bool          `yaml:"failOpen" json:"failOpen"`
}

// Lockout locks an account after Threshold consecutive failed logins for
// BaseDelay, doubling per further failure up to MaxDelay; the count resets
// after QuietPeriod without failures. Threshold 0 turns it off.
type Lockout struct {
	Threshold   int           `yaml:"threshold" json:"threshold"`
	BaseDelay   time.Duration `yaml:"baseDelay" json:"baseDelay"`
	MaxDelay    time.Duration `yaml:"maxDelay" json:"maxDelay"`
	QuietPeriod time.Duration `yaml:"quietPeriod" json:"quietPeriod"`
}

// Logging configures log/slog.
type Logging struct {
	Level  string `yaml:"level" json:"level"`
	Format string `yaml:"format" json:"format"`
}

// Demo configures the quickstart's conveniences.
// Admin is the admin API and console listener.
type Admin struct {
	// Enabled starts the admin listener with `latchkey serve`.
	Enabled bool `yaml:"enabled" json:"enabled"`
	// Listen is the admin listener's address (host:port).
	Listen string `yaml:"listen" json:"listen"`
	// RateLimit is the request limit per API key.
	RateLimit LimitRule `yaml:"rateLimit" json:"rateLimit"`
	// URL is the admin listener's external base URL (the console's
	// redirect URI is URL + "/admin/callback"); empty: http:// + the
	// address it listens on.
	URL string `yaml:"url" json:"url"`
	// Console is the admin console's sign-in.
	Console AdminConsole `yaml:"console" json:"console"`
}

// AdminConsole says who may sign in to the admin console.
type AdminConsole struct {
	// Group is the group an admin must be in.
	Group string `yaml:"group" json:"group"`
	// RequireMFA asks for acr urn:latchkey:acr:mfa and refuses less.
	RequireMFA bool `yaml:"requireMFA" json:"requireMFA"`
}

type Demo struct {
	// CreateUser creates the user "demo" with a random password (printed
	// once) on the first start with an empty user table.
	CreateUser bool `yaml:"createUser" json:"createUser"`
}

// ClientConfig is a client (relying party) managed by the config file. Keys
// are RFC 7591 / OpenID registration names (CONTRACTS.md).
type ClientConfig struct {
	ID   string `yaml:"client_id" json:"client_id"`
	Name string `yaml:"client_name" json:"client_name,omitempty"`
	// Secret is the client secret (usually an ${ENV} or file: reference).
	Secret                  Secret          `yaml:"client_secret" json:"client_secret,omitempty"`
	Public                  bool            `yaml:"public" json:"public,omitempty"`
	RedirectURIs            []string        `yaml:"redirect_uris" json:"redirect_uris"`
	PostLogoutRedirectURIs  []string        `yaml:"post_logout_redirect_uris" json:"post_logout_redirect_uris,omitempty"`
	GrantTypes              []string        `yaml:"grant_types" json:"grant_types"`
	ResponseTypes           []string        `yaml:"response_types" json:"response_types"`
	TokenEndpointAuthMethod string          `yaml:"token_endpoint_auth_method" json:"token_endpoint_auth_method,omitempty"`
	ApplicationType         string          `yaml:"application_type" json:"application_type"`
	IDTokenSignedAlg        string          `yaml:"id_token_signed_response_alg" json:"id_token_signed_response_alg"`
	RequirePKCE             bool            `yaml:"require_pkce" json:"require_pkce"`
	FirstParty              bool            `yaml:"first_party" json:"first_party"`
	Audience                []string        `yaml:"audience" json:"audience"`
	AllowedConnectors       []string        `yaml:"allowed_connectors" json:"allowed_connectors,omitempty"`
	Scope                   string          `yaml:"scope" json:"scope,omitempty"`
	SessionBoundRefresh     bool            `yaml:"session_bound_refresh_tokens" json:"session_bound_refresh_tokens,omitempty"`
	BackchannelLogoutURI    string          `yaml:"backchannel_logout_uri" json:"backchannel_logout_uri,omitempty"`
	FrontchannelLogoutURI   string          `yaml:"frontchannel_logout_uri" json:"frontchannel_logout_uri,omitempty"`
	JWKS                    json.RawMessage `yaml:"jwks" json:"jwks,omitempty"`
	JWKSURI                 string          `yaml:"jwks_uri" json:"jwks_uri,omitempty"`
}

// ConnectorConfig is an upstream connector managed by the config file.
type ConnectorConfig struct {
	ID   string `yaml:"id" json:"id"`
	Type string `yaml:"type" json:"type"`
	Name string `yaml:"name" json:"name"`
	// Config is the type-specific mapping, validated by the connector type
	// (see WithConnectorTypes).
	Config ConnectorSettings `yaml:"config" json:"config"`
}

// ConnectorValidator checks one connector type's configuration (the
// connector's `config` mapping as a JSON object). Problem paths it returns
// are relative to that mapping ("clientID", "scopes[1]", or "" for the
// mapping itself); Parse prefixes them with "connectors[i].config".
type ConnectorValidator func(config json.RawMessage) []Problem

// Option changes how Parse and Load work.
type Option func(*options)

type options struct {
	// connectorTypes is nil when no set of known types was given.
	connectorTypes map[string]ConnectorValidator
}

// WithConnectorTypes names the known connector types: a connector of any
// other type is a problem. Each type's validator (nil for none) checks the
// connector's config mapping.
func WithConnectorTypes(types map[string]ConnectorValidator) Option {
	return func(o *options) {
		o.connectorTypes = make(map[string]ConnectorValidator, len(types))
		for k, v := range types {
			o.connectorTypes[k] = v
		}
	}
}

func (o options) knownTypes() string {
	names := make([]string, 0, len(o.connectorTypes))
	for k := range o.connectorTypes {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// maxConfigBytes bounds the config file Load reads.
const maxConfigBytes = 16 << 20

// Load reads, expands, decodes, defaults and validates the config file at
// path. Relative paths in it are relative to the file's directory. env looks
// up environment variables (os.LookupEnv in production; nil means none are
// set). A missing or unreadable file is a plain error wrapping the
// os error; an invalid file is a *Problems.
func Load(path string, env func(string) (string, bool), opts ...Option) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	f, err := os.Open(abs)
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	defer func() { _ = f.Close() }()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read config file %s: %w", abs, err)
	}
	if len(data) > maxConfigBytes {
		return nil, fmt.Errorf("read config file %s: larger than %d bytes", abs, maxConfigBytes)
	}
	return Parse(data, env, filepath.Dir(abs), opts...)
}

// Parse is Load on bytes already read. baseDir is the directory relative
// paths are resolved against ("" leaves them relative to the working
// directory). On any problem it returns a nil Config and a *Problems listing
// all of them.
func Parse(data []byte, env func(string) (string, bool), baseDir string, opts ...Option) (*Config, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}

	root, syntax := parseYAML(data)
	if syntax != nil {
		return nil, &Problems{List: []Problem{*syntax}}
	}

	d := newDecoder()
	cfg := &Config{}
	if root != nil {
		expand(d, root, "", env, baseDir)
		d.decodeDocument(root, cfg)
	}
	if d.exhausted {
		return nil, &Problems{List: sortProblems(d.problems)}
	}
	cfg.BaseDir = baseDir
	applyDefaults(cfg, d.present)
	resolvePaths(cfg, baseDir)

	list := d.problems
	failed := make(map[string]bool, len(list))
	for _, p := range list {
		failed[p.Path] = true
	}
	for _, p := range validate(cfg, o, d.refs) {
		// A key that failed to decode keeps its default or zero value;
		// checking that value would only repeat the problem.
		if underFailure(p.Path, failed) {
			continue
		}
		list = append(list, located{Problem: p, pos: d.positionOf(p.Path)})
	}
	if len(list) > 0 {
		return nil, &Problems{List: sortProblems(list)}
	}
	return cfg, nil
}

// underFailure reports whether path or one of its parents is in failed.
func underFailure(path string, failed map[string]bool) bool {
	for {
		if failed[path] {
			return true
		}
		if path == "" {
			return false
		}
		path = parentPath(path)
	}
}

// parseYAML parses exactly one YAML document. It returns a nil root for an
// empty document. yaml.v3 is not ours: should it panic on some input, that
// becomes a problem rather than a crash.
func parseYAML(data []byte) (root *yaml.Node, problem *Problem) {
	defer func() {
		if r := recover(); r != nil {
			root, problem = nil, &Problem{Message: fmt.Sprintf("invalid YAML: parser failed: %v", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, &Problem{Message: syntaxMessage(err)}
	}
	for {
		var next yaml.Node
		err := dec.Decode(&next)
		switch {
		case errors.Is(err, io.EOF):
			return rootOf(&doc), nil
		case err != nil:
			return nil, &Problem{Message: syntaxMessage(err)}
		case len(next.Content) > 0:
			return nil, &Problem{Message: fmt.Sprintf("invalid YAML: line %d: a second document; the config file holds exactly one", next.Line)}
		}
	}
}

// rootOf returns a document's content node, or nil for an empty document.
func rootOf(doc *yaml.Node) *yaml.Node {
	if doc.Kind != yaml.DocumentNode {
		return doc
	}
	if len(doc.Content) == 0 {
		return nil
	}
	return doc.Content[0]
}

func syntaxMessage(err error) string {
	return "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")
}
