package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIConnectors: create, update, list and delete run-time connectors
// from a file validated as a `connectors:` entry; secrets never show;
// config-managed connectors are read-only.
func TestCLIConnectors(t *testing.T) {
	const (
		secret    = "upstream-s3cret-value"
		cfgSecret = "config-s3cret-value"
	)
	cfg := migrated(t, `connectors:
  - id: from-config
    type: oidc
    name: Config IdP
    config:
      issuer: https://config.example.com
      clientID: cfg-client
      clientSecret: `+cfgSecret+`
`)
	dir := filepath.Dir(cfg)

	good := writeFile(t, dir, "acme.yaml", `id: acme
type: oidc
name: Acme
config:
  issuer: https://accounts.example.com
  clientID: latchkey
  clientSecret: `+secret+`
`)
	r := latchkey(t, "", "connectors", "create", "--file", good, "--config", cfg)
	if r.code != 0 || r.stdout != "" || lastLine(r.stderr) != `created oidc connector "acme"` {
		t.Fatalf("create: %d %q %q", r.code, r.stdout, r.stderr)
	}

	bad := writeFile(t, dir, "bad.json", `{"id":"broken","type":"oidc","config":{"issuer":"https://accounts.example.com"},"colour":"red"}`)
	r = latchkey(t, "", "connectors", "create", "--file", bad, "--config", cfg)
	if r.code != 1 || r.stdout != "" {
		t.Fatalf("invalid file: %d %q %q", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"colour: unknown key", "config.clientID: required"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("invalid file error lacks %q:\n%s", want, r.stderr)
		}
	}
	if !strings.HasPrefix(r.stderr, "latchkey: ") {
		t.Errorf("invalid file error = %q, want a latchkey: prefix", r.stderr)
	}

	r = latchkey(t, "", "connectors", "create", "--file", good, "--config", cfg)
	if r.code != 1 || lastLine(r.stderr) != "latchkey: connector \"acme\" already exists: use `latchkey connectors update`" {
		t.Fatalf("duplicate create: %d %q", r.code, r.stderr)
	}

	renamed := writeFile(t, dir, "acme2.json", `{"id":"acme","type":"oidc","name":"Acme SSO","config":{"issuer":"https://accounts.example.com","clientID":"latchkey","clientSecret":"`+secret+`"}}`)
	r = latchkey(t, "", "connectors", "update", "--file", renamed, "--config", cfg)
	if r.code != 0 || r.stdout != "" || lastLine(r.stderr) != `updated oidc connector "acme"` {
		t.Fatalf("update: %d %q %q", r.code, r.stdout, r.stderr)
	}
	missing := writeFile(t, dir, "ghost.yaml", `{"id":"ghost","type":"oidc","config":{"issuer":"https://accounts.example.com","clientID":"x","clientSecret":"y"}}`)
	r = latchkey(t, "", "connectors", "update", "--file", missing, "--config", cfg)
	if r.code != 1 || lastLine(r.stderr) != "latchkey: no connector \"ghost\": use `latchkey connectors create`" {
		t.Fatalf("update missing: %d %q", r.code, r.stderr)
	}

	// serve once so the config connector is synced into storage.
	s := startServe(t, cfg, addrOf(t, cfg))
	s.waitReady(t)
	s.stop(t)

	type row struct {
		ID, Type, Name, Source string
	}
	var list struct {
		Connectors []row `json:"connectors"`
	}
	r = latchkey(t, "", "connectors", "list", "--json", "--config", cfg)
	if err := json.Unmarshal([]byte(r.stdout), &list); r.code != 0 || err != nil {
		t.Fatalf("list --json: %d %v %q %q", r.code, err, r.stdout, r.stderr)
	}
	got := map[string]row{}
	for _, c := range list.Connectors {
		got[c.ID] = c
	}
	if got["acme"] != (row{"acme", "oidc", "Acme SSO", "storage"}) || got["from-config"] != (row{"from-config", "oidc", "Config IdP", "config"}) {
		t.Errorf("list --json = %+v", list.Connectors)
	}
	text := latchkey(t, "", "connectors", "list", "--config", cfg)
	if text.code != 0 || !strings.Contains(text.stdout, "acme") || !strings.Contains(text.stdout, "storage") || !strings.Contains(text.stdout, "config") {
		t.Errorf("list: %d %q %q", text.code, text.stdout, text.stderr)
	}
	for _, out := range []string{r.stdout, r.stderr, text.stdout, text.stderr} {
		if strings.Contains(out, secret) || strings.Contains(out, cfgSecret) || strings.Contains(out, "sealed:") {
			t.Errorf("list shows a secret:\n%s", out)
		}
	}

	// Config-managed connectors are read-only.
	cfgFile := writeFile(t, dir, "fromcfg.yaml", `{"id":"from-config","type":"oidc","config":{"issuer":"https://x.example.com","clientID":"x","clientSecret":"y"}}`)
	r = latchkey(t, "", "connectors", "update", "--file", cfgFile, "--config", cfg)
	if r.code != 1 || lastLine(r.stderr) != `latchkey: connector "from-config" is managed by the config file: change it there` {
		t.Fatalf("update config connector: %d %q", r.code, r.stderr)
	}
	r = latchkey(t, "", "connectors", "delete", "--id", "from-config", "--config", cfg)
	if r.code != 1 || lastLine(r.stderr) != `latchkey: connector "from-config" is managed by the config file: remove it there` {
		t.Fatalf("delete config connector: %d %q", r.code, r.stderr)
	}

	r = latchkey(t, "", "connectors", "delete", "--id", "acme", "--config", cfg)
	if r.code != 0 || lastLine(r.stderr) != `deleted connector "acme"` {
		t.Fatalf("delete: %d %q", r.code, r.stderr)
	}
	r = latchkey(t, "", "connectors", "delete", "--id", "acme", "--config", cfg)
	if r.code != 1 || lastLine(r.stderr) != `latchkey: no connector "acme"` {
		t.Fatalf("delete again: %d %q", r.code, r.stderr)
	}

	r = latchkey(t, "", "audit", "list", "--type", "connector.created", "--json", "--config", cfg)
	if r.code != 0 || !strings.Contains(r.stdout, `"acme"`) {
		t.Errorf("audit connector.created: %d %q", r.code, r.stdout)
	}
}
