package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestSecretRedaction(t *testing.T) {
	s := Secret("hunter2")
	b := SecretBytes("key-bytes")
	c := ConnectorSettings{raw: json.RawMessage(`{"clientSecret":"hunter2"}`)}
	jsonOf := func(v any) string {
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	textOf := func(v interface{ MarshalText() ([]byte, error) }) string {
		out, err := v.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	yamlOf := func(v any) string {
		out, err := yaml.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	tests := []struct {
		name, got, want string
	}{
		{"Secret String", s.String(), "REDACTED"},
		{"Secret GoString", s.GoString(), "REDACTED"},
		{"Secret %v", fmt.Sprintf("%v", s), "REDACTED"},
		{"Secret %s", fmt.Sprintf("%s", s), "REDACTED"},
		{"Secret %q", fmt.Sprintf("%q", s), "REDACTED"},
		{"Secret %x", fmt.Sprintf("%x", s), "REDACTED"},
		{"Secret %d", fmt.Sprintf("%d", s), "REDACTED"},
		{"Secret %#v", fmt.Sprintf("%#v", s), "REDACTED"},
		{"Secret JSON", jsonOf(s), `"REDACTED"`},
		{"Secret text", textOf(s), "REDACTED"},
		{"Secret YAML", yamlOf(s), "REDACTED\n"},
		{"Secret LogValue", s.LogValue().String(), "REDACTED"},
		{"Secret Reveal", s.Reveal(), "hunter2"},
		{"empty Secret", fmt.Sprintf("%v|%s", Secret(""), jsonOf(Secret(""))), `|""`},
		{"SecretBytes %v", fmt.Sprintf("%v", b), "REDACTED"},
		{"SecretBytes %x", fmt.Sprintf("%x", b), "REDACTED"},
		{"SecretBytes %#v", fmt.Sprintf("%#v", b), "REDACTED"},
		{"SecretBytes JSON", jsonOf(b), `"REDACTED"`},
		{"SecretBytes text", textOf(b), "REDACTED"},
		{"SecretBytes LogValue", b.LogValue().String(), "REDACTED"},
		{"SecretBytes Reveal", string(b.Reveal()), "key-bytes"},
		{"ConnectorSettings %+v", fmt.Sprintf("%+v", c), "REDACTED"},
		{"ConnectorSettings JSON", jsonOf(c), `"REDACTED"`},
		{"ConnectorSettings JSON()", string(c.JSON()), `{"clientSecret":"hunter2"}`},
		{"empty ConnectorSettings JSON()", string(ConnectorSettings{}.JSON()), `{}`},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
		}
	}

	// Reveal returns a copy.
	r := b.Reveal()
	r[0] = 'X'
	if string(b) != "key-bytes" {
		t.Error("SecretBytes.Reveal returned the backing array")
	}
}

// secretValues are the secrets of fullConfig, as they would leak.
func secretValues() []string {
	return []string{
		"pg-pass-123", "redis-pass-000", "web-app-secret-456", "github-secret-789",
		"corp-secret-111", key32, key32URL, strings.TrimRight(key32, "="),
		string(byteRange(0, 32)), string(byteRange(100, 32)),
	}
}

func assertNoSecret(t *testing.T, what, s string) {
	t.Helper()
	for _, v := range secretValues() {
		if strings.Contains(s, v) {
			t.Errorf("%s contains the secret %q:\n%s", what, v, s)
		}
	}
}

// TestConfigDoesNotPrintSecrets formats, encodes and logs a whole Config.
func TestConfigDoesNotPrintSecrets(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, fullFiles())
	cfg := mustParse(t, fullConfig, fullEnv(), dir)

	// The values are in the Config...
	if cfg.Storage.Postgres.DSN.Reveal() == "" || cfg.Clients[0].Secret.Reveal() != "web-app-secret-456" {
		t.Fatal("secrets missing from the config")
	}
	// ...but nowhere in its printed forms. Pointers are followed one level
	// by printing the sections themselves too.
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x", "%X", "%t"} {
		for name, v := range map[string]any{
			"cfg": cfg, "*cfg": *cfg, "storage.postgres": *cfg.Storage.Postgres,
			"ephemeral.redis": *cfg.Ephemeral.Redis, "keys": cfg.Keys, "clients": cfg.Clients,
			"connectors": cfg.Connectors,
		} {
			assertNoSecret(t, fmt.Sprintf("fmt %s of %s", verb, name), fmt.Sprintf(verb, v))
		}
	}
	// %p of a non-pointer prints the value raw, bypassing every method; go
	// vet reports that misuse. Of the pointer it prints the address.
	if got, want := fmt.Sprintf("%p", cfg), fmt.Sprintf("0x%x", reflect.ValueOf(cfg).Pointer()); got != want {
		t.Errorf("%%p of cfg = %s, want %s", got, want)
	}
	out, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "json.Marshal", string(out))
	y, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "yaml.Marshal", string(y))

	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		l := slog.New(h)
		l.Info("config", "cfg", cfg, "redis", cfg.Ephemeral.Redis, "dsn", cfg.Storage.Postgres.DSN,
			"key", cfg.Keys.EncryptionKeys[0].Key, "secret", cfg.Clients[0].Secret, "conn", cfg.Connectors[0].Config)
	}
	assertNoSecret(t, "slog", buf.String())
	if !strings.Contains(buf.String(), "dsn=REDACTED") || !strings.Contains(buf.String(), `"secret":"REDACTED"`) {
		t.Errorf("slog output does not show REDACTED:\n%s", buf.String())
	}
}

// TestProblemsDoNotQuoteSecrets breaks every secret-bearing key.
func TestProblemsDoNotQuoteSecrets(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"secrets/db": "web-app-secret-456\n"})
	src := `issuer: https://id.example.com
storage:
  postgres: {dsn: "mysql://u:${PGPASS}@h/db"}
ephemeral:
  redis: {addrs: ["r:1"], password: "${GITHUB_SECRET}", db: "file:secrets/db"}
keys:
  encryptionKeys:
    - {id: a, key: "${PGPASS}"}
    - {id: b, key: "corp-secret-111"}
tokens:
  codeTTL: ${PGPASS}
http:
  maxBodyBytes: "${GITHUB_SECRET}"
  address: "${WEB_APP_SECRET}"
clients:
  - client_id: a
    public: true
    client_secret: redis-pass-000
    redirect_uris: [https://a.example/cb]
`
	_, err := Parse([]byte(src), envOf(fullEnv()), dir)
	problems := problemsOf(t, err)
	if len(problems) < 6 {
		t.Errorf("expected problems for every broken key, got:\n%v", err)
	}
	assertNoSecret(t, "Problems", err.Error())
}
