package web_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/storage"
)

const (
	appBye      = "https://app.example/bye"
	bobPassword = "bob's own password"
)

var bobRecord = storage.User{ID: "u-bob", Username: "bob", Email: "bob@example.com", EmailVerified: true, Name: "Bob Builder"}

// storeCases are the store combinations the session tests run on: SQLite
// alone, and PostgreSQL with Redis as in production.
var storeCases = []struct {
	name string
	be   backends
}{
	{"sqlite", backends{}},
	{"postgres+redis", backends{postgres: true, redis: true}},
}

// newSessionFixture has alice, bob and the client "app" (appCB, appBye as
// its post-logout redirect URI).
func newSessionFixture(t *testing.T, be backends) *fixture {
	t.Helper()
	f := newFixtureOn(t, be)
	f.addUser(aliceRecord, alicePassword)
	f.addUser(bobRecord, bobPassword)
	f.addClient(storage.Client{ID: "app", Name: "The App", RedirectURIs: []string{appCB}, PostLogoutRedirectURIs: []string{appBye}}, appSecret)
	return f
}

// signedIn signs b in through conf (password form) and returns the token
// response and the ID token claims.
func (f *fixture) signedIn(t *testing.T, b *browser, conf *oauth2.Config, username, password string, opts ...oauth2.AuthCodeOption) (*oauth2.Token, map[string]any) {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	q := b.signIn(conf.AuthCodeURL("s", append(opts, oauth2.S256ChallengeOption(verifier))...), username, password, conf.RedirectURL)
	tok := exchange(t, conf, q.Get("code"), verifier)
	_, _, c := f.idToken(t, conf.ClientID, tok)
	return tok, c
}

// ridden runs an authorization request that must ride b's session and
// returns the token response and the ID token claims.
func (f *fixture) ridden(t *testing.T, b *browser, conf *oauth2.Config, opts ...oauth2.AuthCodeOption) (*oauth2.Token, map[string]any) {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	q := b.sessionCode(conf.AuthCodeURL("s", append(opts, oauth2.S256ChallengeOption(verifier))...), conf.RedirectURL)
	tok := exchange(t, conf, q.Get("code"), verifier)
	_, _, c := f.idToken(t, conf.ClientID, tok)
	return tok, c
}

var promptNone = oauth2.SetAuthURLParam("prompt", "none")

// noneAnswer runs a prompt=none request and returns the authorization
// response.
func noneAnswer(t *testing.T, b *browser, conf *oauth2.Config, opts ...oauth2.AuthCodeOption) url.Values {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	return b.sessionCode(conf.AuthCodeURL("st", append(opts, promptNone, oauth2.S256ChallengeOption(verifier))...), conf.RedirectURL)
}

func loginRequired(f *fixture) map[string]string {
	return map[string]string{"error": "login_required", "error_description": "the user is not signed in", "state": "st", "iss": f.issuer}
}

