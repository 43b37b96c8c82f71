package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/latchkeyid/latchkey/api/console"
	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/providers/github"
	"github.com/latchkeyid/latchkey/providers/local"
	"github.com/latchkeyid/latchkey/storage"
	"github.com/latchkeyid/latchkey/web"
)

// stack is the whole server in process: the public listener (the
// issuer) and the admin listener, as `latchkey serve` wires them.
type stack struct {
	a                 *app
	issuer, adminBase string
}

const stackConfig = `issuer: %s
keys:
  encryptionKeys: [{id: k1, key: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=}]
logging: {level: warn}
outbound: {allowedNetworks: [127.0.0.0/8]}
admin:
  enabled: true
  listen: 127.0.0.1:0
  console: {group: ops, requireMFA: %t}
%s`

func newStack(t *testing.T, backend string, requireMFA bool) *stack {
	t.Helper()
	dir := t.TempDir()
	store := fmt.Sprintf("storage: {sqlite: {path: %s}}\n", filepath.Join(dir, "lk.db"))
	if backend == "postgres" {
		store = fmt.Sprintf("storage: {postgres: {dsn: %q}}\n", testenv.Postgres(t))
	}
	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + pub.Addr().String()
	path := filepath.Join(dir, "latchkey.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(stackConfig, issuer, requireMFA, store)), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &cli{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, configPath: path,
		env: func(string) (string, bool) { return "", false }, now: time.Now}
	ctx := context.WithoutCancel(t.Context())
	a, err := c.openApp(ctx, schemaMigrate, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.close)
	km, err := a.keyManager(ctx)
	if err != nil {
		t.Fatal(err)
	}
	md, err := broker.NewMetadata(issuer, km.Algorithms())
	if err != nil {
		t.Fatal(err)
	}
	conns, err := a.openConnectors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hasher := local.NewHasher(local.Params{Memory: 64, Iterations: 1}, 0, 0, nil)
	brk, err := a.newBroker(km, hasher, conns)
	if err != nil {
		t.Fatal(err)
	}
	h, err := web.New(web.Options{Metadata: md.WithCodeFlow().WithLogout(), Keys: km, Broker: brk, Logger: a.log, Clock: a.clock})
	if err != nil {
		t.Fatal(err)
	}
	ps := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = ps.Serve(pub) }()
	t.Cleanup(func() { _ = ps.Close() })

	aln, base, err := a.listenAdmin()
	if err != nil {
		t.Fatal(err)
	}
	ah, err := a.adminHandler(ctx, km, brk, hasher, base)
	if err != nil {
		t.Fatal(err)
	}
	as := a.serveAdmin(ctx, aln, ah)
	t.Cleanup(func() { _ = as.Close() })

	for _, u := range []struct {
		name   string
		groups []string
	}{{"root", []string{"ops"}}, {"bob", []string{"dev"}}} {
		if _, err := createUser(ctx, a.db, hasher, storage.User{Username: u.name, Email: u.name + "@example.com", EmailVerified: true, Groups: u.groups},
			"pw-"+u.name, "cli"); err != nil {
			t.Fatal(err)
		}
	}
	return &stack{a: a, issuer: issuer, adminBase: base}
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

func hiddenFields(page string) url.Values {
	v := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(page, -1) {
		v.Set(m[1], m[2])
	}
	return v
}

type consoleBrowser struct {
	t      *testing.T
	client *http.Client
}

