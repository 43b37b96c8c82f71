package e2e

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/internal/testenv"
)

// TestAccountSignInThroughBinary: with the account pages on, serve
// creates the built-in client latchkey-account, and a browser that opens
// /account without a session signs in on the login page and lands on
// /account signed in; a restart (config sync) keeps the client.
func TestAccountSignInThroughBinary(t *testing.T) {
	mp := testenv.StartMailpit(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := writeFile(t, dir, "l.yaml", sqliteConfig(dir, addr)+mailConfig(mp))
	if r := latchkey(t, "", "migrate", "up", "--config", cfg); r.code != 0 {
		t.Fatalf("migrate up: %d %s", r.code, r.stderr)
	}
	if r := latchkey(t, "a long password\n", "users", "create", "--username", "dave", "--email", "dave@example.com", "--email-verified", "--password-stdin", "--config", cfg); r.code != 0 {
		t.Fatalf("users create: %d %s", r.code, r.stderr)
	}
	issuer := "http://" + addr
	for round := range 2 { // the second start runs config sync over the built-in client
		s := startServe(t, cfg, addr)
		s.waitReady(t)
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
		resp, page := fetch(t, c, http.MethodGet, issuer+"/account", nil)
		if resp.StatusCode != 200 || resp.Request.URL.Path != "/login" || !strings.Contains(page, "Account console") {
			t.Fatalf("round %d: want the login page, got %d at %s\n%.1500s", round, resp.StatusCode, resp.Request.URL, page)
		}
		form := url.Values{"username": {"dave"}, "password": {"a long password"}}
		for _, m := range regexp.MustCompile(`name="(req|csrf)" value="([^"]*)"`).FindAllStringSubmatch(page, -1) {
			form.Set(m[1], m[2])
		}
		resp, page = fetch(t, c, http.MethodPost, issuer+"/login", form)
		if resp.StatusCode != 200 || resp.Request.URL.Path != "/account" || !strings.Contains(page, "Signed in as <strong>dave</strong>") {
			t.Fatalf("round %d: want the account page, got %d at %s\n%.1500s", round, resp.StatusCode, resp.Request.URL, page)
		}
		s.stop(t)
	}
	r := latchkey(t, "", "clients", "list", "--json", "--config", cfg)
	if !strings.Contains(r.stdout, `"latchkey-account"`) {
		t.Fatalf("clients list: %s", r.stdout)
	}
}
