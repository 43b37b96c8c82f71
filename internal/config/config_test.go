package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/storage"
)

// key32 is base64 of the bytes 0..31; key32URL is unpadded base64url of
// 100..131.
const (
	key32    = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	key32URL = "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1-f4CBgoM"
	key16    = "AAECAwQFBgcICQoLDA0ODw=="
)

func byteRange(from, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(from + i)
	}
	return b
}

// minimal is the smallest valid configuration.
const minimal = `issuer: https://id.example.com
keys:
  encryptionKeys:
    - {id: k1, key: ` + key32 + `}
`

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// writeFiles creates files (name -> content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func mustParse(t *testing.T, src string, env map[string]string, dir string, opts ...Option) *Config {
	t.Helper()
	cfg, err := Parse([]byte(src), envOf(env), dir, opts...)
	if err != nil {
		t.Fatalf("Parse: unexpected error:\n%v", err)
	}
	if cfg == nil {
		t.Fatal("Parse: nil config without error")
	}
	return cfg
}

func problemsOf(t *testing.T, err error) []Problem {
	t.Helper()
	var p *Problems
	if !errors.As(err, &p) {
		t.Fatalf("error is %T (%v), want *Problems", err, err)
	}
	return p.List
}

func assertProblems(t *testing.T, got, want []Problem) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems:\ngot:\n%s\nwant:\n%s", (&Problems{List: got}).Error(), (&Problems{List: want}).Error())
	}
}

func boolp(b bool) *bool { return &b }

// TestParseMinimalDefaults asserts every default of a minimal file.
func TestParseMinimalDefaults(t *testing.T) {
	cfg := mustParse(t, minimal, nil, "/etc/latchkey")
	want := &Config{
		Issuer: "https://id.example.com",
		HTTP: HTTP{
			Address:           "127.0.0.1:5556",
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       15 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       120 * time.Second,
			ShutdownTimeout:   20 * time.Second,
			MaxBodyBytes:      1 << 20,
		},
		Storage:   Storage{SQLite: &SQLite{Path: "/etc/latchkey/data/latchkey.db"}},
		Ephemeral: Ephemeral{SQL: &EphemeralSQL{}, KeyPrefix: "latchkey:"},
		Keys: Keys{
			Algorithms:     []string{"RS256", "ES256"},
			RotationPeriod: 720 * time.Hour,
			PrePublish:     24 * time.Hour,
			CheckInterval:  time.Minute,
			RetireAfter:    0,
			EncryptionKeys: []EncryptionKey{{ID: "k1", Key: byteRange(0, 32)}},
		},
		Tokens: Tokens{
			IDTokenTTL:         time.Hour,
			AccessTokenTTL:     10 * time.Minute,
			CodeTTL:            60 * time.Second,
			AuthRequestTTL:     10 * time.Minute,
			RefreshGraceWindow: 2 * time.Second,
			RefreshIdleTTL:     720 * time.Hour,
			RefreshAbsoluteTTL: 2160 * time.Hour,
		},
		Outbound: Outbound{Timeout: 10 * time.Second, MaxBodyBytes: 1 << 20},
		Logging:  Logging{Level: "info", Format: "text"},
		Limits:   defaultLimits(),
		MFA:      defaultMFA(),
		Admin:    defaultAdmin(),
		Accounts: Accounts{Registration: Registration{RequireVerifiedEmail: true}},
		BaseDir:  "/etc/latchkey",
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("config:\ngot  %+v\nwant %+v", cfg, want)
	}
}

// fullConfig sets every key to a value other than its default.
const fullConfig = `
issuer: https://id.example.com
http:
  address: 0.0.0.0:8443
  tls:
    cert: tls/cert.pem
    key: tls/key.pem
  trustedProxies: [10.0.0.0/8, "fd00::/8"]
  readHeaderTimeout: 2s
  readTimeout: 10s
  writeTimeout: 20s
  idleTimeout: 1m
  shutdownTimeout: 5s
  maxBodyBytes: 512KiB
storage:
  postgres:
    dsn: postgres://latchkey:${PGPASS}@db.internal:5432/latchkey?sslmode=verify-full
ephemeral:
  redis:
    addrs: [sentinel-1:26379, sentinel-2:26379]
    username: latchkey
    password: file:secrets/redis-password
    db: 3
    masterName: mymaster
    tls:
      enabled: true
      caFile: tls/ca.pem
      serverName: redis.internal
  keyPrefix: "lk:"
keys:
  algorithms: [RS256, ES256, EdDSA]
  rotationPeriod: 30d
  prePublish: 2d
  retireAfter: 7d
  encryptionKeys:
    - id: "2025"
      key: ${KEK_2025}
    - id: "2024"
      key: file:secrets/kek-2024
tokens:
  idTokenTTL: 30m
  accessTokenTTL: 5m
  codeTTL: 30s
  authRequestTTL: 15m
  refreshGraceWindow: 0
  refreshIdleTTL: 14d
  refreshAbsoluteTTL: 90d
outbound:
  allowedNetworks: [127.0.0.0/8, "::1/128"]
  timeout: 5s
  maxBodyBytes: 2097152
clients:
  - client_id: web-app
    client_name: Web app
    client_secret: ${WEB_APP_SECRET}
    redirect_uris: [https://app.example.com/callback]
    post_logout_redirect_uris: [https://app.example.com/]
    grant_types: [authorization_code, refresh_token, client_credentials]
    response_types: [code]
    token_endpoint_auth_method: client_secret_basic
    application_type: web
    id_token_signed_response_alg: ES256
    require_pkce: false
    first_party: false
    audience: [https://api.example.com]
    allowed_connectors: [github, local]
    scope: openid profile email offline_access
    session_bound_refresh_tokens: true
    backchannel_logout_uri: https://app.example.com/logout/backchannel
    frontchannel_logout_uri: https://app.example.com/logout/frontchannel
  - client_id: cli
    public: true
    application_type: native
    redirect_uris: [http://127.0.0.1/callback, "com.example.cli:/callback"]
  - client_id: service
    token_endpoint_auth_method: private_key_jwt
    grant_types: [client_credentials]
    jwks:
      keys:
        - {kty: EC, crv: P-256, x: xx, y: yy}
connectors:
  - id: github
    type: github
    name: GitHub
    config:
      clientID: abc
      clientSecret: ${GITHUB_SECRET}
      orgs: [example]
  - id: corp
    type: oidc
    config: {issuer: "https://corp.example.com", clientID: latchkey, clientSecret: "file:secrets/corp", trustEmail: true, port: 8080}
logging:
  level: debug
  format: json
demo:
  createUser: true
`

func fullEnv() map[string]string {
	return map[string]string{
		"PGPASS":         "pg-pass-123",
		"KEK_2025":       key32,
		"WEB_APP_SECRET": "web-app-secret-456",
		"GITHUB_SECRET":  "github-secret-789",
	}
}

