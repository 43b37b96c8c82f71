package e2e

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/internal/testenv"
)

// sessReceiver is a relying party's back-channel logout endpoint on
// 127.0.0.1; it keeps the logout tokens it was sent.
type sessReceiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	tokens []string
}

func newSessReceiver(t *testing.T) *sessReceiver {
	r := &sessReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if err := req.ParseForm(); err == nil {
			r.mu.Lock()
			r.tokens = append(r.tokens, req.PostForm.Get("logout_token"))
			r.mu.Unlock()
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// sids are the sid claims of the logout tokens received (not verified:
// the web tests verify logout tokens with jose).
func (r *sessReceiver) sids(t *testing.T) []string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []string{}
	for _, tok := range r.tokens {
		out = append(out, sessClaims(t, tok)["sid"].(string))
	}
	return out
}

func sessClaims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

var sessHiddenRE = regexp.MustCompile(`name="(req|csrf)" value="([^"]*)"`)

// sessLogin signs a new browser in as username through client "web" and
// returns the browser and the ID token's sid.
func sessLogin(t *testing.T, base, username, password, secret string) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Host != via[0].URL.Host {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	verifier := strings.Repeat("v", 43)
	sum := sha256.Sum256([]byte(verifier))
	resp, page := fetch(t, browser, "GET", sessAuthorize(base, base64.RawURLEncoding.EncodeToString(sum[:]), ""), nil)
	if resp.StatusCode != 200 || !strings.Contains(page, `name="password"`) {
		t.Fatalf("login page: %d\n%s", resp.StatusCode, page)
	}
	form := url.Values{"username": {username}, "password": {password}}
	for _, m := range sessHiddenRE.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], m[2])
	}
	resp, page = fetch(t, browser, "POST", base+"/login", form)
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("after login: %d %q\n%s", resp.StatusCode, resp.Header.Get("Location"), page)
	}
	tr := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {"https://web.example/cb"}, "code_verifier": {verifier}}
	req, _ := http.NewRequest(http.MethodPost, base+"/token", strings.NewReader(tr.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("web", secret)
	tresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer tresp.Body.Close()
	var tok struct {
		IDToken string `json:"id_token"`
	}
	body, _ := io.ReadAll(tresp.Body)
	if err := json.Unmarshal(body, &tok); err != nil || tok.IDToken == "" {
		t.Fatalf("token response %d: %s", tresp.StatusCode, body)
	}
	return browser, sessClaims(t, tok.IDToken)["sid"].(string)
}

func sessAuthorize(base, challenge, prompt string) string {
	v := url.Values{"client_id": {"web"}, "redirect_uri": {"https://web.example/cb"}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"st"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	if prompt != "" {
		v.Set("prompt", prompt)
	}
	return base + "/authorize?" + v.Encode()
}

// sessPromptNone answers the error (or "code") of a prompt=none request
// in browser.
func sessPromptNone(t *testing.T, browser *http.Client, base string) string {
	t.Helper()
	resp, _ := fetch(t, browser, "GET", sessAuthorize(base, strings.Repeat("c", 43), "none"), nil)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc == nil || loc.Query().Get("state") != "st" {
		t.Fatalf("prompt=none: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if loc.Query().Get("code") != "" {
		return "code"
	}
	return loc.Query().Get("error")
}

type sessRow struct {
	SID         string   `json:"sid"`
	ConnectorID string   `json:"connector_id"`
	AMR         []string `json:"amr"`
	Clients     []string `json:"clients"`
}

func sessList(t *testing.T, cfg, username string) []sessRow {
	t.Helper()
	r := latchkey(t, "", "sessions", "list", "--username", username, "--json", "--config", cfg)
	var out struct {
		Username string    `json:"username"`
		Sessions []sessRow `json:"sessions"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &out) != nil || out.Username != username {
		t.Fatalf("sessions list: %d %q %q", r.code, r.stdout, r.stderr)
	}
	return out.Sessions
}

// TestCLISessions: `latchkey sessions list|revoke` and `users disable`
// work on the stores a running serve uses (SQLite alone, PostgreSQL with
// Redis): they see the sessions the server made, and ending them (by id,
// all, or by disabling the user) signs the browser out and sends the
// client a back-channel logout token.
func TestCLISessions(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(t *testing.T, dir, addr string) string
	}{
		{"sqlite", func(t *testing.T, dir, addr string) string { return sqliteConfig(dir, addr) }},
		{"postgres+redis", func(t *testing.T, dir, addr string) string {
			addrs, prefix := testenv.Redis(t)
			return postgresConfig(testenv.Postgres(t), addr, fmt.Sprintf("ephemeral:\n  redis:\n    addrs: [%s]\n  keyPrefix: %q\n", strings.Join(addrs, ","), prefix))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			addr := freeAddr(t)
			recv := newSessReceiver(t)
			body := tc.cfg(t, dir, addr) + "outbound:\n  allowedNetworks: [127.0.0.0/8]\n"
			cfg := writeFile(t, dir, "l.yaml", body)
			if r := latchkey(t, "", "migrate", "up", "--config", cfg); r.code != 0 {
				t.Fatalf("migrate up: %d %s", r.code, r.stderr)
			}
			meta := writeFile(t, dir, "web.json", fmt.Sprintf(`{"backchannel_logout_uri": %q, "backchannel_logout_session_required": true}`, recv.srv.URL+"/bc"))
			const secret = "web-client-secret-0123456789"
			if r := latchkey(t, secret+"\n", "clients", "create", "--id", "web", "--redirect-uri", "https://web.example/cb",
				"--metadata", meta, "--secret-stdin", "--config", cfg); r.code != 0 {
				t.Fatalf("clients create: %d %s", r.code, r.stderr)
			}
			if r := latchkey(t, "alice pass\n", "users", "create", "--username", "alice", "--password-stdin", "--config", cfg); r.code != 0 {
				t.Fatalf("users create: %d %s", r.code, r.stderr)
			}
			s := startServe(t, cfg, addr)
			s.waitReady(t)
			base := "http://" + addr

			b1, sid1 := sessLogin(t, base, "alice", "alice pass", secret)
			b2, sid2 := sessLogin(t, base, "alice", "alice pass", secret)
			got := sessList(t, cfg, "alice")
			if len(got) != 2 || got[0].SID != sid1 || got[1].SID != sid2 || got[0].ConnectorID != "local" ||
				strings.Join(got[0].Clients, ",") != "web" || strings.Join(got[0].AMR, ",") != "pwd" {
				t.Fatalf("sessions list = %+v, want %s then %s", got, sid1, sid2)
			}
			r := latchkey(t, "", "sessions", "list", "--username", "alice", "--config", cfg)
			if r.code != 0 || !strings.HasPrefix(r.stdout, "SID") || !strings.Contains(r.stdout, sid1) {
				t.Errorf("sessions list (text): %d %q", r.code, r.stdout)
			}

			// One session by id.
			r = latchkey(t, "", "sessions", "revoke", "--username", "alice", "--id", sid1, "--config", cfg)
			if r.code != 0 || lastLine(r.stderr) != "alice: ended 1 session(s)" {
				t.Fatalf("sessions revoke --id: %d %q", r.code, r.stderr)
			}
			if got := recv.sids(t); strings.Join(got, ",") != sid1 {
				t.Errorf("logout tokens for %v, want %s", got, sid1)
			}
			if e := sessPromptNone(t, b1, base); e != "login_required" {
				t.Errorf("revoked browser: %s", e)
			}
			if e := sessPromptNone(t, b2, base); e != "code" {
				t.Errorf("other browser after revoking one session: %s", e)
			}
			r = latchkey(t, "", "sessions", "revoke", "--username", "alice", "--id", sid1, "--config", cfg)
			if r.code != 1 || lastLine(r.stderr) != fmt.Sprintf(`latchkey: user "alice" has no session %q`, sid1) {
				t.Errorf("revoke an ended session: %d %q", r.code, r.stderr)
			}

			// Disabling the user ends the rest.
			r = latchkey(t, "", "users", "disable", "--username", "alice", "--config", cfg)
			if r.code != 0 || !strings.Contains(r.stderr, "alice: disabled\n") || lastLine(r.stderr) != "alice: ended 1 session(s)" {
				t.Fatalf("users disable: %d %q", r.code, r.stderr)
			}
			if got := recv.sids(t); strings.Join(got, ",") != sid1+","+sid2 {
				t.Errorf("logout tokens for %v, want %s,%s", got, sid1, sid2)
			}
			if got := sessList(t, cfg, "alice"); len(got) != 0 {
				t.Errorf("sessions after disabling: %+v", got)
			}
			if e := sessPromptNone(t, b2, base); e != "login_required" {
				t.Errorf("browser of a disabled user: %s", e)
			}
			r = latchkey(t, "", "sessions", "revoke", "--username", "alice", "--json", "--config", cfg)
			if r.code != 0 || strings.TrimSpace(r.stdout) != "{\n  \"ended\": 0,\n  \"username\": \"alice\"\n}" {
				t.Errorf("revoke with nothing left: %d %q %q", r.code, r.stdout, r.stderr)
			}
			if r = latchkey(t, "", "sessions", "list", "--username", "nobody", "--config", cfg); r.code != 1 || lastLine(r.stderr) != `latchkey: no user "nobody"` {
				t.Errorf("list for an unknown user: %d %q", r.code, r.stderr)
			}

			r = latchkey(t, "", "audit", "list", "--type", "session.ended", "--json", "--config", cfg)
			var events struct {
				Events []struct {
					Actor string         `json:"actor"`
					Data  map[string]any `json:"data"`
				} `json:"events"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &events); err != nil {
				t.Fatal(err)
			}
			var reasons []string
			for _, e := range events.Events {
				reasons = append(reasons, e.Actor+":"+e.Data["reason"].(string)+":"+e.Data["sid"].(string))
			}
			if want := []string{"cli:revoked:" + sid1, "cli:user_disabled:" + sid2}; strings.Join(reasons, " ") != strings.Join(want, " ") {
				t.Errorf("session.ended events %v, want %v", reasons, want)
			}
		})
	}
}
