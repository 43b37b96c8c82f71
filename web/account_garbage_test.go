package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/storage"
)

// TestAccountPagesGarbageInput: the account, registration, link and
// factor pages answer odd methods, huge or unreadable bodies, invalid
// UTF-8, repeated fields and junk cookies with a clear 4xx, never a 5xx,
// signed in or not.
func TestAccountPagesGarbageInput(t *testing.T) {
	mp := testenv.StartMailpit(t)
	f := newFixtureOn(t, backends{options: withRegistration(t, mp, 1000)})
	f.addClient(storage.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}}, "app-secret")
	f.addUser(storage.User{ID: "u-alice", Username: "alice", Email: "alice@example.com", EmailVerified: true}, alicePassword)
	if err := f.broker.EnsureAccountClient(t.Context()); err != nil {
		t.Fatal(err)
	}
	signedIn := f.browser()
	signedIn.signIn(f.rp("app", "app-secret", "https://app.example/cb", "openid").AuthCodeURL("s", oauthS256()...), "alice", alicePassword, "https://app.example/cb")
	csrf := signedIn.accountCSRF()
	anon := f.browser()
	_, page := anon.get(f.rp("app", "app-secret", "https://app.example/cb", "openid").AuthCodeURL("s", oauthS256()...))
	req := hidden(t, page).Get("req")

	posts := []string{"/account/password", "/account/email", "/account/identities/link", "/account/identities/unlink",
		"/account/sessions/end", "/account/factors/remove", "/account/factors/rename", "/account/apps/revoke", "/account/recovery",
		"/account/factors/totp", "/account/factors/totp/confirm", "/account/factors/webauthn", "/account/factors/webauthn/finish",
		"/account/register", "/account/forgot", "/account/verify-email", "/account/reset"}
	gets := []string{"/account", "/account/callback", "/account/register", "/account/forgot", "/language",
		"/account/verify-email", "/account/reset"}
	bodies := map[string]string{
		"empty":        "",
		"invalid utf8": "csrf=" + url.QueryEscape(csrf) + "&req=" + req + "&current=%ff%fe&username=%ff&email=%c0%af&password=%ff&confirm=%ff&connector=%ff&label=%ff&code=%ff&response=%ff&sid=%ff&id=%ff&token=%ff",
		"repeated":     "csrf=" + url.QueryEscape(csrf) + "&csrf=x&req=" + req + "&req=y&username=a&username=b&connector=up&connector=up&label=a&label=b&code=1&code=2",
		"bad escape":   "csrf=%zz&req=%",
		"nul bytes":    "csrf=" + url.QueryEscape(csrf) + "&req=" + req + "&username=a%00b&email=a%00@b.c&label=%00&connector=%00&response=%00",
		"huge":         "csrf=" + url.QueryEscape(csrf) + "&label=" + strings.Repeat("a", 3<<20),
		"json":         `{"csrf":"x"}`,
		"long field":   "csrf=" + url.QueryEscape(csrf) + "&req=" + req + "&username=" + strings.Repeat("x", 100000) + "&response=" + strings.Repeat("{", 100000),
	}
	check := func(t *testing.T, resp *http.Response, body string) {
		t.Helper()
		if resp.StatusCode >= 500 {
			t.Fatalf("%d\n%s", resp.StatusCode, body)
		}
	}
	for _, b := range []*browser{signedIn, anon} {
		for _, p := range posts {
			for name, body := range bodies {
				t.Run("POST "+p+" "+name, func(t *testing.T) {
					r, _ := http.NewRequest(http.MethodPost, f.issuer+p, strings.NewReader(body))
					r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					if name == "json" {
						r.Header.Set("Content-Type", "application/json")
					}
					resp, page := b.do(b.raw, r)
					check(t, resp, page)
				})
			}
			for _, m := range []string{http.MethodPut, http.MethodDelete, "PATCH", "PROPFIND"} {
				r, _ := http.NewRequest(m, f.issuer+p, strings.NewReader("csrf=x"))
				resp, page := b.do(b.raw, r)
				check(t, resp, page)
			}
		}
		for _, p := range gets {
			for _, q := range []string{"", "?req=%ff&state=%ff&code=%ff&iss=%ff&token=%ff&lang=%ff&return=%ff",
				"?req=a&req=b&state=a&state=b&token=a&token=b", "?token=" + strings.Repeat("a", 5000) + "&req=" + strings.Repeat("b", 5000),
				"?state=" + strings.Repeat("s", 200) + "&iss=" + url.QueryEscape(f.issuer) + "&code=x&error=" + strings.Repeat("e", 5000)} {
				resp, page := b.getRaw(f.issuer + p + q)
				check(t, resp, page)
			}
		}
	}
	// Junk cookies.
	junk := f.browser()
	for _, c := range []string{"latchkey_session", "latchkey_binding", "latchkey_account_signin", "latchkey_lang"} {
		junk.setCookie(c, strings.Repeat("\x7f", 10)+"%ff")
	}
	for _, p := range gets {
		resp, page := junk.getRaw(f.issuer + p + "?state=x&code=y&iss=" + url.QueryEscape(f.issuer))
		check(t, resp, page)
	}
}
