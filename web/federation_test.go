package web_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/storage"
)

// opDir is the oidc connector's real-peer server (panva's oidc-provider).
var opDir = filepath.Join("..", "providers", "oidc", "testdata", "op")

// TestFederationOIDCProvider is the upstream login end to end: an
// x/oauth2 client signs in at Latchkey, whose login page offers the oidc
// connector; Latchkey signs in at oidc-provider (its login and consent
// forms posted by the test), links the identity to a new user and issues
// an ID token with the claims mapped by CEL. A downstream refresh then
// refreshes upstream (the OP rotates its refresh token); after the
// account is removed upstream, the downstream refresh fails with
// invalid_grant and the family is revoked.
func TestFederationOIDCProvider(t *testing.T) {
	node := testenv.Program(t, "node")
	npm := testenv.Program(t, "npm")
	modules := installOP(t, npm)
	f := newFixture(t)
	callbackURL := f.issuer + "/callback/op"
	opIssuer := startOP(t, node, modules, map[string]any{
		"clientID": "latchkey", "clientSecret": "upstream-secret-not-logged", "redirectURI": callbackURL,
		"accounts": map[string]any{
			"alice": map[string]any{"email": "alice@example.com", "email_verified": true, "name": "Alice Example",
				"preferred_username": "alice", "groups": []string{"staff", "admins"}},
		},
	})
	ctx := t.Context()
	cfg, _ := json.Marshal(map[string]any{
		"issuer": opIssuer, "clientID": "latchkey", "clientSecret": "upstream-secret-not-logged",
		"scopes": []string{"openid", "email", "profile", "groups", "offline_access"}, "prompt": "consent", "userinfo": true,
		"claimMapping": map[string]any{
			"groups":   "claims.groups.map(g, 'op:' + g)",
			"username": "claims.preferred_username.upperAscii()",
		},
	})
	now := time.Now().UTC()
	if err := f.db.CreateConnector(ctx, storage.Connector{ID: "op", Type: "oidc", Name: "Upstream OP", Config: cfg, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	list, _ := f.db.ListConnectors(ctx)
	if err := f.conns.Sync(ctx, list); err != nil {
		t.Fatal(err)
	}
	const appCB = "http://app.example/cb"
	f.addClient(storage.Client{ID: "app", Name: "The App", RedirectURIs: []string{appCB}}, "app-secret")
	conf := f.rp("app", "app-secret", appCB, "openid", "profile", "email", "groups", "offline_access")

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), appCB) || len(via) > 15 {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	get := func(u string) (*http.Response, string) {
		t.Helper()
		resp, err := browser.Get(u)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	post := func(u string, form url.Values) (*http.Response, string) {
		t.Helper()
		resp, err := browser.PostForm(u, form)
		if err != nil {
			t.Fatalf("POST %s: %v", u, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	verifier := oauth2.GenerateVerifier()
	resp, page := get(conf.AuthCodeURL("app-state", oauth2.S256ChallengeOption(verifier)))
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/login" {
		t.Fatalf("want the login page, got %d at %s", resp.StatusCode, resp.Request.URL)
	}
	for _, want := range []string{`action="/login/upstream"`, `name="connector" value="op"`, `Sign in with Upstream OP`, `name="password"`} {
		if !strings.Contains(page, want) {
			t.Fatalf("login page lacks %s:\n%s", want, page)
		}
	}
	form := hidden(t, page)
	form.Set("connector", "op")
	resp, page = post(f.issuer+"/login/upstream", form)
	// The OP's login form, then its consent form; the last answer is
	// Latchkey's redirect to the app.
	for step := 0; !strings.HasPrefix(resp.Header.Get("Location"), appCB); step++ {
		m := regexp.MustCompile(`<form[^>]*action="([^"]+)"`).FindStringSubmatch(page)
		if resp.StatusCode != 200 || m == nil || step > 4 {
			t.Fatalf("step %d: HTTP %d at %s without a form:\n%.2000s", step, resp.StatusCode, resp.Request.URL, page)
		}
		action, _ := resp.Request.URL.Parse(html.UnescapeString(m[1]))
		form := url.Values{}
		switch {
		case strings.Contains(page, `name="prompt" value="login"`):
			form.Set("prompt", "login")
			form.Set("login", "alice")
			form.Set("password", "any")
		case strings.Contains(page, `name="prompt" value="consent"`):
			form.Set("prompt", "consent")
		default:
			t.Fatalf("step %d: unknown form at %s:\n%.2000s", step, resp.Request.URL, page)
		}
		resp, page = post(action.String(), form)
	}
	q := callback(t, resp, page, appCB)
	if q.Get("state") != "app-state" || q.Get("iss") != f.issuer {
		t.Fatalf("authorization response %v", q)
	}
	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	_, _, claims := f.idToken(t, "app", tok)
	for k, want := range map[string]any{
		"preferred_username": "ALICE", "email": "alice@example.com", "email_verified": true, "name": "Alice Example",
		"groups": []any{"op:staff", "op:admins"}, "amr": []any{"fed"},
	} {
		if !reflect.DeepEqual(claims[k], want) {
			t.Errorf("ID token %s = %#v, want %#v", k, claims[k], want)
		}
	}
	sub, _ := claims["sub"].(string)
	ident, err := f.db.GetIdentity(ctx, "op", "alice")
	if err != nil || ident.UserID != sub || len(ident.ConnectorData) == 0 {
		t.Fatalf("identity %v (data %d bytes), err %v; want linked to %s with a sealed refresh token", ident, len(ident.ConnectorData), err, sub)
	}
	if bytes.Contains(ident.ConnectorData, []byte("upstream-secret")) {
		t.Fatal("connector data holds a secret in clear")
	}
	if ev := f.events(t, "identity.linked"); len(ev) != 1 || ev[0].Data["reason"] != "new_user" || ev[0].ConnectorID != "op" {
		t.Fatalf("identity.linked events %+v", ev)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no downstream refresh token")
	}

	// A downstream refresh drives an upstream refresh.
	refresh := func(rt string) (*oauth2.Token, error) {
		return conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt, Expiry: time.Unix(1, 0)}).Token()
	}
	tok2, err := refresh(tok.RefreshToken)
	if err != nil {
		t.Fatalf("downstream refresh: %v", err)
	}
	after, _ := f.db.GetIdentity(ctx, "op", "alice")
	if bytes.Equal(after.ConnectorData, ident.ConnectorData) {
		t.Fatal("the downstream refresh did not refresh upstream (the OP rotates its refresh token)")
	}

	// The account goes away upstream: the next refresh fails.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, opIssuer+"/__admin/remove?sub=alice", nil)
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != http.StatusNoContent {
		t.Fatalf("admin remove: %v %v", r, err)
	}
	_, err = refresh(tok2.RefreshToken)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("refresh after the upstream removal: %v, want invalid_grant", err)
	}
	if ev := f.events(t, "token.upstream_revoked"); len(ev) != 1 || ev[0].Data["reason"] != "upstream user gone" {
		t.Fatalf("token.upstream_revoked events %+v", ev)
	}
	if strings.Contains(f.logs.String(), "upstream-secret-not-logged") {
		t.Fatal("the upstream client secret is in the logs")
	}
}

// installOP runs `npm ci` for the oidc-provider test server once per
// lockfile into the user cache directory (the same place the oidc
// connector's real-peer test uses) and returns the node_modules path.
func installOP(t *testing.T, npm string) string {
	t.Helper()
	pkg, err := os.ReadFile(filepath.Join(opDir, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	lock, err := os.ReadFile(filepath.Join(opDir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(append(pkg, lock...))
	root, err := os.UserCacheDir()
	if err != nil {
		root = os.TempDir()
	}
	parent := filepath.Join(root, "latchkey-test")
	dir := filepath.Join(parent, "oidc-provider-"+hex.EncodeToString(sum[:8]))
	modules := filepath.Join(dir, "node_modules")
	if _, err := os.Stat(filepath.Join(modules, "oidc-provider", "package.json")); err == nil {
		return modules
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(parent, "install-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	for name, data := range map[string][]byte{"package.json": pkg, "package-lock.json": lock} {
		if err := os.WriteFile(filepath.Join(tmp, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error")
	cmd.Dir = tmp
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		testenv.Missing(t, "npm ci for oidc-provider failed: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(modules, "oidc-provider", "package.json")); serr != nil {
			t.Fatalf("install oidc-provider: %v", err)
		}
	}
	return modules
}

// startOP runs the oidc-provider server on 127.0.0.1 and returns its
// issuer; it is stopped by its PID when the test ends.
func startOP(t *testing.T, node, modules string, cfg map[string]any) string {
	t.Helper()
	work := t.TempDir()
	script, err := os.ReadFile(filepath.Join(opDir, "server.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "server.mjs"), script, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(modules, filepath.Join(work, "node_modules")); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(cfg)
	cmd := exec.Command(node, "server.mjs")
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "OP_CONFIG="+string(raw), "NODE_ENV=test")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("oidc-provider stderr:\n%s", stderr.String())
		}
	})
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		if s.Scan() {
			line <- s.Text()
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case l := <-line:
		var ready struct{ Issuer string }
		if err := json.Unmarshal([]byte(l), &ready); err != nil || ready.Issuer == "" {
			t.Fatalf("oidc-provider said %q", l)
		}
		return ready.Issuer
	case <-exited:
		t.Fatalf("oidc-provider exited early:\n%s", stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("oidc-provider did not start within 20s:\n%s", stderr.String())
	}
	return ""
}
