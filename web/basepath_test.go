package web_test

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/storage"
)

// attrURLRe finds the URLs of links, forms, scripts and images in a page.
var attrURLRe = regexp.MustCompile(`(?:href|action|src)="([^"]*)"`)

// assertUnderBase fails on a root-relative URL in page that is not under
// base.
func assertUnderBase(t *testing.T, name, page, base string) {
	t.Helper()
	n := 0
	for _, m := range attrURLRe.FindAllStringSubmatch(page, -1) {
		u := m[1]
		if strings.HasPrefix(u, "/") && !strings.HasPrefix(u, "//") {
			n++
			if !strings.HasPrefix(u, base+"/") {
				t.Errorf("%s: %q is not under %s", name, u, base)
			}
		}
	}
	if n == 0 {
		t.Errorf("%s: no root-relative URL checked\n%s", name, page)
	}
}

// TestIssuerWithPath: with the issuer https://host/auth the endpoints,
// redirects and every link and form of the pages are under /auth, and a
// proxy that strips the path works too.
func TestIssuerWithPath(t *testing.T) {
	f := newFixtureOn(t, backends{prefix: "/auth"})
	f.addUser(aliceRecord, alicePassword)
	f.addClient(storage.Client{ID: "app", Name: "Payroll", RedirectURIs: []string{"https://app.example/cb"}}, "app-secret")
	conf := f.rp("app", "app-secret", "https://app.example/cb", "openid")
	if conf.Endpoint.AuthURL != f.issuer+"/authorize" || !strings.HasSuffix(f.issuer, "/auth") {
		t.Fatalf("discovery: %+v", conf.Endpoint)
	}
	verifier := oauth2.GenerateVerifier()
	b := f.browser()
	resp, page := b.get(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/auth/login" {
		t.Fatalf("login page: %d at %s\n%s", resp.StatusCode, resp.Request.URL, page)
	}
	assertUnderBase(t, "login", page, "/auth")
	for _, want := range []string{`action="/auth/login"`, `href="/auth/static/latchkey.css"`, `href="/auth/language?lang=de&amp;return=%2Flogin%3Freq%3D`} {
		if !strings.Contains(page, want) {
			t.Errorf("login page lacks %s\n%s", want, page)
		}
	}
	form := hidden(t, page)
	form.Set("username", "alice")
	form.Set("password", alicePassword)
	resp, page = b.post(f.issuer+"/login", form)
	q := callback(t, resp, page, "https://app.example/cb")
	tok := exchange(t, conf, q.Get("code"), verifier)
	if _, _, claims := f.idToken(t, "app", tok); claims["iss"] != f.issuer {
		t.Fatalf("iss = %v", claims["iss"])
	}

	// The language switcher comes back under the path.
	resp, _ = b.getRaw(f.issuer + "/language?lang=de&return=" + url.QueryEscape("/logout"))
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/auth/logout" {
		t.Fatalf("switcher: %d %q", resp.StatusCode, loc)
	}
	resp, page = b.get(f.issuer + "/logout")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("logout page: %d\n%s", resp.StatusCode, page)
	}
	assertUnderBase(t, "logout", page, "/auth")

	// Behind a proxy that strips /auth: the same server, paths without it.
	origin := strings.TrimSuffix(f.issuer, "/auth")
	resp, page = b.get(origin + "/.well-known/openid-configuration")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `"issuer":"`+f.issuer+`"`) {
		t.Fatalf("stripped discovery: %d\n%s", resp.StatusCode, page)
	}
}

// TestTemplatesPrefixOwnPaths: every link, form and script of ours in a
// template starts with {{base}} (the issuer's path), so that no page
// breaks under an issuer with a path; values from data ({{.X}}) are
// absolute URLs or built with the base already.
func TestTemplatesPrefixOwnPaths(t *testing.T) {
	files, err := filepath.Glob("templates/*.html")
	if err != nil || len(files) < 20 {
		t.Fatalf("templates: %v %d", err, len(files))
	}
	attr := regexp.MustCompile(`\b(?:href|action|src)="([^"]*)"`)
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range attr.FindAllStringSubmatch(string(b), -1) {
			v := m[1]
			n++
			switch {
			case strings.HasPrefix(v, "{{base}}/"), strings.HasPrefix(v, "{{base}}{{"):
			case strings.HasPrefix(v, "{{.") || v == "{{.}}":
			default:
				t.Errorf("%s: %s=%q does not start with {{base}}", f, m[0][:strings.IndexByte(m[0], '=')], v)
			}
		}
	}
	if n < 60 {
		t.Errorf("only %d URLs checked", n)
	}
}
