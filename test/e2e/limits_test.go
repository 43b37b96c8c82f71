package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestLoginLockoutAndTokenLimit: repeated password failures lock the
// account (429 with Retry-After, even for the right password, and one
// user.locked event); the token endpoint limits each client.
func TestLoginLockoutAndTokenLimit(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := writeFile(t, dir, "l.yaml", sqliteConfig(dir, addr)+`limits:
  lockout: {threshold: 2, baseDelay: 30s, maxDelay: 1m}
  tokenPerClient: {limit: 2, window: 1m}
clients:
  - client_id: app
    client_secret: app-secret
    redirect_uris: [https://app.example/cb]
    require_pkce: false
`)
	s := startServe(t, cfg, addr)
	s.waitReady(t)
	if r := latchkey(t, "right-pw\n", "users", "create", "--username", "alice", "--password-stdin", "--config", cfg); r.code != 0 {
		t.Fatalf("users create: %s", r.stderr)
	}
	issuer := "http://" + addr

	attempt := func(password string) (*http.Response, string) {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if req.URL.Host == "app.example" {
				return http.ErrUseLastResponse
			}
			return nil
		}}
		_, page := fetch(t, c, "GET", issuer+"/authorize?client_id=app&response_type=code&scope=openid&redirect_uri="+url.QueryEscape("https://app.example/cb"), nil)
		form := url.Values{"username": {"Alice "}, "password": {password}}
		for _, m := range regexp.MustCompile(`name="(req|csrf)" value="([^"]*)"`).FindAllStringSubmatch(page, -1) {
			form.Set(m[1], m[2])
		}
		return fetch(t, c, "POST", issuer+"/login", form)
	}
	for i := range 2 {
		resp, page := attempt("wrong")
		if resp.StatusCode != 200 || !strings.Contains(page, "Incorrect username or password.") {
			t.Fatalf("failure %d: %d", i+1, resp.StatusCode)
		}
	}
	resp, page := attempt("right-pw")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(page, "Too many attempts") {
		t.Fatalf("locked account, right password: %d Retry-After=%q\n%.300s", resp.StatusCode, resp.Header.Get("Retry-After"), page)
	}
	r := latchkey(t, "", "audit", "list", "--type", "user.locked", "--json", "--config", cfg)
	var ev struct {
		Events []struct{ Type string } `json:"events"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &ev); err != nil || len(ev.Events) != 1 {
		t.Errorf("user.locked events: %v %s", err, r.stdout)
	}

	token := func() *http.Response {
		req, _ := http.NewRequest("POST", issuer+"/token", strings.NewReader("grant_type=authorization_code&code=x&redirect_uri=https%3A%2F%2Fapp.example%2Fcb"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("app", "app-secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for i := range 2 {
		if st := token().StatusCode; st != 400 {
			t.Fatalf("token %d: %d, want 400 (bogus code, under the limit)", i+1, st)
		}
	}
	if resp := token(); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third token request: %d Retry-After=%q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}