func fullFiles() map[string]string {
	return map[string]string{
		"tls/cert.pem":           "cert",
		"tls/key.pem":            "key",
		"tls/ca.pem":             "ca",
		"secrets/redis-password": "redis-pass-000\n",
		"secrets/kek-2024":       key32URL + "\n",
		"secrets/corp":           "corp-secret-111",
	}
}

// TestParseFullConfig decodes a file that sets every key.
func TestParseFullConfig(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, fullFiles())
	cfg := mustParse(t, fullConfig, fullEnv(), dir, WithConnectorTypes(map[string]ConnectorValidator{"github": nil, "oidc": nil}))

	want := &Config{
		Issuer: "https://id.example.com",
		HTTP: HTTP{
			Address:           "0.0.0.0:8443",
			TLS:               TLS{Cert: filepath.Join(dir, "tls/cert.pem"), Key: filepath.Join(dir, "tls/key.pem")},
			TrustedProxies:    []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")},
			ReadHeaderTimeout: 2 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      20 * time.Second,
			IdleTimeout:       time.Minute,
			ShutdownTimeout:   5 * time.Second,
			MaxBodyBytes:      512 << 10,
		},
		Storage: Storage{Postgres: &Postgres{DSN: "postgres://latchkey:pg-pass-123@db.internal:5432/latchkey?sslmode=verify-full"}},
		Ephemeral: Ephemeral{
			Redis: &Redis{
				Addrs:      []string{"sentinel-1:26379", "sentinel-2:26379"},
				Username:   "latchkey",
				Password:   "redis-pass-000",
				DB:         3,
				MasterName: "mymaster",
				TLS:        RedisTLS{Enabled: true, CAFile: filepath.Join(dir, "tls/ca.pem"), ServerName: "redis.internal"},
			},
			KeyPrefix: "lk:",
		},
		Keys: Keys{
			Algorithms:     []string{"RS256", "ES256", "EdDSA"},
			RotationPeriod: 30 * 24 * time.Hour,
			PrePublish:     48 * time.Hour,
			CheckInterval:  time.Minute,
			RetireAfter:    7 * 24 * time.Hour,
			EncryptionKeys: []EncryptionKey{
				{ID: "2025", Key: byteRange(0, 32)},
				{ID: "2024", Key: byteRange(100, 32)},
			},
		},
		Tokens: Tokens{
			IDTokenTTL:         30 * time.Minute,
			AccessTokenTTL:     5 * time.Minute,
			CodeTTL:            30 * time.Second,
			AuthRequestTTL:     15 * time.Minute,
			RefreshGraceWindow: 0,
			RefreshIdleTTL:     14 * 24 * time.Hour,
			RefreshAbsoluteTTL: 90 * 24 * time.Hour,
		},
		Outbound: Outbound{
			AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
			Timeout:         5 * time.Second,
			MaxBodyBytes:    2 << 20,
		},
		Clients: []ClientConfig{
			{
				ID:                      "web-app",
				Name:                    "Web app",
				Secret:                  "web-app-secret-456",
				RedirectURIs:            []string{"https://app.example.com/callback"},
				PostLogoutRedirectURIs:  []string{"https://app.example.com/"},
				GrantTypes:              []string{"authorization_code", "refresh_token", "client_credentials"},
				ResponseTypes:           []string{"code"},
				TokenEndpointAuthMethod: "client_secret_basic",
				ApplicationType:         "web",
				IDTokenSignedAlg:        "ES256",
				RequirePKCE:             false,
				FirstParty:              false,
				Audience:                []string{"https://api.example.com"},
				AllowedConnectors:       []string{"github", "local"},
				Scope:                   "openid profile email offline_access",
				SessionBoundRefresh:     true,
				BackchannelLogoutURI:    "https://app.example.com/logout/backchannel",
				FrontchannelLogoutURI:   "https://app.example.com/logout/frontchannel",
			},
			{
				ID:                      "cli",
				Public:                  true,
				RedirectURIs:            []string{"http://127.0.0.1/callback", "com.example.cli:/callback"},
				GrantTypes:              []string{"authorization_code", "refresh_token"},
				ResponseTypes:           []string{"code"},
				TokenEndpointAuthMethod: "none",
				ApplicationType:         "native",
				IDTokenSignedAlg:        "RS256",
				RequirePKCE:             true,
				FirstParty:              true,
				Audience:                []string{"https://id.example.com"},
			},
			{
				ID:                      "service",
				GrantTypes:              []string{"client_credentials"},
				TokenEndpointAuthMethod: "private_key_jwt",
				ApplicationType:         "web",
				IDTokenSignedAlg:        "RS256",
				RequirePKCE:             true,
				FirstParty:              true,
				Audience:                []string{"https://id.example.com"},
				JWKS:                    json.RawMessage(`{"keys":[{"crv":"P-256","kty":"EC","x":"xx","y":"yy"}]}`),
			},
		},
		Connectors: []ConnectorConfig{
			{ID: "github", Type: "github", Name: "GitHub", Config: ConnectorSettings{raw: json.RawMessage(`{"clientID":"abc","clientSecret":"github-secret-789","orgs":["example"]}`)}},
			{ID: "corp", Type: "oidc", Name: "corp", Config: ConnectorSettings{raw: json.RawMessage(`{"clientID":"latchkey","clientSecret":"corp-secret-111","issuer":"https://corp.example.com","port":8080,"trustEmail":true}`)}},
		},
		Logging:  Logging{Level: "debug", Format: "json"},
		Limits:   defaultLimits(),
		MFA:      defaultMFA(),
		Demo:     Demo{CreateUser: true},
		Admin:    defaultAdmin(),
		Accounts: Accounts{Registration: Registration{RequireVerifiedEmail: true}},
		BaseDir:  dir,
	}
	if !reflect.DeepEqual(cfg, want) {
		gotJSON, _ := json.MarshalIndent(cfg, "", " ")
		t.Errorf("config differs; got (secrets redacted):\n%s", gotJSON)
		for i := range want.Clients {
			if i < len(cfg.Clients) && !reflect.DeepEqual(cfg.Clients[i], want.Clients[i]) {
				t.Errorf("clients[%d]:\ngot  %+v\nwant %+v", i, cfg.Clients[i], want.Clients[i])
			}
		}
		if cfg.Storage.Postgres != nil && cfg.Storage.Postgres.DSN != want.Storage.Postgres.DSN {
			t.Errorf("dsn differs")
		}
		if cfg.Ephemeral.Redis != nil && !reflect.DeepEqual(*cfg.Ephemeral.Redis, *want.Ephemeral.Redis) {
			t.Errorf("redis:\ngot  %+v\nwant %+v", *cfg.Ephemeral.Redis, *want.Ephemeral.Redis)
		}
		for i, c := range cfg.Connectors {
			t.Logf("connectors[%d].config = %s", i, c.Config.JSON())
		}
	}
	if got := cfg.Connectors[1].Config.Map(); !reflect.DeepEqual(got, map[string]any{
		"clientID": "latchkey", "clientSecret": "corp-secret-111", "issuer": "https://corp.example.com", "port": float64(8080), "trustEmail": true,
	}) {
		t.Errorf("Map() = %v", got)
	}
}