// TestSessionFixation: a session cookie value planted in the browser
// before sign-in is never the one after it, and gives whoever planted it
// nothing of the victim's session.
func TestSessionFixation(t *testing.T) {
	for _, tc := range storeCases {
		t.Run(tc.name, func(t *testing.T) {
			f := newSessionFixture(t, tc.be)
			conf := f.rp("app", appSecret, appCB, "openid")

			// A value the attacker made up.
			const planted = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
			victim := f.browser()
			victim.setCookie("latchkey_session", planted)
			_, c := f.signedIn(t, victim, conf, "alice", alicePassword)
			after := victim.cookie("latchkey_session")
			if after == planted || !b64url43.MatchString(after) {
				t.Fatalf("session cookie after sign-in = %q (planted %q)", after, planted)
			}
			thief := f.browser()
			thief.setCookie("latchkey_session", planted)
			assertParams(t, noneAnswer(t, thief, conf), loginRequired(f))

			// The attacker's own session, planted: the victim signs in
			// (prompt=login, as an app that wants a fresh login does).
			attacker := f.browser()
			_, bob := f.signedIn(t, attacker, conf, "bob", bobPassword)
			bobCookie := attacker.cookie("latchkey_session")
			victim2 := f.browser()
			victim2.setCookie("latchkey_session", bobCookie)
			_, alice := f.signedIn(t, victim2, conf, "alice", alicePassword, oauth2.SetAuthURLParam("prompt", "login"))
			if alice["sub"] != "u-alice" || alice["sid"] == bob["sid"] || alice["sid"] == c["sid"] {
				t.Errorf("victim's ID token: sub %v sid %v (bob's sid %v)", alice["sub"], alice["sid"], bob["sid"])
			}
			if got := victim2.cookie("latchkey_session"); got == bobCookie {
				t.Error("the planted session cookie survived the sign-in")
			}
			// The planted session was replaced (and ended): the attacker's
			// cookie signs nobody in, certainly not alice.
			assertParams(t, noneAnswer(t, attacker, conf), loginRequired(f))
			if es := f.events(t, "session.ended"); len(es) != 1 || es[0].UserID != "u-bob" || es[0].Data["reason"] != "replaced" {
				t.Errorf("session.ended events = %+v", es)
			}
		})
	}
}

// events returns the audit events of one type.
func (f *fixture) events(t *testing.T, typ string) []storage.Event {
	t.Helper()
	es, err := f.db.ListEvents(t.Context(), storage.EventFilter{Type: typ})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// TestCookiesOverHTTPS: served over https (behind a proxy), the cookies
// carry the __Host- prefix, Secure, HttpOnly, SameSite=Lax, Path=/ and no
// Domain; a cookie without the prefix is not read.
func TestCookiesOverHTTPS(t *testing.T) {
	f := newFixtureOn(t, backends{https: true})
	f.addUser(aliceRecord, alicePassword)
	f.addClient(storage.Client{ID: "app", RedirectURIs: []string{appCB}}, appSecret)
	conf := f.rp("app", appSecret, appCB, "openid")
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier))

	get := func(u string, cookies ...string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(cookies) > 0 {
			req.Header.Set("Cookie", strings.Join(cookies, "; "))
		}
		return doRequest(t, req)
	}
	resp, _ := get(authURL)
	binding := setCookie(t, resp, "__Host-latchkey_auth", "; Path=/; Max-Age=600; HttpOnly; Secure; SameSite=Lax")
	assertHeaders(t, resp.Header, map[string]string{"Strict-Transport-Security": "max-age=63072000; includeSubDomains"})
	resp, page := get(f.issuer+resp.Header.Get("Location"), "__Host-latchkey_auth="+binding)
	if resp.StatusCode != 200 {
		t.Fatalf("login page: %d", resp.StatusCode)
	}
	form := hidden(t, page)
	form.Set("username", "alice")
	form.Set("password", alicePassword)
	req, err := http.NewRequest(http.MethodPost, f.issuer+"/login", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cookie", "__Host-latchkey_auth="+binding)
	resp, page = doRequest(t, req)
	callback(t, resp, page, appCB)
	sess := setCookie(t, resp, "__Host-latchkey_session", "; Path=/; HttpOnly; Secure; SameSite=Lax")

	noneURL := conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier), promptNone)
	resp, page = get(noneURL, "latchkey_session="+sess)
	assertParams(t, callback(t, resp, page, appCB), loginRequired(f))
	resp, page = get(noneURL, "__Host-latchkey_session="+sess)
	assertParams(t, callback(t, resp, page, appCB), map[string]string{"code": anyValue, "state": "st", "iss": f.issuer})
}