func newConsoleBrowser(t *testing.T) *consoleBrowser {
	jar, _ := cookiejar.New(nil)
	return &consoleBrowser{t: t, client: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

func (b *consoleBrowser) send(method, u string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(b.t.Context(), method, u, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, string(out)
}

// signIn opens the console and signs in through Latchkey's login page;
// it returns the last response.
func (b *consoleBrowser) signIn(s *stack, username, password string) (*http.Response, string) {
	b.t.Helper()
	resp, page := b.send("GET", s.adminBase+"/admin/", nil)
	if resp.Request.URL.Path != "/login" || !strings.Contains(page, `name="password"`) {
		b.t.Fatalf("want Latchkey's login page, got %s %d\n%s", resp.Request.URL, resp.StatusCode, page)
	}
	form := hiddenFields(page)
	form.Set("username", username)
	form.Set("password", password)
	return b.send("POST", s.issuer+"/login", form)
}

// TestConsoleSignIn: an admin signs in through Latchkey, sees the
// dashboard, creates a client and a connector with the CSRF token; a
// form without it is refused; a user outside the admin group is not let
// in; every page has the CSP and no inline script.
func TestConsoleSignIn(t *testing.T) {
	adminBackends(t, func(t *testing.T, backend string) {
		s := newStack(t, backend, false)
		b := newConsoleBrowser(t)
		resp, page := b.signIn(s, "root", "pw-root")
		if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != s.adminBase+"/admin/" || !strings.Contains(page, "<h1>Dashboard</h1>") {
			t.Fatalf("after sign-in: %s %d\n%s", resp.Request.URL, resp.StatusCode, page)
		}
		if !strings.Contains(page, "<span class=\"who\">root</span>") {
			t.Fatalf("the dashboard does not name the admin:\n%s", page)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(page, "<script") {
			t.Fatalf("CSP %q or inline script", csp)
		}

		resp, page = b.send("GET", s.adminBase+"/admin/clients", nil)
		csrf := hiddenFields(page).Get("csrf")
		if resp.StatusCode != http.StatusOK || csrf == "" {
			t.Fatalf("clients page %d\n%s", resp.StatusCode, page)
		}
		form := url.Values{"csrf": {csrf}, "client_id": {"console-app"}, "client_name": {"Console App"}, "redirect_uris": {"https://console-app.example/cb\n"}}
		resp, page = b.send("POST", s.adminBase+"/admin/clients", form)
		m := regexp.MustCompile(`<span class="secret">([A-Za-z0-9_-]{43})</span>`).FindStringSubmatch(page)
		if resp.StatusCode != http.StatusOK || m == nil {
			t.Fatalf("create client %d\n%s", resp.StatusCode, page)
		}
		stored, err := s.a.db.GetClient(t.Context(), "console-app")
		if err != nil || stored.SecretHash != sha(m[1]) {
			t.Fatalf("stored %+v %v", stored, err)
		}
		form.Set("client_id", "bad")
		form.Set("redirect_uris", "not a url")
		resp, page = b.send("POST", s.adminBase+"/admin/clients", form)
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, "<code>redirect_uris[0]</code>: &#34;not a url&#34; is not an absolute URL") {
			t.Fatalf("invalid client %d\n%s", resp.StatusCode, page)
		}
		form.Del("csrf")
		resp, _ = b.send("POST", s.adminBase+"/admin/clients", form)
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("a form without the CSRF token: %d", resp.StatusCode)
		}

		resp, page = b.send("POST", s.adminBase+"/admin/connectors", url.Values{"csrf": {csrf}, "id": {"gh"}, "type": {"github"}, "name": {"GitHub"},
			"config.clientID": {"abc"}, "config.clientSecret": {"gh-console-secret"}, "config.orgs": {"example\nother"}})
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Added connector gh") || strings.Contains(page, "gh-console-secret") {
			t.Fatalf("create connector %d\n%s", resp.StatusCode, page)
		}
		gh, err := s.a.db.GetConnector(t.Context(), "gh")
		if plain, _ := unsealConnectorSecrets(s.a.keyring, gh); err != nil || !strings.Contains(string(plain), `"orgs":["example","other"]`) ||
			!strings.Contains(string(plain), `"clientSecret":"gh-console-secret"`) {
			t.Fatalf("stored connector %s %v", plain, err)
		}
		resp, page = b.send("POST", s.adminBase+"/admin/connectors", url.Values{"csrf": {csrf}, "id": {"corp"}, "type": {"oidc"},
			"config.issuer": {"not a url"}, "config.extraParams": {"{broken"}})
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, "<code>config.extraParams</code>: not valid JSON") {
			t.Fatalf("bad JSON field %d\n%s", resp.StatusCode, page)
		}
		resp, page = b.send("POST", s.adminBase+"/admin/connectors", url.Values{"csrf": {csrf}, "id": {"corp"}, "type": {"oidc"}, "config.issuer": {"not a url"}})
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, "<code>config.clientID</code>: required") {
			t.Fatalf("invalid oidc connector %d\n%s", resp.StatusCode, page)
		}
		resp, page = b.send("POST", s.adminBase+"/admin/connectors/gh/disable", url.Values{"csrf": {csrf}})
		if gh, _ := s.a.db.GetConnector(t.Context(), "gh"); resp.StatusCode != http.StatusOK || !gh.Disabled || !strings.Contains(page, "Connector gh disabled") {
			t.Fatalf("disable in the console: %d\n%s", resp.StatusCode, page)
		}
		resp, page = b.send("GET", s.adminBase+"/admin/connectors?type=ldap", nil)
		if !strings.Contains(page, `name="config.bindPassword"`) || !strings.Contains(page, `type="password" id="f-bindPassword"`) {
			t.Fatalf("the ldap form is not generated from its config:\n%s", page)
		}
		for _, p := range []string{"/admin/connectors", "/admin/users", "/admin/keys", "/admin/audit?type=client.created"} {
			resp, page = b.send("GET", s.adminBase+p, nil)
			if resp.StatusCode != http.StatusOK || strings.Contains(page, "<script") {
				t.Fatalf("%s: %d\n%s", p, resp.StatusCode, page)
			}
		}
		if !strings.Contains(page, "client.created") || !strings.Contains(page, "user:") {
			t.Fatalf("audit page does not show the console's change:\n%s", page)
		}

		other := newConsoleBrowser(t)
		resp, page = other.signIn(s, "bob", "pw-bob")
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "not in the admin group (ops)") {
			t.Fatalf("bob: %d\n%s", resp.StatusCode, page)
		}
		// Bob's Latchkey session signs him in again at once: refused again.
		resp, page = other.send("GET", s.adminBase+"/admin/users", nil)
		if resp.StatusCode != http.StatusForbidden || strings.Contains(page, "<h1>Users</h1>") {
			t.Fatalf("bob reached %s: %d", resp.Request.URL, resp.StatusCode)
		}
	})
}