// TestParseProblems lists the exact problems of invalid files. "{dir}" in a
// message stands for the base directory.
func TestParseProblems(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		env   map[string]string
		files map[string]string
		want  []Problem
	}{
		{
			name: "unknown key at top level",
			yaml: minimal + "isuer: x\n",
			want: []Problem{{"isuer", "unknown key"}},
		},
		{
			name: "unknown key nested",
			yaml: minimal + "http:\n  adress: 127.0.0.1:80\n  tls: {cert: a, kye: b}\n",
			want: []Problem{
				{"http.adress", "unknown key"},
				// A problem about a key the file lacks sorts at its parent.
				{"http.tls.key", "required when http.tls.cert is set"},
				{"http.tls.cert", `cannot read file "{dir}/a": no such file or directory`},
				{"http.tls.kye", "unknown key"},
			},
		},
		{
			name: "unknown key in a client and in a list of mappings",
			yaml: minimal + "clients:\n  - client_id: a\n    client_secret: s\n    redirect_uri: https://a.example/cb\n",
			want: []Problem{
				{"clients[0].redirect_uris", "required"},
				{"clients[0].redirect_uri", "unknown key"},
			},
		},
		{
			name: "wrong types",
			yaml: minimal + `http:
  maxBodyBytes: abc
  readTimeout: [1s]
demo: {createUser: maybe}
ephemeral: {redis: {addrs: localhost:6379, db: abc}}
logging: {level: {debug: true}}
clients: {client_id: a}
`,
			want: []Problem{
				{"http.maxBodyBytes", `cannot decode "abc" as size`},
				{"http.readTimeout", "expected a duration, got a list"},
				{"demo.createUser", `cannot decode "maybe" as bool`},
				{"ephemeral.redis.addrs", "expected a list, got a scalar"},
				{"ephemeral.redis.db", `cannot decode "abc" as integer`},
				{"logging.level", "expected a string, got a mapping"},
				{"clients", "expected a list, got a mapping"},
			},
		},
		{
			name: "section of the wrong kind",
			yaml: "issuer: https://id.example.com\nkeys: [a]\nhttp: 5\n",
			want: []Problem{
				{"keys", "expected a mapping, got a list"},
				{"http", "expected a mapping, got a scalar"},
			},
		},
		{
			name: "missing issuer",
			yaml: "keys:\n  encryptionKeys: [{id: k1, key: " + key32 + "}]\n",
			want: []Problem{{"issuer", "required"}},
		},
		{
			name: "empty file",
			yaml: "",
			want: []Problem{{"issuer", "required"}, {"keys.encryptionKeys", "required"}},
		},
		{
			name: "only a comment",
			yaml: "# nothing\n",
			want: []Problem{{"issuer", "required"}, {"keys.encryptionKeys", "required"}},
		},
		{
			name: "top level is not a mapping",
			yaml: "- a\n- b\n",
			want: []Problem{{"", "expected a mapping, got a list"}},
		},
		{
			name: "issuer is not a URL",
			yaml: "issuer: not a url\nkeys: {encryptionKeys: [{id: k1, key: " + key32 + "}]}\n",
			want: []Problem{{"issuer", `"not a url" is not an absolute http(s) URL`}},
		},
		{
			name: "issuer with another scheme",
			yaml: "issuer: ftp://id.example.com\nkeys: {encryptionKeys: [{id: k1, key: " + key32 + "}]}\n",
			want: []Problem{{"issuer", `"ftp://id.example.com" is not an absolute http(s) URL`}},
		},
		{
			name: "issuer with query, fragment and user",
			yaml: "issuer: https://u@id.example.com/?tenant=a#x\nkeys: {encryptionKeys: [{id: k1, key: " + key32 + "}]}\n",
			want: []Problem{
				{"issuer", "must not contain user information"},
				{"issuer", "must not have a query or fragment"},
			},
		},
		{
			name: "http issuer on a public host",
			yaml: "issuer: http://id.example.com\nkeys: {encryptionKeys: [{id: k1, key: " + key32 + "}]}\n",
			want: []Problem{{"issuer", "http is only allowed for localhost, 127.0.0.1 and ::1; use https"}},
		},
		{
			name: "duplicated client ids",
			yaml: minimal + `clients:
  - {client_id: app, client_secret: s, redirect_uris: [https://a.example/cb]}
  - {client_id: other, client_secret: s, redirect_uris: [https://a.example/cb]}
  - {client_id: app, client_secret: s, redirect_uris: [https://a.example/cb]}
`,
			want: []Problem{{"clients[2].client_id", `"app" is already used by clients[0]`}},
		},
		{
			name: "bad CIDRs",
			yaml: minimal + "outbound:\n  allowedNetworks: [10.0.0.0/33, 10.0.0.1/8, 10.0.0.1]\nhttp: {trustedProxies: [nope]}\n",
			want: []Problem{
				{"outbound.allowedNetworks[0]", `cannot decode "10.0.0.0/33" as CIDR (like 10.0.0.0/8 or fd00::/8)`},
				{"outbound.allowedNetworks[1]", `"10.0.0.1/8" has bits set after the prefix length (did you mean "10.0.0.0/8"?)`},
				{"outbound.allowedNetworks[2]", `cannot decode "10.0.0.1" as CIDR (like 10.0.0.0/8 or fd00::/8)`},
				{"http.trustedProxies[0]", `cannot decode "nope" as CIDR (like 10.0.0.0/8 or fd00::/8)`},
			},
		},
		{
			name: "bad durations",
			yaml: minimal + "tokens:\n  codeTTL: 5 minutes\n  idTokenTTL: 60\n  accessTokenTTL: 1.5d\n  refreshGraceWindow: -1s\n  authRequestTTL: 0\n",
			want: []Problem{
				{"tokens.codeTTL", `cannot decode "5 minutes" as duration`},
				{"tokens.idTokenTTL", `cannot decode "60" as duration`},
				{"tokens.accessTokenTTL", `cannot decode "1.5d" as duration`},
				{"tokens.refreshGraceWindow", "must not be negative"},
				{"tokens.authRequestTTL", "must be positive"},
			},
		},
		{
			name: "key lifetimes",
			yaml: minimal + "  rotationPeriod: 12h\n  retireAfter: 30m\ntokens: {refreshIdleTTL: 100d}\n",
			want: []Problem{
				{"keys.prePublish", "must be shorter than keys.rotationPeriod (12h0m0s)"},
				{"keys.retireAfter", "must be 0 (auto) or at least the longest token lifetime (1h0m0s)"},
				{"tokens.refreshIdleTTL", "must not exceed tokens.refreshAbsoluteTTL (2160h0m0s)"},
			},
		},
		{
			name: "encryption keys",
			yaml: "issuer: https://id.example.com\nkeys:\n  encryptionKeys:\n    - {id: a, key: " + key16 + "}\n    - {id: a, key: '!!!'}\n    - {id: 'b c'}\n",
			want: []Problem{
				{"keys.encryptionKeys[0].key", "must decode to 32 bytes (base64)"},
				{"keys.encryptionKeys[1].id", `"a" is already used by keys.encryptionKeys[0]`},
				{"keys.encryptionKeys[1].key", "must be base64 (standard or URL alphabet, padding optional)"},
				{"keys.encryptionKeys[2].key", "required"},
				{"keys.encryptionKeys[2].id", "must match [A-Za-z0-9._-]+"},
			},
		},
		{
			name: "algorithms",
			yaml: minimal + "  algorithms: [ES256, HS256, ES256]\n",
			want: []Problem{
				{"keys.algorithms[1]", `"HS256" is not supported (use RS256, ES256 or EdDSA)`},
				{"keys.algorithms[2]", `"ES256" is listed twice`},
			},
		},
		{
			name: "algorithms without RS256 and a client asking for EdDSA",
			yaml: minimal + "  algorithms: [ES256]\nclients:\n  - {client_id: a, client_secret: s, redirect_uris: [https://a.example/cb], id_token_signed_response_alg: EdDSA}\n",
			want: []Problem{
				{"keys.algorithms", "must include RS256 (OpenID Connect requires it)"},
				{"clients[0].id_token_signed_response_alg", `"EdDSA" is not in keys.algorithms`},
			},
		},
		{
			name: "environment variable unset",
			yaml: minimal + "storage: {postgres: {dsn: 'postgres://u:${PGPASS}@h/db?x=${OTHER}'}}\n",
			env:  map[string]string{"OTHER": "1"},
			want: []Problem{{"storage.postgres.dsn", "environment variable PGPASS is not set"}},
		},
		{
			name: "bad references",
			yaml: minimal + "clients:\n  - {client_id: a, client_secret: '${A-B}', redirect_uris: ['https://a.example/${X']}\n",
			want: []Problem{
				{"clients[0].client_secret", `invalid environment variable name "A-B" in ${...} (write $${ for a literal ${)`},
				{"clients[0].redirect_uris[0]", "unterminated ${ reference (write $${ for a literal ${)"},
			},
		},
		{
			name: "file: missing",
			yaml: minimal + "clients:\n  - {client_id: a, client_secret: 'file:secrets/a', redirect_uris: [https://a.example/cb]}\n",
			want: []Problem{{"clients[0].client_secret", `cannot read file "{dir}/secrets/a": no such file or directory`}},
		},
		{
			name:  "file: is a directory",
			yaml:  minimal + "clients:\n  - {client_id: a, client_secret: 'file:secrets', redirect_uris: [https://a.example/cb]}\n",
			files: map[string]string{"secrets/x": "x"},
			want:  []Problem{{"clients[0].client_secret", `file "{dir}/secrets" is not a regular file`}},
		},
		{
			name: "file: without a name",
			yaml: minimal + "clients:\n  - {client_id: a, client_secret: 'file:', redirect_uris: [https://a.example/cb]}\n",
			want: []Problem{{"clients[0].client_secret", "file: reference without a file name"}},
		},
		{
			name: "sqlite and postgres",
			yaml: minimal + "storage:\n  sqlite: {path: x.db}\n  postgres: {dsn: 'postgres://h/db'}\n",
			want: []Problem{{"storage", "set exactly one of sqlite and postgres"}},
		},
		{
			name: "bad dsn is not quoted",
			yaml: minimal + "storage:\n  postgres: {dsn: 'mysql://u:hunter2@h/db'}\n",
			want: []Problem{{"storage.postgres.dsn", "must be a postgres:// URL or a key=value connection string"}},
		},
		{
			name: "redis and sql",
			yaml: minimal + "ephemeral:\n  sql:\n  redis: {addrs: [a:1, b:2], db: 2, tls: {caFile: ca.pem}}\n",
			want: []Problem{
				{"ephemeral", "set exactly one of redis and sql"},
				{"ephemeral.redis.db", "must be 0 for a Redis Cluster (several addrs without masterName)"},
				{"ephemeral.redis.tls.enabled", "must be true when caFile or serverName is set"},
				{"ephemeral.redis.tls.caFile", `cannot read file "{dir}/ca.pem": no such file or directory`},
			},
		},
		{
			name: "redis without addrs and bad addresses",
			yaml: minimal + "ephemeral:\n  redis: {}\nhttp: {address: 'x'}\n",
			want: []Problem{
				{"ephemeral.redis.addrs", "required"},
				{"http.address", `"x" is not host:port`},
			},
		},
		{
			name: "substituted value is not quoted in a type error",
			yaml: minimal + "ephemeral:\n  redis: {addrs: ['r:6379'], db: '${DB}'}\n",
			env:  map[string]string{"DB": "hunter2"},
			want: []Problem{{"ephemeral.redis.db", "cannot decode the referenced value as integer"}},
		},
		{
			name: "referenced values are not quoted in validation problems",
			yaml: minimal + "http: {address: '${ADDR}'}\nclients:\n  - {client_id: a, client_secret: s, redirect_uris: ['${URI}']}\n",
			env:  map[string]string{"ADDR": "hunter2", "URI": "http://hunter2.example/cb"},
			want: []Problem{
				{"http.address", "the referenced value is not host:port"},
				{"clients[0].redirect_uris[0]", "the referenced value: http is only allowed for localhost, 127.0.0.1 and ::1; use https"},
			},
		},
		{
			name: "duplicate keys",
			yaml: minimal + "logging:\n  level: info\n  level: debug\n",
			want: []Problem{{"logging.level", "duplicate key (first defined on line 6)"}},
		},
		{
			name: "syntax error has a line number",
			yaml: "issuer: https://id.example.com\nhttp:\n  address: [a\n",
			want: []Problem{{"", "invalid YAML: line 2: did not find expected ',' or ']'"}},
		},
		{
			name: "tab indentation",
			yaml: "issuer: x\nhttp:\n\taddress: y\n",
			want: []Problem{{"", "invalid YAML: line 3: found character that cannot start any token"}},
		},
		{
			name: "two documents",
			yaml: minimal + "---\nissuer: x\n",
			want: []Problem{{"", "invalid YAML: line 5: a second document; the config file holds exactly one"}},
		},
		{
			name: "alias that contains itself",
			yaml: minimal + "connectors: [{id: a, type: t, config: {x: &c [*c]}}]\n",
			want: []Problem{{"connectors[0].config.x[0][0]", "alias *c refers to a value that contains it"}},
		},
		{
			name: "logging",
			yaml: minimal + "logging: {level: verbose, format: xml}\n",
			want: []Problem{
				{"logging.level", `"verbose" is not one of debug, info, warn, error`},
				{"logging.format", `"xml" is not one of json, text`},
			},
		},
		{
			name: "client rules",
			yaml: minimal + `connectors:
  - {id: github, type: github}
clients:
  - client_id: pub
    public: true
    client_secret: s
    require_pkce: false
    grant_types: [authorization_code, client_credentials, password]
    redirect_uris: ["http://app.example.com/cb", "https://app.example.com/cb#frag", "/relative", "javascript:alert(1)", "com.example.app:/cb"]
    allowed_connectors: [github, gitlab, local]
  - client_id: conf
    token_endpoint_auth_method: none
    response_types: [code, token]
    application_type: desktop
    redirect_uris: [https://a.example/cb]
    scope: "openid  profile"
  - client_id: jwt
    token_endpoint_auth_method: private_key_jwt
    client_secret: s
    grant_types: [client_credentials]
    jwks_uri: http://keys.example.com/jwks
    jwks: {kty: RSA}
    backchannel_logout_uri: https://a.example/bc#x
    frontchannel_logout_uri: not a url
  - client_id: "has space"
    client_secret: s
    redirect_uris: [https://a.example/cb]
    audience: [""]
  - client_id: keyless
    token_endpoint_auth_method: private_key_jwt
    grant_types: [client_credentials]
`,
			want: []Problem{
				{"clients[0].client_secret", "must not be set for a public client"},
				{"clients[0].require_pkce", "cannot be false for a public client"},
				{"clients[0].grant_types", "client_credentials needs a confidential client"},
				{"clients[0].grant_types[2]", `"password" is not one of authorization_code, refresh_token, client_credentials`},
				{"clients[0].redirect_uris[0]", `"http://app.example.com/cb": http is only allowed for localhost, 127.0.0.1 and ::1; use https`},
				{"clients[0].redirect_uris[1]", `"https://app.example.com/cb#frag" must not have a fragment`},
				{"clients[0].redirect_uris[2]", `"/relative" is not an absolute URL`},
				{"clients[0].redirect_uris[3]", `"javascript:alert(1)": scheme javascript is not allowed`},
				{"clients[0].redirect_uris[4]", `"com.example.app:/cb": a custom scheme needs application_type native`},
				{"clients[0].allowed_connectors[1]", `"gitlab" is not a configured connector (or "local")`},
				{"clients[1].token_endpoint_auth_method", `"none" requires public: true`},
				{"clients[1].response_types[1]", `"token" is not supported (only "code")`},
				{"clients[1].application_type", `"desktop" is not one of web, native`},
				{"clients[1].scope", "must be scope tokens separated by single spaces"},
				{"clients[2].client_secret", "must not be set with token_endpoint_auth_method private_key_jwt"},
				{"clients[2].jwks_uri", `"http://keys.example.com/jwks": http is only allowed for localhost, 127.0.0.1 and ::1; use https`},
				{"clients[2].jwks_uri", "must not be set together with jwks"},
				{"clients[2].jwks", `must be a JWK Set (a mapping with a "keys" list)`},
				{"clients[2].backchannel_logout_uri", `"https://a.example/bc#x" must not have a fragment`},
				{"clients[2].frontchannel_logout_uri", `"not a url" is not an absolute http(s) URL`},
				{"clients[3].client_id", "must be printable ASCII without spaces"},
				{"clients[3].audience[0]", "must not be empty"},
				{"clients[4].token_endpoint_auth_method", "private_key_jwt needs jwks or jwks_uri"},
			},
		},
		{
			name: "connectors",
			yaml: minimal + `connectors:
  - {id: GitHub, type: github}
  - {id: a, type: oidc}
  - {id: a}
  - {type: x, config: [1]}
`,
			want: []Problem{
				{"connectors[0].id", "must match [a-z0-9-]+"},
				{"connectors[2].type", "required"},
				{"connectors[2].id", `"a" is already used by connectors[1]`},
				{"connectors[3].id", "required"},
				{"connectors[3].config", "expected a mapping, got a list"},
			},
		},
		{
			name: "a file with many problems lists them all",
			yaml: `issuer: http://id.example.com
htp: {}
http:
  address: nowhere
  readTimeout: soon
storage:
  sqlite: {path: a.db}
  postgres: {dsn: '${PG_DSN}'}
keys:
  rotationPeriod: 0s
  encryptionKeys:
    - {id: old, key: ` + key16 + `}
tokens:
  idTokenTTL: 1h
  idTokenTTL: 2h
outbound:
  allowedNetworks: [192.168.0.0/16, everything]
clients:
  - client_id: app
    client_secret: file:/nonexistent/latchkey/secret
    redirect_uris: [https://app.example.com/cb]
  - client_id: app
    client_secret: s
    redirect_uris: [https://app.example.com/cb]
logging: {level: loud}
`,
			want: []Problem{
				{"issuer", "http is only allowed for localhost, 127.0.0.1 and ::1; use https"},
				{"htp", "unknown key"},
				{"http.address", `"nowhere" is not host:port`},
				{"http.readTimeout", `cannot decode "soon" as duration`},
				{"storage", "set exactly one of sqlite and postgres"},
				{"storage.postgres.dsn", "environment variable PG_DSN is not set"},
				{"keys.rotationPeriod", "must be positive"},
				{"keys.encryptionKeys[0].key", "must decode to 32 bytes (base64)"},
				{"tokens.idTokenTTL", "duplicate key (first defined on line 14)"},
				{"outbound.allowedNetworks[1]", `cannot decode "everything" as CIDR (like 10.0.0.0/8 or fd00::/8)`},
				{"clients[0].client_secret", `cannot read file "/nonexistent/latchkey/secret": no such file or directory`},
				{"clients[1].client_id", `"app" is already used by clients[0]`},
				{"logging.level", `"loud" is not one of debug, info, warn, error`},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tc.files)
			cfg, err := Parse([]byte(tc.yaml), envOf(tc.env), dir)
			if cfg != nil {
				t.Errorf("config is not nil")
			}
			want := make([]Problem, len(tc.want))
			for i, p := range tc.want {
				want[i] = Problem{Path: p.Path, Message: strings.ReplaceAll(p.Message, "{dir}", dir)}
			}
			assertProblems(t, problemsOf(t, err), want)
		})
	}
}