// setCookie returns the value of the one Set-Cookie for name and checks
// its attributes exactly.
func setCookie(t *testing.T, resp *http.Response, name, attrs string) string {
	t.Helper()
	var found []string
	for _, sc := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, name+"=") {
			found = append(found, sc)
		}
	}
	if len(found) != 1 {
		t.Fatalf("Set-Cookie for %s: %q (all: %q)", name, found, resp.Header.Values("Set-Cookie"))
	}
	value, rest, _ := strings.Cut(strings.TrimPrefix(found[0], name+"="), ";")
	if "; "+strings.TrimSpace(rest) != attrs || !b64url43.MatchString(value) {
		t.Errorf("Set-Cookie %s = %q, want value and %q", name, found[0], attrs)
	}
	return value
}

// TestPromptNoneAnswers: prompt=none answers with a code when the session
// will do, and otherwise with the error that names what is needed.
func TestPromptNoneAnswers(t *testing.T) {
	f := newSessionFixture(t, backends{})
	const thirdCB, corpCB = "https://third.example/cb", "https://corp.example/cb"
	f.addClient(storage.Client{ID: "third", RedirectURIs: []string{thirdCB}, FirstParty: ptr(false)}, "third-secret")
	f.addClient(storage.Client{ID: "corp", RedirectURIs: []string{corpCB}, AllowedConnectors: []string{"corp-saml"}}, "corp-secret")
	app := f.rp("app", appSecret, appCB, "openid")
	third := f.rp("third", "third-secret", thirdCB, "openid")
	corp := f.rp("corp", "corp-secret", corpCB, "openid")
	b := f.browser()
	f.signedIn(t, b, app, "alice", alicePassword)
	f.clock.Advance(10 * time.Second)

	for _, tc := range []struct {
		name string
		b    *browser
		conf *oauth2.Config
		opts []oauth2.AuthCodeOption
		want map[string]string
	}{
		{"signed in", b, app, nil, map[string]string{"code": anyValue, "state": "st", "iss": f.issuer}},
		{"not signed in", f.browser(), app, nil, loginRequired(f)},
		{"max_age exceeded", b, app, []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("max_age", "5")}, loginRequired(f)},
		{"consent needed", b, third, nil, map[string]string{"error": "consent_required",
			"error_description": "the user has not granted these scopes", "state": "st", "iss": f.issuer}},
		{"connector not allowed for the client", b, corp, nil, map[string]string{"error": "interaction_required",
			"error_description": "the user must sign in another way for this client", "state": "st", "iss": f.issuer}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assertParams(t, noneAnswer(t, tc.b, tc.conf, tc.opts...), tc.want)
		})
	}
	// Without prompt=none the connector case shows the login page, which
	// offers only what the client allows: here no password form (corp does
	// not allow "local") and no button (its connector is not configured).
	verifier := oauth2.GenerateVerifier()
	resp, page := b.get(corp.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/login" || strings.Contains(page, `name="password"`) ||
		!strings.Contains(page, "No sign-in method is available for this application.") {
		t.Fatalf("login page for corp: %d at %s\n%s", resp.StatusCode, resp.Request.URL, page)
	}
}

var (
	accountRE = regexp.MustCompile(`<button type="submit" name="sid" value="([^"]*)" class="account"><span class="account-name">[^<]*</span> <span class="small account-user">([^<·]*)[^<]*</span>( <span class="small">\(signed in\)</span>)?</button>`)
)

type shownAccount struct {
	sid, username string
	active        bool
}

// chooser checks that resp is the account chooser and returns its hidden
// fields and the accounts it offers, in order.
func chooser(t *testing.T, resp *http.Response, page string) (url.Values, []shownAccount) {
	t.Helper()
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/select-account" {
		t.Fatalf("want the account chooser, got %d at %s\n%s", resp.StatusCode, resp.Request.URL, page)
	}
	assertHTMLHeaders(t, resp.Header)
	var out []shownAccount
	for _, m := range accountRE.FindAllStringSubmatch(page, -1) {
		out = append(out, shownAccount{sid: m[1], username: strings.TrimSpace(html.UnescapeString(m[2])), active: m[3] != ""})
	}
	if !strings.Contains(page, `name="action" value="another"`) {
		t.Errorf("no \"use another account\" on the chooser")
	}
	return hidden(t, page), out
}

