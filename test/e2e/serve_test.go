package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkeyid/latchkey/internal/testenv"
)

// devKey is a 32-byte key-encryption key for tests only.
const devKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

func sqliteConfig(dir, addr string) string {
	return fmt.Sprintf(`issuer: http://%s
http:
  address: %s
storage:
  sqlite:
    path: %s
keys:
  encryptionKeys:
    - id: k1
      key: %s
logging:
  format: json
`, addr, addr, filepath.Join(dir, "latchkey.db"), devKey)
}

func postgresConfig(dsn, addr, extra string) string {
	return fmt.Sprintf(`issuer: http://%s
http:
  address: %s
storage:
  postgres:
    dsn: %s
keys:
  encryptionKeys:
    - id: k1
      key: %s
logging:
  format: json
%s`, addr, addr, dsn, devKey, extra)
}

func getJSON(t *testing.T, url string) (http.Header, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, body)
	}
	return resp.Header, v
}

// TestServeSQLite: serve on SQLite answers discovery and a JWKS with an
// RS256 and an ES256 key, with the CONTRACTS.md headers, and drains on
// SIGTERM with exit status 0.
func TestServeSQLite(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := writeFile(t, dir, "latchkey.yaml", sqliteConfig(dir, addr))
	s := startServe(t, cfg, addr)
	s.waitReady(t)

	h, disc := getJSON(t, "http://"+addr+"/.well-known/openid-configuration")
	if disc["issuer"] != "http://"+addr || disc["jwks_uri"] != "http://"+addr+"/keys" {
		t.Errorf("discovery issuer/jwks_uri: %v %v", disc["issuer"], disc["jwks_uri"])
	}
	for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("CSP = %q", h.Get("Content-Security-Policy"))
	}

	_, jwks := getJSON(t, "http://"+addr+"/keys")
	algs := map[string]int{}
	for _, k := range jwks["keys"].([]any) {
		m := k.(map[string]any)
		algs[m["alg"].(string)]++
		if _, ok := m["d"]; ok {
			t.Fatalf("private key material in JWKS: %v", m["kid"])
		}
	}
	// Signing + pre-published next key per algorithm.
	if algs["RS256"] != 2 || algs["ES256"] != 2 || len(algs) != 2 {
		t.Errorf("JWKS algorithms = %v, want RS256:2 ES256:2", algs)
	}

	s.stop(t)
	if s.exitErr != nil {
		t.Errorf("serve exit after SIGTERM: %v, want status 0", s.exitErr)
	}
	if !strings.Contains(s.logs.String(), "draining in-flight requests") {
		t.Errorf("no drain log line:\n%s", s.logs.String())
	}
}

// TestTwoServesMigrateOnce: two replicas starting together on one fresh
// PostgreSQL database apply each migration exactly once and agree on one
// keys record.
func TestTwoServesMigrateOnce(t *testing.T) {
	dsn := testenv.Postgres(t)
	dir := t.TempDir()
	var servers []*server
	var addrs []string
	for i := range 2 {
		addr := freeAddr(t)
		addrs = append(addrs, addr)
		cfg := writeFile(t, dir, fmt.Sprintf("r%d.yaml", i), postgresConfig(dsn, addr, ""))
		servers = append(servers, startServe(t, cfg, addr))
	}
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Add(1)
		go func() { defer wg.Done(); s.waitReady(t) }()
	}
	wg.Wait()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT version_id, count(*) FROM goose_db_version WHERE version_id > 0 GROUP BY version_id ORDER BY version_id`)
	if err != nil {
		t.Fatal(err)
	}
	applied := map[int64]int64{}
	for rows.Next() {
		var v, n int64
		if err := rows.Scan(&v, &n); err != nil {
			t.Fatal(err)
		}
		applied[v] = n
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	if len(applied) == 0 {
		t.Fatal("no migrations recorded")
	}
	for v, n := range applied {
		if n != 1 {
			t.Errorf("migration %d applied %d times, want 1", v, n)
		}
	}
	// Both replicas serve the same keys.
	_, j0 := getJSON(t, "http://"+addrs[0]+"/keys")
	_, j1 := getJSON(t, "http://"+addrs[1]+"/keys")
	if kids(j0) != kids(j1) {
		t.Errorf("replicas publish different keys:\n%s\n%s", kids(j0), kids(j1))
	}
}

func kids(jwks map[string]any) string {
	var out []string
	for _, k := range jwks["keys"].([]any) {
		out = append(out, k.(map[string]any)["kid"].(string))
	}
	return strings.Join(out, ",")
}

// TestConfigCheck: a broken config lists every problem with its key path
// and exits 1; a valid one exits 0.
func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	bad := writeFile(t, dir, "bad.yaml", `issuer: not a url
http:
  adress: 127.0.0.1:1
  readTimeout: soon
storage:
  sqlite: {path: x.db}
  postgres: {dsn: postgres://x}
keys:
  encryptionKeys:
    - id: k1
      key: c2hvcnQ=
clients:
  - client_id: app
    client_secret: ${LATCHKEY_E2E_UNSET_SECRET}
    redirect_uris: [https://app.example/cb]
`)
	r := latchkey(t, "", "config", "check", "--config", bad)
	if r.code != 1 {
		t.Fatalf("exit = %d, want 1\nstderr: %s", r.code, r.stderr)
	}
	for _, path := range []string{"issuer:", "http.adress:", "http.readTimeout:", "storage:", "keys.encryptionKeys[0].key:", "clients[0].client_secret:"} {
		if !strings.Contains(r.stderr, path) {
			t.Errorf("stderr lacks %q:\n%s", path, r.stderr)
		}
	}
	if r.stdout != "" {
		t.Errorf("stdout = %q, want empty", r.stdout)
	}

	good := writeFile(t, dir, "good.yaml", sqliteConfig(dir, "127.0.0.1:5599"))
	r = latchkey(t, "", "config", "check", "--config", good)
	if r.code != 0 || r.stdout != good+": valid\n" {
		t.Errorf("valid config: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "latchkey.db")); !os.IsNotExist(err) {
		t.Errorf("config check created the database (stat err %v)", err)
	}
}

// TestUnreachableStores: an unreachable database or Redis gives one clear
// message and exit status 1, and never prints the password.
func TestUnreachableStores(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	tests := []struct {
		name, cfg, want string
	}{
		{"postgres", postgresConfig("postgres://latchkey:pg-secret-pw@127.0.0.1:1/db?sslmode=disable&connect_timeout=2", addr, ""), "storage:"},
		{"redis", sqliteConfig(dir, addr) + "ephemeral:\n  redis:\n    addrs: [127.0.0.1:1]\n    password: redis-secret-pw\n", "ephemeral store:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := writeFile(t, dir, tc.name+".yaml", tc.cfg)
			r := latchkey(t, "", "serve", "--config", cfg)
			if r.code != 1 {
				t.Fatalf("exit = %d, want 1\n%s", r.code, r.stderr)
			}
			last := lastLine(r.stderr)
			if !strings.HasPrefix(last, "latchkey: "+tc.want) {
				t.Errorf("last stderr line = %q, want prefix %q", last, "latchkey: "+tc.want)
			}
			if strings.Contains(r.stderr, "secret-pw") {
				t.Errorf("password leaked:\n%s", r.stderr)
			}
		})
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}