func TestSubstitution(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"secrets/a":    "file-secret\n",
		"secrets/two":  "two-newlines\n\n",
		"secrets/crlf": "crlf\r\n",
		"secrets/raw":  "no-newline",
	})
	abs := filepath.Join(dir, "secrets/raw")
	env := map[string]string{
		"SECRET":  "env-secret",
		"HOST":    "db.internal",
		"DIR":     dir,
		"EMPTY":   "",
		"DB":      "7",
		"REF":     "${SECRET}",
		"FILEREF": "file:secrets/a",
	}
	src := minimal + `storage:
  postgres:
    dsn: "postgres://u:${SECRET}@${HOST}:5432/db"
ephemeral:
  redis:
    addrs: ["${HOST}:6379"]
    db: ${DB}
    password: "${EMPTY}"
clients:
  - client_id: a
    client_name: "costs $${PRICE} and $$5 and $"
    client_secret: file:secrets/a
    redirect_uris: [https://a.example/cb]
  - client_id: b
    client_name: file://not-a-reference
    client_secret: "file:${DIR}/secrets/two"
    redirect_uris: [https://a.example/cb]
  - client_id: c
    client_name: "${REF} ${FILEREF}"
    client_secret: file:secrets/crlf
    redirect_uris: [https://a.example/cb]
  - client_id: d
    client_secret: "file:` + abs + `"
    redirect_uris: [https://a.example/cb]
connectors:
  - id: x
    type: oidc
    config:
      port: ${DB}
      secret: file:secrets/a
      plain: 8
`
	cfg := mustParse(t, src, env, dir)
	checks := []struct {
		name      string
		got, want any
	}{
		{"embedded env", cfg.Storage.Postgres.DSN.Reveal(), "postgres://u:env-secret@db.internal:5432/db"},
		{"env in a list", cfg.Ephemeral.Redis.Addrs, []string{"db.internal:6379"}},
		{"env into an integer key", cfg.Ephemeral.Redis.DB, 7},
		{"empty env is set", cfg.Ephemeral.Redis.Password.Reveal(), ""},
		{"escape", cfg.Clients[0].Name, "costs ${PRICE} and $$5 and $"},
		{"relative file, one newline trimmed", cfg.Clients[0].Secret.Reveal(), "file-secret"},
		{"file:// is not a reference", cfg.Clients[1].Name, "file://not-a-reference"},
		{"env in a file path, only one newline trimmed", cfg.Clients[1].Secret.Reveal(), "two-newlines\n"},
		{"values are not expanded again", cfg.Clients[2].Name, "${SECRET} file:secrets/a"},
		{"CRLF trimmed", cfg.Clients[2].Secret.Reveal(), "crlf"},
		{"absolute file", cfg.Clients[3].Secret.Reveal(), "no-newline"},
		{"connector config: substituted values stay strings", string(cfg.Connectors[0].Config.JSON()), `{"plain":8,"port":"7","secret":"file-secret"}`},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %q, want %q", c.name, c.got, c.want)
		}
	}
}