func assertAccounts(t *testing.T, got []shownAccount, want ...shownAccount) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("accounts = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("account %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestSelectAccount: one browser holds two accounts; prompt=select_account
// shows them, choosing one continues as that user (with its own session
// and sid), "use another account" signs in and keeps the first.
func TestSelectAccount(t *testing.T) {
	for _, tc := range storeCases {
		t.Run(tc.name, func(t *testing.T) {
			f := newSessionFixture(t, tc.be)
			conf := f.rp("app", appSecret, appCB, "openid")
			selectAccount := oauth2.SetAuthURLParam("prompt", "select_account")
			b := f.browser()
			aliceAuth := f.clock.Now().Unix()
			_, alice := f.signedIn(t, b, conf, "alice", alicePassword)
			aliceCookie := b.cookie("latchkey_session")
			f.clock.Advance(10 * time.Second)

			// One account: the chooser offers it and another one.
			verifier := oauth2.GenerateVerifier()
			resp, page := b.get(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier), selectAccount))
			form, accounts := chooser(t, resp, page)
			assertAccounts(t, accounts, shownAccount{alice["sid"].(string), "alice", true})

			// "Use another account": the password form, then bob.
			form.Set("action", "another")
			resp, page = b.post(f.issuer+"/select-account", form)
			if resp.Request.URL.Path != "/login" || !strings.Contains(page, `name="password"`) {
				t.Fatalf("use another account: %d at %s", resp.StatusCode, resp.Request.URL)
			}
			resp, page = b.submitLogin(hidden(t, page), "bob", bobPassword)
			q := callback(t, resp, page, appCB)
			_, _, bob := f.idToken(t, "app", exchange(t, conf, q.Get("code"), verifier))
			if bob["sub"] != "u-bob" || bob["sid"] == alice["sid"] {
				t.Fatalf("bob's ID token: %v", bob)
			}
			bobCookie := b.cookie("latchkey_session")
			if bobCookie == aliceCookie || b.cookie("latchkey_accounts") != aliceCookie {
				t.Fatalf("after adding bob: session cookie is alice's %v, accounts cookie holds alice's %v",
					bobCookie == aliceCookie, b.cookie("latchkey_accounts") == aliceCookie)
			}
			// Alice's session lives on.
			if es := f.events(t, "session.ended"); len(es) != 0 {
				t.Errorf("adding an account ended a session: %+v", es)
			}

			// Two accounts: the active one first. Choosing alice continues
			// as alice, in her own session.
			verifier = oauth2.GenerateVerifier()
			resp, page = b.get(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier), selectAccount, oauth2.SetAuthURLParam("nonce", "n-a")))
			form, accounts = chooser(t, resp, page)
			assertAccounts(t, accounts, shownAccount{bob["sid"].(string), "bob", true}, shownAccount{alice["sid"].(string), "alice", false})

			bad := cloneValues(form)
			bad.Set("csrf", "forged")
			bad.Set("sid", accounts[1].sid)
			resp, page = b.post(f.issuer+"/select-account", bad)
			assertErrorPage(t, resp, page, 400, "Form expired", "The form was not valid for this sign-in. Go back to the application and start again.")

			unknown := cloneValues(form)
			unknown.Set("sid", "not-a-session-of-this-browser")
			resp, page = b.post(f.issuer+"/select-account", unknown)
			chooser(t, resp, page)

			form.Set("sid", accounts[1].sid)
			resp, page = b.post(f.issuer+"/select-account", form)
			q = callback(t, resp, page, appCB)
			_, _, chosen := f.idToken(t, "app", exchange(t, conf, q.Get("code"), verifier))
			if chosen["sub"] != "u-alice" || chosen["sid"] != alice["sid"] || chosen["auth_time"] != num(aliceAuth) || chosen["nonce"] != "n-a" {
				t.Errorf("chose alice: %v", chosen)
			}
			if b.cookie("latchkey_session") != aliceCookie || b.cookie("latchkey_accounts") != bobCookie {
				t.Errorf("after choosing alice: the session cookie is alice's %v, the accounts cookie holds bob's %v",
					b.cookie("latchkey_session") == aliceCookie, b.cookie("latchkey_accounts") == bobCookie)
			}
			// The browser now rides alice's session.
			_, again := f.ridden(t, b, conf)
			if again["sub"] != "u-alice" || again["sid"] != alice["sid"] {
				t.Errorf("after choosing: %v", again)
			}

			// select_account with login: the chosen account signs in again
			// (username filled in) and keeps its session.
			verifier = oauth2.GenerateVerifier()
			resp, page = b.get(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "select_account login")))
			form, accounts = chooser(t, resp, page)
			form.Set("sid", bob["sid"].(string))
			resp, page = b.post(f.issuer+"/select-account", form)
			if resp.Request.URL.Path != "/login" || !strings.Contains(page, `required value="bob"`) {
				t.Fatalf("select_account login: %d at %s\n%s", resp.StatusCode, resp.Request.URL, page)
			}
			resp, page = b.submitLogin(hidden(t, page), "bob", bobPassword)
			q = callback(t, resp, page, appCB)
			_, _, bob2 := f.idToken(t, "app", exchange(t, conf, q.Get("code"), verifier))
			if bob2["sub"] != "u-bob" || bob2["sid"] != bob["sid"] || bob2["auth_time"] != num(f.clock.Now().Unix()) {
				t.Errorf("bob again: %v", bob2)
			}
			if b.cookie("latchkey_session") == bobCookie {
				t.Error("signing in again did not rotate bob's cookie")
			}

			// Bob signs out (his ID token as hint): the browser still holds
			// alice, but no active session. A request then shows the
			// chooser; prompt=none says an account must be chosen.
			tok := exchangeFresh(t, f, b, conf)
			resp, _ = b.getRaw(f.issuer + "/logout?" + url.Values{"id_token_hint": {tok}, "post_logout_redirect_uri": {appBye}}.Encode())
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != appBye {
				t.Fatalf("logout: %d %q", resp.StatusCode, resp.Header.Get("Location"))
			}
			assertParams(t, noneAnswer(t, b, conf), map[string]string{"error": "account_selection_required",
				"error_description": "the user must choose one of the accounts signed in", "state": "st", "iss": f.issuer})
			verifier = oauth2.GenerateVerifier()
			resp, page = b.get(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
			form, accounts = chooser(t, resp, page)
			assertAccounts(t, accounts, shownAccount{alice["sid"].(string), "alice", false})
			form.Set("sid", accounts[0].sid)
			resp, page = b.post(f.issuer+"/select-account", form)
			q = callback(t, resp, page, appCB)
			_, _, last := f.idToken(t, "app", exchange(t, conf, q.Get("code"), verifier))
			if last["sub"] != "u-alice" || last["sid"] != alice["sid"] {
				t.Errorf("after bob signed out, chose alice: %v", last)
			}
			logs := f.logs.String()
			for _, secret := range []string{aliceCookie, bobCookie, b.cookie("latchkey_session"), b.cookie("latchkey_accounts")} {
				if secret != "" && strings.Contains(logs, secret) {
					t.Fatal("a session cookie value appears in the logs")
				}
			}
		})
	}
}

// exchangeFresh rides b's session for conf and returns the raw ID token.
func exchangeFresh(t *testing.T, f *fixture, b *browser, conf *oauth2.Config) string {
	t.Helper()
	tok, _ := f.ridden(t, b, conf)
	return tok.Extra("id_token").(string)
}
