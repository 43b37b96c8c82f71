package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/internal/testenv"
)

// TestReplicasShareEverything: two replicas share PostgreSQL and Redis and
// nothing else. Each request of one login goes to the other replica
// (authorize on A, login on B, token on B, refresh on A, userinfo on B);
// then A dies by SIGKILL and B carries on: the SSO session, the refresh
// chain and the keys all live in the shared stores.
func TestReplicasShareEverything(t *testing.T) {
	dsn := testenv.Postgres(t)
	addrs, prefix := testenv.Redis(t)
	dir := t.TempDir()
	// One issuer for both replicas, as behind a load balancer; each
	// listens on its own port and the test plays the balancer by
	// rewriting the host of every request.
	issuer := "http://127.0.0.1:1"
	var servers []*server
	var hosts []string
	for i := range 2 {
		addr := freeAddr(t)
		hosts = append(hosts, addr)
		cfg := fmt.Sprintf(`issuer: %s
http:
  address: %s
storage:
  postgres:
    dsn: %s
ephemeral:
  redis:
    addrs: [%s]
  keyPrefix: "%s"
keys:
  encryptionKeys:
    - id: k1
      key: %s
logging:
  format: json
clients:
  - client_id: app
    client_secret: app-secret
    redirect_uris: [https://app.example/cb]
    post_logout_redirect_uris: [https://app.example/bye]
`, issuer, addr, dsn, strings.Join(addrs, ", "), prefix, devKey)
		servers = append(servers, startServe(t, writeFile(t, dir, fmt.Sprintf("r%d.yaml", i), cfg), addr))
	}
	for _, s := range servers {
		s.waitReady(t)
	}
	cfg := writeFile(t, dir, "cli.yaml", strings.Replace(readFile(t, dir+"/r0.yaml"), "address: "+hosts[0], "address: 127.0.0.1:9", 1))
	if r := latchkey(t, "pw-alice-1\n", "users", "create", "--username", "alice", "--email", "alice@example.com", "--email-verified", "--password-stdin", "--config", cfg); r.code != 0 {
		t.Fatalf("users create: %s", r.stderr)
	}

	// The balancer: send each request to the replica we choose.
	target := 0
	lb := &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, hosts[target])
	}}
	via := func(i int) { target = i }
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Transport: lb, Timeout: 10 * time.Second,
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if req.URL.Host != "127.0.0.1:1" {
				return http.ErrUseLastResponse
			}
			return nil
		}}
	api := &http.Client{Transport: lb, Timeout: 10 * time.Second}
	ctx := oidc.ClientContext(context.Background(), api)

	via(0)
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatal(err)
	}
	conf := oauth2.Config{ClientID: "app", ClientSecret: "app-secret", Endpoint: provider.Endpoint(),
		RedirectURL: "https://app.example/cb", Scopes: []string{"openid", "email", "offline_access"}}
	verifier := oauth2.GenerateVerifier()

	via(0) // authorize on A
	resp, page := fetch(t, browser, "GET", conf.AuthCodeURL("s1", oauth2.S256ChallengeOption(verifier)), nil)
	if resp.StatusCode != 200 || !strings.Contains(page, `name="password"`) {
		t.Fatalf("login page from A: %d", resp.StatusCode)
	}
	form := url.Values{"username": {"alice"}, "password": {"pw-alice-1"}}
	for _, m := range regexp.MustCompile(`name="(req|csrf)" value="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		form.Set(m[1], m[2])
	}
	via(1) // login on B
	resp, _ = fetch(t, browser, "POST", issuer+"/login", form)
	code := callbackCode(t, resp, "s1")

	via(1) // token on B
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("token on B: %v", err)
	}
	idt, err := provider.Verifier(&oidc.Config{ClientID: "app"}).Verify(ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatalf("ID token from B, keys from A: %v", err)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token")
	}

	via(0) // refresh on A
	tok2, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh on A: %v", err)
	}
	via(1) // userinfo on B with A's token
	if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok2)); err != nil {
		t.Fatalf("userinfo on B: %v", err)
	}

	// The SSO session lives in Redis: A signs the browser in again
	// without a password, with the same sid.
	via(0)
	resp, _ = fetch(t, browser, "GET", conf.AuthCodeURL("s2", oauth2.S256ChallengeOption(verifier)), nil)
	code2 := callbackCode(t, resp, "s2")
	tok3, err := conf.Exchange(ctx, code2, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("token on B after A died: %v", err)
	}
	idt3, err := provider.Verifier(&oidc.Config{ClientID: "app"}).Verify(ctx, tok3.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	var c1, c3 struct {
		SID      string `json:"sid"`
		AuthTime int64  `json:"auth_time"`
	}
	_ = idt.Claims(&c1)
	_ = idt3.Claims(&c3)
	if c1.SID == "" || c1.SID != c3.SID || c1.AuthTime != c3.AuthTime {
		t.Errorf("session not shared: first %+v, on A %+v", c1, c3)
	}

	// Logout on B ends the session for A too.
	via(1)
	resp, _ = fetch(t, browser, "GET", issuer+"/logout?id_token_hint="+url.QueryEscape(tok3.Extra("id_token").(string))+
		"&post_logout_redirect_uri="+url.QueryEscape("https://app.example/bye")+"&state=bye", nil)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "https://app.example/bye?state=bye" {
		t.Fatalf("logout on B: %d %q", resp.StatusCode, loc)
	}
	via(0)
	resp, page = fetch(t, browser, "GET", conf.AuthCodeURL("s3", oauth2.S256ChallengeOption(verifier)), nil)
	if resp.StatusCode != 200 || !strings.Contains(page, `name="password"`) {
		t.Fatalf("after logout on B, A still signs the browser in: %d", resp.StatusCode)
	}

	// A dies by SIGKILL; B carries on: a new sign-in, and the refresh
	// chain A rotated.
	_ = syscall.Kill(servers[0].cmd.Process.Pid, syscall.SIGKILL)
	<-servers[0].done
	via(1)
	form = url.Values{"username": {"alice"}, "password": {"pw-alice-1"}}
	for _, m := range regexp.MustCompile(`name="(req|csrf)" value="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		form.Set(m[1], m[2])
	}
	resp, _ = fetch(t, browser, "POST", issuer+"/login", form)
	if _, err := conf.Exchange(ctx, callbackCode(t, resp, "s3"), oauth2.VerifierOption(verifier)); err != nil {
		t.Fatalf("token on B after A died: %v", err)
	}
	if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok2.RefreshToken}).Token(); err != nil {
		t.Fatalf("refresh of A's successor on B: %v", err)
	}
}

func callbackCode(t *testing.T, resp *http.Response, state string) string {
	t.Helper()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusSeeOther || loc.Host != "app.example" {
		t.Fatalf("want a redirect to the client, got %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	q := loc.Query()
	if q.Get("state") != state || q.Get("code") == "" {
		t.Fatalf("callback %s", loc)
	}
	return q.Get("code")
}
