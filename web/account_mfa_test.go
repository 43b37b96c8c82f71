package web_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/mfa/policy"
	"github.com/latchkeyid/latchkey/storage"
)

// TestAccountPageNeedsTheSecondFactor: the SSO session a password makes
// before the second factor is asked (the browser is at /mfa) does not
// open /account nor its forms: whoever knows only the password could
// otherwise remove the second factor, add their own, or change the
// address. GET /account signs in through the account client instead,
// which asks the second factor; with it, the page opens.
func TestAccountPageNeedsTheSecondFactor(t *testing.T) {
	mp := testenv.StartMailpit(t)
	f := newFixtureOn(t, backends{options: func(o *broker.Options) {
		withAccounts(t, mp, o.Store.(storage.Durable))(o)
		// Users who have a second factor must use it (no enrollment forced).
		p, err := policy.New(policy.Config{Default: policy.Rule{Mode: policy.Optional}}, o.MFA.Factors.Types(), o.Clock)
		if err != nil {
			t.Fatal(err)
		}
		o.MFA.Policy = p
	}})
	f.addUser(storage.User{ID: "u-bob", Username: "bob", Email: "bob@example.com", EmailVerified: true}, "bob's password")
	f.addClient(storage.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}}, "app-secret")
	if err := f.broker.EnsureAccountClient(t.Context()); err != nil {
		t.Fatal(err)
	}
	conf := f.rp("app", "app-secret", "https://app.example/cb", "openid")

	// Bob adds an authenticator app from /account.
	b := f.browser()
	f.signedIn(t, b, conf, "bob", "bob's password")
	csrf := b.accountCSRF()
	_, page := b.post(f.issuer+"/account/factors/totp", url.Values{"csrf": {csrf}})
	secret := field(t, secretRe, page)
	resp, page := b.post(f.issuer+"/account/factors/totp/confirm", url.Values{"csrf": {csrf}, "code": {f.oathtool(secret)}})
	if resp.StatusCode != 200 || len(factorsOf(t, f, "u-bob")["totp"]) != 1 {
		t.Fatalf("add TOTP: %d\n%s", resp.StatusCode, page)
	}

	// The attacker knows bob's password only: the sign-in stops at /mfa.
	for _, start := range []string{conf.AuthCodeURL("s", oauthS256()...), f.issuer + "/account"} {
		a := f.browser()
		resp, page = a.submitLogin(a.loginForm(start), "bob", "bob's password")
		if resp.StatusCode != 200 || resp.Request.URL.Path != "/mfa" {
			t.Fatalf("want the second-factor page, got %d at %s\n%s", resp.StatusCode, resp.Request.URL, page)
		}
		// /account does not open: it starts the sign-in that asks for the
		// second factor.
		resp, page = a.getRaw(f.issuer + "/account")
		if loc, _ := url.Parse(resp.Header.Get("Location")); resp.StatusCode != http.StatusSeeOther || loc == nil || loc.Path != "/authorize" {
			t.Fatalf("GET /account with a session short of its second factor: %d %q\n%s", resp.StatusCode, resp.Header.Get("Location"), page)
		}
		// Nor do its forms, with a CSRF token computed from the cookie.
		token := broker.CSRFToken(a.cookie("latchkey_session"), "account")
		for _, path := range []string{"/account/factors/remove", "/account/factors/totp", "/account/email", "/account/recovery", "/account/identities/link"} {
			resp, page = a.postRaw(f.issuer+path, url.Values{"csrf": {token}, "id": {factorsOf(t, f, "u-bob")["totp"][0].ID}, "email": {"attacker@example.com"}})
			assertErrorPage(t, resp, page, 401, "Not signed in", "Your session has ended. Open your account page to sign in again.")
		}
	}
	if n := len(factorsOf(t, f, "u-bob")["totp"]); n != 1 {
		t.Fatalf("bob has %d authenticator apps", n)
	}

	// With the second factor, /account opens.
	a := f.browser()
	resp, page = a.submitLogin(a.loginForm(f.issuer+"/account"), "bob", "bob's password")
	f.clock.Advance(30e9) // a fresh TOTP window: the code above is used
	resp, page = a.post(f.issuer+"/mfa", withValue(hidden(t, page), "code", f.oathtool(secret)))
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/account" || !contains(page, "Signed in as <strong>bob</strong>") {
		t.Fatalf("want the account page after the second factor, got %d at %s\n%s", resp.StatusCode, resp.Request.URL, page)
	}
}
