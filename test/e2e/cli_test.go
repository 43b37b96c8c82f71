package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkeyid/latchkey/internal/testenv"
)

// migrated writes a SQLite config and migrates it; returns the config path.
func migrated(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := writeFile(t, dir, "l.yaml", sqliteConfig(dir, freeAddr(t))+extra)
	if r := latchkey(t, "", "migrate", "up", "--config", cfg); r.code != 0 {
		t.Fatalf("migrate up: %d %s", r.code, r.stderr)
	}
	return cfg
}

var secretLine = regexp.MustCompile(`^[A-Za-z0-9_-]{22,43}\n$`)

func TestCLIUsers(t *testing.T) {
	cfg := migrated(t, "")

	r := latchkey(t, "s3cret pass\n", "users", "create", "--username", "alice", "--email", "alice@example.com",
		"--email-verified", "--group", "admins", "--group", "dev", "--password-stdin", "--config", cfg)
	if r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, `created user "alice"`) {
		t.Fatalf("create with --password-stdin: code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	r = latchkey(t, "", "users", "create", "--username", "bob", "--config", cfg)
	if r.code != 0 || !secretLine.MatchString(r.stdout) {
		t.Fatalf("generated password must be stdout alone: code %d stdout %q", r.code, r.stdout)
	}
	r = latchkey(t, "", "users", "create", "--username", "carol", "--json", "--config", cfg)
	var created map[string]string
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &created) != nil || created["username"] != "carol" || len(created["password"]) != 22 || created["id"] == "" {
		t.Fatalf("--json: code %d stdout %q", r.code, r.stdout)
	}
	r = latchkey(t, "x\n", "users", "create", "--username", "alice", "--password-stdin", "--config", cfg)
	if r.code != 1 || lastLine(r.stderr) != `latchkey: user "alice" already exists` {
		t.Fatalf("duplicate: %d %q", r.code, r.stderr)
	}

	r = latchkey(t, "", "users", "list", "--json", "--config", cfg)
	var list struct {
		Users []struct {
			Username      string   `json:"username"`
			Email         string   `json:"email"`
			EmailVerified bool     `json:"email_verified"`
			Groups        []string `json:"groups"`
			Disabled      bool     `json:"disabled"`
		} `json:"users"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Users) != 3 {
		t.Fatalf("list: %v %s", err, r.stdout)
	}
	if strings.Contains(r.stdout, "argon2") {
		t.Fatal("users list prints password hashes")
	}
	var alice = list.Users[0]
	for _, u := range list.Users {
		if u.Username == "alice" {
			alice = u
		}
	}
	if alice.Email != "alice@example.com" || !alice.EmailVerified || strings.Join(alice.Groups, ",") != "admins,dev" {
		t.Errorf("alice = %+v", alice)
	}

	if r = latchkey(t, "new pass\n", "users", "set-password", "--username", "alice", "--password-stdin", "--config", cfg); r.code != 0 {
		t.Fatalf("set-password: %d %s", r.code, r.stderr)
	}
	if r = latchkey(t, "", "users", "disable", "--username", "alice", "--config", cfg); r.code != 0 {
		t.Fatalf("disable: %d %s", r.code, r.stderr)
	}
	if r = latchkey(t, "", "users", "delete", "--username", "bob", "--config", cfg); r.code != 0 {
		t.Fatalf("delete: %d %s", r.code, r.stderr)
	}
	if r = latchkey(t, "", "users", "delete", "--username", "bob", "--config", cfg); r.code != 1 || lastLine(r.stderr) != `latchkey: no user "bob"` {
		t.Fatalf("delete missing: %d %q", r.code, r.stderr)
	}
	r = latchkey(t, "", "audit", "list", "--json", "--config", cfg)
	var events struct {
		Events []struct{ Type string } `json:"events"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &events); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range events.Events {
		if strings.HasPrefix(e.Type, "user.") {
			types = append(types, e.Type)
		}
	}
	want := "user.created,user.created,user.created,user.password_changed,user.disabled,user.deleted"
	if strings.Join(types, ",") != want {
		t.Errorf("audit = %v, want %s", types, want)
	}
}