func TestMergeKeysAndAliases(t *testing.T) {
	src := minimal + `x-client: &client
  client_secret: s
  redirect_uris: &uris [https://a.example/cb]
`
	// There are no free-form extension keys (x-...) to park anchors in;
	// a template is defined in place, e.g. as the first client.
	_, err := Parse([]byte(src), nil, "")
	assertProblems(t, problemsOf(t, err), []Problem{{"x-client", "unknown key"}})

	src = minimal + `clients:
  - &base
    client_id: a
    client_secret: s
    redirect_uris: [https://a.example/cb]
    scope: openid
  - <<: *base
    client_id: b
  - <<: [{client_id: c, scope: email}, *base]
`
	cfg := mustParse(t, src, nil, "")
	var got []string
	for _, c := range cfg.Clients {
		got = append(got, c.ID+":"+c.Scope+":"+strings.Join(c.RedirectURIs, ","))
	}
	want := []string{"a:openid:https://a.example/cb", "b:openid:https://a.example/cb", "c:email:https://a.example/cb"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("clients = %q, want %q", got, want)
	}
}

func TestAliasExpansionIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString(minimal + "connectors:\n  - id: a\n    type: t\n    config:\n      l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 8; i++ {
		fmt.Fprintf(&b, "      l%d: &l%d [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	_, err := Parse([]byte(b.String()), nil, "")
	assertProblems(t, problemsOf(t, err), []Problem{{"", "the document expands to more than 100000 nodes (aliases?)"}})
}

func TestConnectorTypes(t *testing.T) {
	validators := map[string]ConnectorValidator{
		"local": nil,
		"oidc": func(raw json.RawMessage) []Problem {
			var c struct {
				ClientID string   `json:"clientID"`
				Scopes   []string `json:"scopes"`
			}
			if err := json.Unmarshal(raw, &c); err != nil {
				return []Problem{{"", "invalid: " + err.Error()}}
			}
			var out []Problem
			if c.ClientID == "" {
				out = append(out, Problem{"clientID", "required"})
			}
			for i, s := range c.Scopes {
				if s == "" {
					out = append(out, Problem{fmt.Sprintf("scopes[%d]", i), "must not be empty"})
				}
			}
			return out
		},
		"list": func(json.RawMessage) []Problem { return []Problem{{"[0]", "odd"}} },
	}
	src := minimal + `connectors:
  - {id: a, type: oidc, config: {clientID: x}}
  - {id: b, type: oidc, config: {scopes: [openid, ""]}}
  - {id: c, type: oidc}
  - {id: d, type: saml}
  - {id: e, type: local}
  - {id: f, type: list}
`
	_, err := Parse([]byte(src), nil, "", WithConnectorTypes(validators))
	assertProblems(t, problemsOf(t, err), []Problem{
		{"connectors[1].config.clientID", "required"},
		{"connectors[1].config.scopes[1]", "must not be empty"},
		{"connectors[2].config.clientID", "required"},
		{"connectors[3].type", `unknown connector type "saml" (known: list, local, oidc)`},
		{"connectors[5].config[0]", "odd"},
	})

	// Without WithConnectorTypes any type is accepted.
	cfg := mustParse(t, minimal+"connectors: [{id: d, type: saml}]\n", nil, "")
	if got := string(cfg.Connectors[0].Config.JSON()); got != "{}" {
		t.Errorf("absent config = %s, want {}", got)
	}
}

func TestLoad(t *testing.T) {
	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "latchkey.yaml")
		cfg, err := Load(path, nil)
		if cfg != nil {
			t.Error("config is not nil")
		}
		var p *Problems
		if errors.As(err, &p) {
			t.Errorf("a missing file is a *Problems: %v", err)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("error does not wrap fs.ErrNotExist: %v", err)
		}
		if want := "read config file: open " + path + ": no such file or directory"; err == nil || err.Error() != want {
			t.Errorf("error = %v, want %s", err, want)
		}
	})
	t.Run("paths relative to the file", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{
			"etc/latchkey.yaml": minimal + "storage: {sqlite: {path: db/l.db}}\nclients: [{client_id: a, client_secret: 'file:secret', redirect_uris: ['https://a.example/cb']}]\n",
			"etc/secret":        "from-file",
		})
		cfg, err := Load(filepath.Join(dir, "etc/latchkey.yaml"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(dir, "etc/db/l.db"); cfg.Storage.SQLite.Path != want {
			t.Errorf("sqlite path = %s, want %s", cfg.Storage.SQLite.Path, want)
		}
		if cfg.Clients[0].Secret.Reveal() != "from-file" {
			t.Errorf("secret not read relative to the config file")
		}
		if cfg.BaseDir != filepath.Join(dir, "etc") {
			t.Errorf("BaseDir = %s", cfg.BaseDir)
		}
	})
}

