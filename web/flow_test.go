package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/storage"
)

// browser is a cookie-keeping HTTP client. It follows redirects within
// the host it was sent to (our pages) and stops at any other host (the
// relying party's callback). It records every page body and every URL it
// was sent to, for the tests that look for leaked secrets.
type browser struct {
	t      *testing.T
	issuer string // set by fixture.browser
	jar    http.CookieJar
	client *http.Client // follows redirects within the host
	raw    *http.Client // follows no redirect

	mu    sync.Mutex
	urls  []string
	pages []string
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, jar: jar}
	b.client = &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		b.record(req.URL.String(), "")
		if req.URL.Host != via[0].URL.Host {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	b.raw = &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	return b
}

func (b *browser) record(u, page string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if u != "" {
		b.urls = append(b.urls, u)
	}
	if page != "" {
		b.pages = append(b.pages, page)
	}
}

func (b *browser) do(c *http.Client, req *http.Request) (*http.Response, string) {
	b.t.Helper()
	b.record(req.URL.String(), "")
	resp, err := c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	b.record(resp.Header.Get("Location"), string(body))
	return resp, string(body)
}

func (b *browser) get(u string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(b.client, req)
}

// getRaw is get without following any redirect.
func (b *browser) getRaw(u string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(b.raw, req)
}

func (b *browser) post(u string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	return b.postWith(b.client, u, form)
}

// postWith posts a form with client c (b.client or b.raw).
func (b *browser) postWith(c *http.Client, u string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(c, req)
}

// cookie returns the value of one of our cookies, "" if the jar has none.
func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.issuer)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// setCookie puts a cookie for the issuer into the jar.
func (b *browser) setCookie(name, value string) {
	u, _ := url.Parse(b.issuer)
	b.jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}

// loginForm opens authURL (following our own redirects) and returns the
// hidden fields of the password form it must end on.
func (b *browser) loginForm(authURL string) url.Values {
	b.t.Helper()
	resp, page := b.get(authURL)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `name="password"`) {
		b.t.Fatalf("want the login page, got %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), page)
	}
	if resp.Request.URL.Path != "/login" {
		b.t.Fatalf("login page served at %s", resp.Request.URL)
	}
	return hidden(b.t, page)
}

// submitLogin posts the password form.
func (b *browser) submitLogin(form url.Values, username, password string) (*http.Response, string) {
	b.t.Helper()
	form = cloneValues(form)
	form.Set("username", username)
	form.Set("password", password)
	return b.post(b.issuer+"/login", form)
}

// browser returns a new browser for the fixture's issuer.
func (f *fixture) browser() *browser {
	b := newBrowser(f.t)
	b.issuer = f.issuer
	return b
}

// signIn runs authURL through the password form and returns the
// authorization response at redirectURI.
func (b *browser) signIn(authURL, username, password, redirectURI string) url.Values {
	b.t.Helper()
	resp, page := b.submitLogin(b.loginForm(authURL), username, password)
	return callback(b.t, resp, page, redirectURI)
}

// callback checks that resp is a 303 to redirectURI and returns the
// authorization response parameters.
func callback(t *testing.T, resp *http.Response, page, redirectURI string) url.Values {
	t.Helper()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, redirectURI+"?") {
		t.Fatalf("want 303 to %s, got %d Location %q\n%s", redirectURI, resp.StatusCode, loc, page)
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("authorization response Cache-Control = %q, want no-store", got)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// anyValue in a want set of assertParams matches any non-empty value.
const anyValue = "<any>"

// assertParams compares parameters exactly: the same names, one value
// each, equal (or non-empty for anyValue).
func assertParams(t *testing.T, got url.Values, want map[string]string) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("parameter %s missing (want %q); got %v", k, w, got)
		case len(g) != 1:
			t.Errorf("parameter %s = %q, want one value", k, g)
		case w == anyValue && g[0] == "":
			t.Errorf("parameter %s is empty", k)
		case w != anyValue && g[0] != w:
			t.Errorf("parameter %s = %q, want %q", k, g[0], w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected parameter %s = %q", k, got[k])
		}
	}
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

var hiddenRE = regexp.MustCompile(`name="(req|csrf)" value="([^"]*)"`)

func hidden(t *testing.T, page string) url.Values {
	t.Helper()
	v := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(page, -1) {
		v.Set(m[1], m[2])
	}
	if v.Get("req") == "" || v.Get("csrf") == "" {
		t.Fatalf("no req/csrf in page:\n%s", page)
	}
	return v
}

func TestCodeFlowSmoke(t *testing.T) {
	f := newFixture(t)
	f.addUser(storage.User{Username: "alice", Email: "alice@example.com", EmailVerified: true, Name: "Alice", Groups: []string{"admins"}}, "correct horse")
	f.addClient(storage.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}}, "app-secret")
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, f.issuer)
	if err != nil {
		t.Fatal(err)
	}
	conf := oauth2.Config{ClientID: "app", ClientSecret: "app-secret", Endpoint: provider.Endpoint(),
		RedirectURL: "https://app.example/cb", Scopes: []string{"openid", "profile", "email", "groups"}}
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier), oidc.Nonce("n0nce"))

	b := newBrowser(t)
	resp, page := b.get(authURL)
	if resp.StatusCode != 200 || !strings.Contains(page, `name="password"`) {
		t.Fatalf("login page: %d\n%s", resp.StatusCode, page)
	}
	form := hidden(t, page)
	form.Set("username", "alice")
	form.Set("password", "correct horse")
	resp, page = b.post(f.issuer+"/login", form)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login post: %d %s", resp.StatusCode, page)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	q := loc.Query()
	if q.Get("state") != "st4te" || q.Get("iss") != f.issuer || q.Get("code") == "" {
		t.Fatalf("callback = %s", loc)
	}
	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: "app"}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("verify id token: %v", err)
	}
	if idt.Nonce != "n0nce" || idt.Subject != "u-alice" {
		t.Errorf("id token nonce %q sub %q", idt.Nonce, idt.Subject)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	if ui.Email != "alice@example.com" || ui.Subject != "u-alice" {
		t.Errorf("userinfo = %+v", ui)
	}
	// A second authorize rides the session.
	resp, _ = b.get(conf.AuthCodeURL("two", oauth2.S256ChallengeOption(verifier)))
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "https://app.example/cb?") {
		t.Fatalf("second authorize: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// Reusing the first code fails.
	if _, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier)); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("reuse: %v", err)
	}
	// ...and revoked the tokens it issued.
	if _, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil {
		t.Fatal("userinfo with a token from a reused code succeeded")
	}
}