func TestCLIClients(t *testing.T) {
	cfg := migrated(t, `clients:
  - client_id: from-config
    client_secret: x
    redirect_uris: [https://cfg.example/cb]
`)
	// serve once so the config client is synced into storage.
	dir := filepath.Dir(cfg)
	r := latchkey(t, "", "clients", "create", "--id", "web", "--redirect-uri", "https://app.example/cb", "--config", cfg)
	if r.code != 0 || !regexp.MustCompile(`^[A-Za-z0-9_-]{43}\n$`).MatchString(r.stdout) {
		t.Fatalf("generated secret must be stdout alone (256-bit base64url): %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = latchkey(t, "", "clients", "create", "--id", "spa", "--public", "--redirect-uri", "http://127.0.0.1/cb", "--config", cfg)
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("public client: %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = latchkey(t, "given-secret\n", "clients", "create", "--id", "svc", "--secret-stdin", "--grant-types", "authorization_code,refresh_token",
		"--redirect-uri", "https://svc.example/cb", "--config", cfg)
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("--secret-stdin: %d %q %q", r.code, r.stdout, r.stderr)
	}
	meta := writeFile(t, dir, "meta.json", `{"client_name":"Meta","token_endpoint_auth_method":"client_secret_post","logo_uri":"https://m.example/logo.png","redirect_uris":["https://m.example/cb"],"first_party":false}`)
	r = latchkey(t, "", "clients", "create", "--id", "meta", "--metadata", meta, "--json", "--config", cfg)
	var out map[string]string
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &out) != nil || out["client_id"] != "meta" || len(out["client_secret"]) != 43 {
		t.Fatalf("--metadata --json: %d %q %q", r.code, r.stdout, r.stderr)
	}
	bad := writeFile(t, dir, "bad.json", `{"redirect_uris":["https://a.example/cb#frag","javascript:alert(1)"],"grant_types":["implicit"],"colour":"red"}`)
	r = latchkey(t, "", "clients", "create", "--id", "bad", "--metadata", bad, "--config", cfg)
	if r.code != 1 {
		t.Fatalf("bad metadata: %d %q", r.code, r.stderr)
	}
	for _, want := range []string{"colour: unknown key", "redirect_uris[0]", "redirect_uris[1]", "grant_types[0]"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("bad metadata error lacks %q:\n%s", want, r.stderr)
		}
	}

	r = latchkey(t, "", "clients", "list", "--json", "--config", cfg)
	var list struct {
		Clients []struct {
			ID    string         `json:"client_id"`
			Extra map[string]any `json:"extra"`
			Hash  string         `json:"secret_hash"`
		} `json:"clients"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Clients) != 4 {
		t.Fatalf("list: %v %s", err, r.stdout)
	}
	for _, c := range list.Clients {
		if c.Hash != "" {
			t.Errorf("client %s: list shows the secret hash", c.ID)
		}
		if c.ID == "meta" && c.Extra["logo_uri"] != "https://m.example/logo.png" {
			t.Errorf("meta extra = %v", c.Extra)
		}
	}
	if r = latchkey(t, "", "clients", "delete", "--id", "spa", "--config", cfg); r.code != 0 {
		t.Fatalf("delete: %d %s", r.code, r.stderr)
	}

	// A config-managed client is read-only through the CLI.
	s := startServe(t, cfg, addrOf(t, cfg))
	s.waitReady(t)
	s.stop(t)
	r = latchkey(t, "", "clients", "delete", "--id", "from-config", "--config", cfg)
	if r.code != 1 || lastLine(r.stderr) != `latchkey: client "from-config" is managed by the config file: remove it there` {
		t.Fatalf("delete config client: %d %q", r.code, r.stderr)
	}
}

// TestTwoServesRotateOnce: two replicas on one PostgreSQL with a short
// rotation period rotate once per period between them, not once each.
func TestTwoServesRotateOnce(t *testing.T) {
	dsn := testenv.Postgres(t)
	dir := t.TempDir()
	extra := "  rotationPeriod: 6s\n  prePublish: 1s\n  checkInterval: 200ms\n"
	var servers []*server
	for i := range 2 {
		addr := freeAddr(t)
		body := strings.Replace(postgresConfig(dsn, addr, ""), "keys:\n", "keys:\n"+extra, 1)
		servers = append(servers, startServe(t, writeFile(t, dir, fmt.Sprintf("r%d.yaml", i), body), addr))
	}
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Add(1)
		go func() { defer wg.Done(); s.waitReady(t) }()
	}
	wg.Wait()
	start := time.Now()
	// Wait until one rotation is due and both replicas have checked many
	// times past it (200 ms interval), but the second is not due yet.
	time.Sleep(8 * time.Second)
	elapsed := time.Since(start)
	for _, s := range servers {
		s.stop(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var created, rotated int
	if err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE type = 'keys.created'), count(*) FILTER (WHERE type = 'keys.rotated') FROM audit_events`).Scan(&created, &rotated); err != nil {
		t.Fatal(err)
	}
	if created != 1 {
		t.Errorf("keys.created events = %d, want 1", created)
	}
	// Rotations happen every 6 s from creation; in 8 s plus start-up at
	// most two periods can have passed (never 2 per period).
	maxRotations := int((elapsed + 3*time.Second) / (6 * time.Second))
	if rotated < 1 || rotated > maxRotations {
		t.Errorf("keys.rotated events = %d, want between 1 and %d (one per period across both replicas)", rotated, maxRotations)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func addrOf(t *testing.T, cfg string) string {
	t.Helper()
	m := regexp.MustCompile(`address: (\S+)`).FindStringSubmatch(readFile(t, cfg))
	if m == nil {
		t.Fatal("no address in config")
	}
	return m[1]
}