// TestConsoleAsksForMFA: by default the console sends acr_values for
// urn:latchkey:acr:mfa, and a sign-in that cannot meet it is refused.
func TestConsoleAsksForMFA(t *testing.T) {
	s := newStack(t, "sqlite", true)
	b := newConsoleBrowser(t)
	b.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, _ := b.send("GET", s.adminBase+"/admin/login", nil)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	q := loc.Query()
	if resp.StatusCode != http.StatusSeeOther || q.Get("acr_values") != "urn:latchkey:acr:mfa" || q.Get("client_id") != AdminClientID ||
		q.Get("code_challenge_method") != "S256" || q.Get("redirect_uri") != s.adminBase+"/admin/callback" {
		t.Fatalf("login redirect %d %s", resp.StatusCode, loc)
	}
}

var (
	totpSecretRE = regexp.MustCompile(`<code id="totp-secret">([A-Z2-7]+)</code>`)
)

// TestConsoleMFASignIn: with the default requireMFA, an admin with no
// second factor signs in with the password, enrolls TOTP as Latchkey
// asks, and reaches the console with acr mfa.
func TestConsoleMFASignIn(t *testing.T) {
	s := newStack(t, "sqlite", true)
	b := newConsoleBrowser(t)
	resp, page := b.signIn(s, "root", "pw-root")
	m := totpSecretRE.FindStringSubmatch(page)
	if resp.Request.URL.Path != "/mfa/enroll" || m == nil {
		t.Fatalf("want TOTP enrollment, got %d %s\n%s", resp.StatusCode, resp.Request.URL, page)
	}
	code, err := totp.GenerateCode(m[1], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	form := hiddenFields(page)
	form.Set("code", code)
	resp, page = b.send("POST", s.issuer+"/mfa/enroll", form)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("enroll: %d\n%s", resp.StatusCode, page)
	}
	resp, page = b.send("POST", s.issuer+"/mfa/continue", hiddenFields(page))
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != s.adminBase+"/admin/" || !strings.Contains(page, "<h1>Dashboard</h1>") {
		t.Fatalf("after enrollment: %d %s\n%s", resp.StatusCode, resp.Request.URL, page)
	}
	ev, err := s.a.db.ListEvents(t.Context(), storage.EventFilter{Type: "admin.console.signed_in"})
	if err != nil || len(ev) != 1 || ev[0].Data["acr"] != "urn:latchkey:acr:mfa" {
		t.Fatalf("sign-in events %+v %v", ev, err)
	}
}

// TestConnectorSchemas: every connector type has a config struct for the
// console's form, and its secrets are password fields.
func TestConnectorSchemas(t *testing.T) {
	schemas := connectorSchemas()
	for name := range connectorRegistry() {
		cfg, ok := schemas[name]
		if !ok {
			t.Errorf("connector type %s has no schema for the console", name)
			continue
		}
		if len(console.FieldsOf(cfg, secretKeys)) == 0 {
			t.Errorf("connector type %s: no fields", name)
		}
	}
	if len(schemas) != len(connectorRegistry()) {
		t.Errorf("schemas for %d types, registry has %d", len(schemas), len(connectorRegistry()))
	}
	var got []string
	for _, f := range console.FieldsOf(github.Config{}, secretKeys) {
		got = append(got, fmt.Sprintf("%s:%s:%v", f.Name, f.Kind, f.Secret))
	}
	if want := "baseURL:string:false apiURL:string:false clientID:string:false clientSecret:string:true scopes:list:false orgs:list:false teams:list:false claimMapping:json:false allow:list:false deny:json:false notAllowedReason:string:false"; strings.Join(got, " ") != want {
		t.Errorf("github fields %v, want %s", got, want)
	}
}
