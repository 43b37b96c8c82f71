package e2e

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/latchkeyid/latchkey/internal/testenv"
)

// mailConfig is notify.email sending to mp (the account pages' switch).
func mailConfig(mp *testenv.Mailpit) string {
	return fmt.Sprintf(`notify:
  email:
    host: %s
    port: %d
    tls: none
    from: "Latchkey <id@example.com>"
`, mp.SMTPHost, mp.SMTPPort)
}

// TestAccountEmailThroughBinary: notify.email in the config file wires
// the account mail: `users create` mails a verification link (to a real
// SMTP sink), and the served link confirms the address.
func TestAccountEmailThroughBinary(t *testing.T) {
	mp := testenv.StartMailpit(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	extra := mailConfig(mp) + `    product: Example ID
mfa:
  email: {enabled: true}
accounts:
  breachedPasswords: leaked.txt
`
	writeFile(t, dir, "leaked.txt", "password1234\n")
	cfg := writeFile(t, dir, "l.yaml", sqliteConfig(dir, addr)+extra)
	if r := latchkey(t, "", "config", "check", "--config", cfg); r.code != 0 {
		t.Fatalf("config check: %d %s", r.code, r.stderr)
	}
	if r := latchkey(t, "", "migrate", "up", "--config", cfg); r.code != 0 {
		t.Fatalf("migrate up: %d %s", r.code, r.stderr)
	}
	if r := latchkey(t, "a long password\n", "users", "create", "--username", "dave", "--email", "dave@example.com", "--password-stdin", "--config", cfg); r.code != 0 || strings.Contains(r.stderr, "not sent") {
		t.Fatalf("users create: %d %s", r.code, r.stderr)
	}
	m := mp.Latest("dave@example.com")
	link := regexp.MustCompile(`http://[^\s]+/account/verify-email\?token=[^\s]+`).FindString(m.Text)
	if m.Subject != "Confirm your e-mail address for Example ID" || !strings.HasPrefix(link, "http://"+addr+"/") {
		t.Fatalf("mail %q:\n%s", m.Subject, m.Text)
	}

	s := startServe(t, cfg, addr)
	s.waitReady(t)
	resp, page := fetch(t, http.DefaultClient, http.MethodGet, link, nil)
	tok := regexp.MustCompile(`name="token" value="([^"]+)"`).FindStringSubmatch(page)
	if resp.StatusCode != 200 || tok == nil {
		t.Fatalf("link page: %d\n%s", resp.StatusCode, page)
	}
	resp, page = fetch(t, http.DefaultClient, http.MethodPost, "http://"+addr+"/account/verify-email", url.Values{"token": {html.UnescapeString(tok[1])}})
	if resp.StatusCode != 200 || !strings.Contains(page, "Your e-mail address is confirmed.") {
		t.Fatalf("confirm: %d\n%s", resp.StatusCode, page)
	}
	r := latchkey(t, "", "users", "list", "--json", "--config", cfg)
	if !strings.Contains(r.stdout, `"email_verified": true`) {
		t.Fatalf("users list: %s", r.stdout)
	}
	if strings.Contains(s.logs.String(), html.UnescapeString(tok[1])) {
		t.Fatal("the link token is in the server log")
	}
}