func TestQuickstart(t *testing.T) {
	cfg, err := Load("../../deploy/examples/quickstart.yaml", nil)
	if err != nil {
		t.Fatalf("quickstart.yaml is invalid:\n%v", err)
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"issuer", cfg.Issuer, "http://localhost:5556"},
		{"address", cfg.HTTP.Address, "127.0.0.1:5556"},
		{"sqlite in <repo>/data", cfg.Storage.SQLite.Path, filepath.Join(repo, "data", "latchkey.db")},
		{"ephemeral in SQL", cfg.Ephemeral.SQL != nil && cfg.Ephemeral.Redis == nil, true},
		{"dev key", string(cfg.Keys.EncryptionKeys[0].Key.Reveal()), "latchkey-dev-only-NOT-A-SECRET!!"},
		{"demo user", cfg.Demo.CreateUser, true},
		{"one client", len(cfg.Clients), 1},
		{"client id", cfg.Clients[0].ID, "demo-app"},
		{"confidential", cfg.Clients[0].Public, false},
		{"secret", cfg.Clients[0].Secret.Reveal(), "demo-app-secret"},
		{"redirect", cfg.Clients[0].RedirectURIs, []string{"http://localhost:5555/callback"}},
		{"post logout", cfg.Clients[0].PostLogoutRedirectURIs, []string{"http://localhost:5555/"}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestToStorage(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	cfg := mustParse(t, minimal+`clients:
  - client_id: app
    client_name: App
    client_secret: demo-app-secret
    redirect_uris: [https://a.example/cb]
    post_logout_redirect_uris: [https://a.example/]
    first_party: false
    allowed_connectors: [gh]
    scope: openid email
    session_bound_refresh_tokens: true
    jwks_uri: https://a.example/jwks
  - client_id: spa
    public: true
    redirect_uris: [http://localhost:3000/cb]
connectors:
  - {id: gh, type: github, name: GitHub, config: {clientID: x, clientSecret: y}}
`, nil, "")
	got := cfg.Clients[0].ToStorage(now)
	want := storage.Client{
		ID:   "app",
		Name: "App",
		// printf demo-app-secret | sha256sum
		SecretHash:             "81ba29a3c94c9cf43ff329391ab198559a0418b4a17436642403a88478987654",
		RedirectURIs:           []string{"https://a.example/cb"},
		PostLogoutRedirectURIs: []string{"https://a.example/"},
		GrantTypes:             []string{"authorization_code", "refresh_token"},
		ResponseTypes:          []string{"code"},
		ApplicationType:        "web",
		IDTokenSignedAlg:       "RS256",
		RequirePKCE:            boolp(true),
		FirstParty:             boolp(false),
		Audience:               []string{"https://id.example.com"},
		AllowedConnectors:      []string{"gh"},
		Scope:                  "openid email",
		SessionBoundRefresh:    true,
		JWKSURI:                "https://a.example/jwks",
		ConfigManaged:          true,
		CreatedAt:              now,
		UpdatedAt:              now,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("client:\ngot  %+v\nwant %+v", got, want)
	}

	spa := cfg.Clients[1].ToStorage(now)
	if spa.SecretHash != "" || !spa.Public || spa.TokenEndpointAuthMethod != "none" {
		t.Errorf("public client: %+v", spa)
	}

	conn := cfg.Connectors[0].ToStorage(now)
	wantConn := storage.Connector{
		ID: "gh", Type: "github", Name: "GitHub",
		Config:        json.RawMessage(`{"clientID":"x","clientSecret":"y"}`),
		ConfigManaged: true, CreatedAt: now, UpdatedAt: now,
	}
	if !reflect.DeepEqual(conn, wantConn) {
		t.Errorf("connector:\ngot  %+v\nwant %+v", conn, wantConn)
	}
}

func TestProblemsError(t *testing.T) {
	p := &Problems{List: []Problem{
		{"", "invalid YAML: line 1: x"},
		{"connectors[2].config.clientID", "required"},
	}}
	want := "invalid YAML: line 1: x\nconnectors[2].config.clientID: required"
	if p.Error() != want {
		t.Errorf("Error() = %q, want %q", p.Error(), want)
	}
}

func TestProblemOrder(t *testing.T) {
	var b strings.Builder
	b.WriteString(minimal + "clients:\n")
	for i := range 12 {
		fmt.Fprintf(&b, "  - {client_id: c%d, redirect_uris: [https://a.example/cb]}\n", i)
	}
	_, err := Parse([]byte(b.String()), nil, "")
	var want []Problem
	for i := range 12 {
		want = append(want, Problem{fmt.Sprintf("clients[%d].client_secret", i), "required for a confidential client"})
	}
	assertProblems(t, problemsOf(t, err), want)

	paths := []struct {
		a, b string
		want int
	}{
		{"clients[2]", "clients[10]", -1},
		{"clients[10].a", "clients[9].b", 1},
		{"a", "a.b", -1},
		{"x[01]", "x[1]", 0},
		{"b", "a", 1},
	}
	for _, p := range paths {
		if got := comparePaths(p.a, p.b); (got < 0) != (p.want < 0) || (got > 0) != (p.want > 0) {
			t.Errorf("comparePaths(%q, %q) = %d, want sign of %d", p.a, p.b, got, p.want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"30s", 30 * time.Second, true},
		{"1h30m", 90 * time.Minute, true},
		{"0", 0, true},
		{"30d", 30 * 24 * time.Hour, true},
		{"1d12h", 36 * time.Hour, true},
		{"-2d", -48 * time.Hour, true},
		{"+1d", 24 * time.Hour, true},
		{"106751d", 106751 * 24 * time.Hour, true},
		{"106752d", 0, false},
		{"106751d24h", 0, false},
		{"d", 0, false},
		{"1.5d", 0, false},
		{"1d-1h", 0, false},
		{"1dd", 0, false},
		{"60", 0, false},
		{"", 0, false},
		{"abc", 0, false},
	}
	for _, tc := range tests {
		got, err := parseDuration(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
		ok   bool
	}{
		{"1048576", 1 << 20, true},
		{"1MiB", 1 << 20, true},
		{"512 KiB", 512 << 10, true},
		{"1MB", 1000000, true},
		{"2kB", 2000, true},
		{"2KB", 2000, true},
		{"3GiB", 3 << 30, true},
		{"1TB", 1000000000000, true},
		{"7B", 7, true},
		{"-1", -1, true},
		{"1mib", 0, false},
		{"1.5MiB", 0, false},
		{"MiB", 0, false},
		{"abc", 0, false},
		{"99999999999TiB", 0, false},
		{"", 0, false},
	}
	for _, tc := range tests {
		got, err := parseByteSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseByteSize(%q) = %v, %v; want %v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	for in, want := range map[ByteSize]string{1 << 20: "1MiB", 3 << 10: "3KiB", 1536: "1536B", 1500: "1500B", 0: "0B", 5 << 30: "5GiB"} {
		if got := in.String(); got != want {
			t.Errorf("ByteSize(%d).String() = %s, want %s", int64(in), got, want)
		}
	}
}

func TestDecodeBase64(t *testing.T) {
	want := byteRange(0, 32)
	for _, in := range []string{
		key32,
		strings.TrimRight(key32, "="),
		" " + key32 + "\n",
	} {
		got, err := decodeBase64(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("decodeBase64(%q) = %v, %v", in, got, err)
		}
	}
	if got, err := decodeBase64(key32URL + "="); err != nil || !reflect.DeepEqual(got, byteRange(100, 32)) {
		t.Errorf("base64url: %v, %v", got, err)
	}
	if _, err := decodeBase64("a+b_"); err == nil {
		t.Error("mixed alphabets accepted")
	}
}

// FuzzParse checks that Parse never panics and returns a config or an
// error, never both or neither.
func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte(fullConfig))
	f.Add([]byte(""))
	f.Add([]byte("issuer: [\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte(minimal + "clients: [{<<: {client_id: x}, redirect_uris: ['${A}']}]\n"))
	f.Add([]byte(minimal + "connectors: [{id: a, type: t, config: {a: .inf, b: !!binary aGk=, c: 2001-12-14}}]\n"))
	f.Add([]byte("tokens: {codeTTL: 99999999999d}\nhttp: {maxBodyBytes: 9EiB}\n"))
	f.Add([]byte("---\n---\na: 1\n"))
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "s"), []byte("secret\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	env := envOf(fullEnv())
	types := WithConnectorTypes(map[string]ConnectorValidator{
		"t": func(raw json.RawMessage) []Problem {
			if !json.Valid(raw) {
				return []Problem{{"", "not JSON"}}
			}
			return nil
		},
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, env, dir, types)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("cfg=%v err=%v: want exactly one", cfg != nil, err)
		}
		if err != nil {
			var p *Problems
			if !errors.As(err, &p) || len(p.List) == 0 {
				t.Fatalf("error %T %v is not a non-empty *Problems", err, err)
			}
		}
	})
}

func defaultLimits() Limits {
	return Limits{
		LoginPerIP:             LimitRule{Limit: 20, Window: time.Minute},
		LoginPerAccount:        LimitRule{Limit: 10, Window: 5 * time.Minute},
		FactorPerAccount:       LimitRule{Limit: 5, Window: 5 * time.Minute},
		TokenPerClient:         LimitRule{Limit: 600, Window: time.Minute, FailOpen: true},
		RecoveryPerAccount:     LimitRule{Limit: 5, Window: time.Hour},
		RegistrationPerIP:      LimitRule{Limit: 10, Window: time.Hour},
		EnrollmentPerAccount:   LimitRule{Limit: 10, Window: 15 * time.Minute},
		OTPSendPerAccount:      LimitRule{Limit: 5, Window: 15 * time.Minute},
		RecoveryPerIP:          LimitRule{Limit: 20, Window: time.Hour},
		RegistrationPerAddress: LimitRule{Limit: 3, Window: time.Hour},
		Lockout:                Lockout{Threshold: 5, BaseDelay: 30 * time.Second, MaxDelay: 15 * time.Minute, QuietPeriod: time.Hour},
	}
}

func TestLimitsValidation(t *testing.T) {
	base := "issuer: https://id.example.com\nkeys: {encryptionKeys: [{id: k1, key: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=}]}\n"
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"off is fine", "limits: {loginPerIP: {limit: 0}, lockout: {threshold: 0}}\n", nil},
		{"negative limit", "limits: {tokenPerClient: {limit: -1}}\n", []string{"limits.tokenPerClient.limit: must not be negative (0 turns the rule off)"}},
		{"zero window", "limits: {loginPerAccount: {limit: 3, window: 0s}}\n", []string{"limits.loginPerAccount.window: must be between 1ms and 31d"}},
		{"max below base", "limits: {lockout: {baseDelay: 1m, maxDelay: 30s}}\n", []string{"limits.lockout.maxDelay: must be at least limits.lockout.baseDelay (1m0s)"}},
		{"never permanent", "limits: {lockout: {maxDelay: 48h}}\n", []string{"limits.lockout.maxDelay: must be at most 24h: a lockout is never permanent"}},
		{"unknown key", "limits: {loginPerIp: {limit: 3}}\n", []string{"limits.loginPerIp: unknown key"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(base+tc.yaml), nil, "/etc/latchkey")
			if tc.want == nil {
				if err != nil {
					t.Fatalf("unexpected problems: %v", err)
				}
				if cfg.Limits.LoginPerIP.Limit != 0 || cfg.Limits.Lockout.Threshold != 0 {
					t.Errorf("explicit 0 replaced by a default: %+v", cfg.Limits)
				}
				return
			}
			got := problemList(t, err)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// defaultMFA is the mfa section with every default applied.
func defaultMFA() MFA {
	return MFA{TOTP: TOTP{Issuer: "Latchkey", Algorithm: "SHA1", Digits: 6, Period: 30 * time.Second},
		Policy: MFAPolicy{Default: MFARule{Mode: "optional"}}}
}

func TestMFAProblems(t *testing.T) {
	m := MFA{TOTP: TOTP{Issuer: "a:b", Algorithm: "MD5", Digits: 7, Period: 1500 * time.Millisecond}}
	c := &checker{}
	c.mfa(&m)
	var got []string
	for _, p := range c.problems {
		got = append(got, p.Path)
	}
	want := []string{"mfa.totp.issuer", "mfa.totp.algorithm", "mfa.totp.digits", "mfa.totp.period"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("problems at %v, want %v", got, want)
	}
}

func TestAdminSection(t *testing.T) {
	base := "issuer: https://id.example.com\nkeys: {encryptionKeys: [{id: k1, key: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=}]}\n"
	cfg, err := Parse([]byte(base), nil, "/etc/latchkey")
	if err != nil {
		t.Fatal(err)
	}
	if want := defaultAdmin(); !reflect.DeepEqual(cfg.Admin, want) {
		t.Fatalf("admin defaults = %+v, want %+v", cfg.Admin, want)
	}
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"enabled on another port", "admin: {enabled: true, listen: '127.0.0.1:0', rateLimit: {limit: 5, window: 1s}}\n", nil},
		{"bad listen and rule", "admin: {listen: nowhere, rateLimit: {limit: -2}}\n", []string{
			`admin.listen: "nowhere" is not host:port`,
			"admin.rateLimit.limit: must not be negative (0 turns the rule off)"}},
		{"unknown key", "admin: {port: 5557}\n", []string{"admin.port: unknown key"}},
		{"bad url and group", "admin: {url: 'https://admin.example/x', console: {group: ''}}\n", []string{
			`admin.url: "https://admin.example/x" is not an http(s) base URL without a path`, "admin.console.group: must not be empty"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(base+tc.yaml), nil, "/etc/latchkey")
			var got []string
			var p *Problems
			if errors.As(err, &p) {
				for _, pr := range p.List {
					got = append(got, pr.String())
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func defaultAdmin() Admin {
	return Admin{Listen: "127.0.0.1:5557", RateLimit: LimitRule{Limit: 600, Window: time.Minute},
		Console: AdminConsole{Group: "latchkey-admins", RequireMFA: true}}
}
