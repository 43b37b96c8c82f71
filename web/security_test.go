package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/storage"
)

const (
	wrongBrowserTitle = "Sign-in not recognised"
	wrongBrowserMsg   = "The sign-in request was started in another browser. Go back to the application and start again in this browser."
	formExpiredTitle  = "Form expired"
	formExpiredMsg    = "The form was not valid for this sign-in. Go back to the application and start again."
	expiredTitle      = "Sign-in expired"
	expiredMsg        = "The sign-in request has expired or was already completed. Go back to the application and start again."
)

// TestBindingToBrowser: a login started in one browser cannot be finished
// in another (login CSRF, session swapping), and the form's CSRF token
// must match.
func TestBindingToBrowser(t *testing.T) {
	f := newAppFixture(t)
	conf := f.rp("app", appSecret, appCB, "openid")
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier))

	victim := f.browser()
	form := victim.loginForm(authURL)
	attacker := f.browser()
	attackerForm := attacker.loginForm(authURL) // the attacker has a binding cookie of its own
	cookieless := f.browser()

	for _, tc := range []struct {
		name    string
		b       *browser
		form    url.Values
		title   string
		message string
	}{
		{"another browser's cookies", attacker, form, wrongBrowserTitle, wrongBrowserMsg},
		{"no cookies", cookieless, form, wrongBrowserTitle, wrongBrowserMsg},
		{"wrong CSRF token", victim, withValue(form, "csrf", strings.Repeat("A", 43)), formExpiredTitle, formExpiredMsg},
		{"CSRF token of another request", victim, withValue(form, "csrf", attackerForm.Get("csrf")), formExpiredTitle, formExpiredMsg},
		{"no CSRF token", victim, withValue(form, "csrf", ""), formExpiredTitle, formExpiredMsg},
		{"another browser's request", victim, attackerForm, wrongBrowserTitle, wrongBrowserMsg},
		{"unknown request", victim, withValue(form, "req", "bogus"), expiredTitle, expiredMsg},
		{"no request", victim, withValue(form, "req", ""), expiredTitle, expiredMsg},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.b.t = t
			resp, page := tc.b.submitLogin(tc.form, "alice", alicePassword)
			assertErrorPage(t, resp, page, 400, tc.title, tc.message)
			if c := tc.b.cookie("latchkey_session"); c != "" {
				t.Error("a refused login set a session cookie")
			}
		})
	}
	// Opening the victim's login page in another browser is refused too.
	resp, page := attacker.get(f.issuer + "/login?req=" + url.QueryEscape(form.Get("req")))
	assertErrorPage(t, resp, page, 400, wrongBrowserTitle, wrongBrowserMsg)
	resp, page = cookieless.get(f.issuer + "/login?req=" + url.QueryEscape(form.Get("req")))
	assertErrorPage(t, resp, page, 400, wrongBrowserTitle, wrongBrowserMsg)

	// The victim's own request is untouched and completes, once.
	victim.t = t
	resp, page = victim.submitLogin(form, "alice", alicePassword)
	assertParams(t, callback(t, resp, page, appCB), map[string]string{"code": anyValue, "state": "s", "iss": f.issuer})
	resp, page = victim.submitLogin(form, "alice", alicePassword)
	assertErrorPage(t, resp, page, 400, expiredTitle, expiredMsg)
}

func withValue(v url.Values, k, s string) url.Values {
	v = cloneValues(v)
	if s == "" {
		v.Del(k)
	} else {
		v.Set(k, s)
	}
	return v
}

// TestConsentBinding: the consent step is bound to the browser as well.
func TestConsentBinding(t *testing.T) {
	f := newFixture(t)
	f.addUser(aliceRecord, alicePassword)
	const cb = "https://third.example/cb"
	f.addClient(storage.Client{ID: "third", RedirectURIs: []string{cb}, FirstParty: ptr(false)}, "third-secret")
	conf := f.rp("third", "third-secret", cb, "openid")
	verifier := oauth2.GenerateVerifier()
	victim := f.browser()
	resp, page := victim.submitLogin(victim.loginForm(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier))), "alice", alicePassword)
	form, _ := consentPage(t, resp, page)
	form.Set("action", "approve")

	attacker := f.browser()
	attacker.loginForm(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	resp, page = attacker.post(f.issuer+"/consent", form)
	assertErrorPage(t, resp, page, 400, wrongBrowserTitle, wrongBrowserMsg)
	resp, page = f.browser().post(f.issuer+"/consent", form)
	assertErrorPage(t, resp, page, 400, wrongBrowserTitle, wrongBrowserMsg)
	resp, page = attacker.get(f.issuer + "/consent?req=" + url.QueryEscape(form.Get("req")))
	assertErrorPage(t, resp, page, 400, wrongBrowserTitle, wrongBrowserMsg)
	resp, page = victim.post(f.issuer+"/consent", withValue(form, "csrf", "x"))
	assertErrorPage(t, resp, page, 400, formExpiredTitle, formExpiredMsg)

	// Consent before login is refused.
	early := f.browser()
	lf := early.loginForm(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	resp, page = early.get(f.issuer + "/consent?req=" + url.QueryEscape(lf.Get("req")))
	assertErrorPage(t, resp, page, 400, "Sign in first", "Sign in before granting access.")
	lf.Set("action", "approve")
	resp, page = early.post(f.issuer+"/consent", lf)
	assertErrorPage(t, resp, page, 400, "Sign in first", "Sign in before granting access.")

	resp, page = victim.post(f.issuer+"/consent", form)
	assertParams(t, callback(t, resp, page, cb), map[string]string{"code": anyValue, "state": "s", "iss": f.issuer})
}

// TestAuthRequestExpiry: a started login lives 10 minutes.
func TestAuthRequestExpiry(t *testing.T) {
	f := newAppFixture(t)
	conf := f.rp("app", appSecret, appCB, "openid")
	verifier := oauth2.GenerateVerifier()
	b := f.browser()
	form := b.loginForm(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	f.clock.Advance(10*time.Minute + time.Second)
	resp, page := b.submitLogin(form, "alice", alicePassword)
	assertErrorPage(t, resp, page, 400, expiredTitle, expiredMsg)

	form = b.loginForm(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	f.clock.Advance(9 * time.Minute)
	resp, page = b.submitLogin(form, "alice", alicePassword)
	callback(t, resp, page, appCB)
}

// TestCookies: attributes of the binding and session cookies, and a
// session cookie value planted before login is not adopted.
func TestCookies(t *testing.T) {
	f := newAppFixture(t)
	conf := f.rp("app", appSecret, appCB, "openid")
	verifier := oauth2.GenerateVerifier()
	b := f.browser()
	const planted = "planted-by-an-attacker-0123456789abcdefghijk"
	b.setCookie("latchkey_session", planted)

	resp, _ := b.getRaw(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	cs := resp.Cookies()
	if len(cs) != 1 || cs[0].Name != "latchkey_auth" || !b64url43.MatchString(cs[0].Value) || cs[0].Path != "/" ||
		cs[0].MaxAge != 600 || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteLaxMode || cs[0].Secure || cs[0].Domain != "" {
		t.Errorf("binding cookie = %+v", cs)
	}
	binding := cs[0].Value
	resp, page := b.get(f.issuer + resp.Header.Get("Location"))
	if len(resp.Cookies()) != 0 {
		t.Errorf("login page set cookies %v", resp.Cookies())
	}
	resp, page = b.submitLogin(hidden(t, page), "alice", alicePassword)
	callback(t, resp, page, appCB)
	cs = resp.Cookies()
	if len(cs) != 1 || cs[0].Name != "latchkey_session" || !b64url43.MatchString(cs[0].Value) || cs[0].Path != "/" ||
		cs[0].MaxAge != 0 || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteLaxMode || cs[0].Secure || cs[0].Domain != "" {
		t.Errorf("session cookie = %+v", cs)
	}
	if cs[0].Value == planted || cs[0].Value == binding {
		t.Error("session cookie reuses a value the browser sent")
	}
	// A second login in the same browser keeps its binding cookie.
	resp, _ = b.getRaw(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "login")))
	if len(resp.Cookies()) != 0 || b.cookie("latchkey_auth") != binding {
		t.Errorf("binding cookie replaced: %v", resp.Cookies())
	}

	// The planted value is no session.
	other := f.browser()
	other.setCookie("latchkey_session", planted)
	q := other.sessionCode(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "none")), appCB)
	if q.Get("error") != "login_required" {
		t.Errorf("planted cookie: %v", q)
	}
}

// TestSecretsNeverLeak runs logins, failures and redemptions with
// distinctive secrets and checks that none reaches the logs, and that none
// reaches a page or a URL except the code in the callback URL.
func TestSecretsNeverLeak(t *testing.T) {
	f := newFixture(t)
	const (
		password      = "Pw-UNIQUE-7f3a9c-correct"
		wrongPassword = "Pw-UNIQUE-1b2c4e-wrong"
		secret        = "Secret-UNIQUE-5d6e7f"
		wrongSecret   = "Secret-UNIQUE-8f9a0b-wrong"
		garbageToken  = "Token-UNIQUE-3c4d5e-garbage"
		// A password typed into the username field: the form shows it
		// back (it is the username), the logs must not have it.
		typedAsUsername = "Pw-UNIQUE-9a8b7c-as-username"
	)
	f.addUser(aliceRecord, password)
	f.addClient(storage.Client{ID: "app", RedirectURIs: []string{appCB}}, secret)
	conf := f.rp("app", secret, appCB, "openid", "profile", "email")
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier))
	b := f.browser()
	secrets := map[string]string{"password": password, "wrong password": wrongPassword, "client secret": secret,
		"wrong client secret": wrongSecret, "garbage token": garbageToken, "code_verifier": verifier}

	// Failed logins: a wrong password, an unknown user, the password typed
	// as the username.
	form := b.loginForm(authURL)
	for _, up := range [][2]string{{"alice", wrongPassword}, {"nobody", password}, {typedAsUsername, wrongPassword}} {
		resp, page := b.submitLogin(form, up[0], up[1])
		if resp.StatusCode != 200 || !strings.Contains(page, "Incorrect username or password.") {
			t.Fatalf("failed login: %d", resp.StatusCode)
		}
	}
	secrets["csrf"] = form.Get("csrf")
	secrets["password typed as username"] = typedAsUsername
	secrets["binding cookie"] = b.cookie("latchkey_auth")

	resp, page := b.submitLogin(form, "alice", password)
	code := callback(t, resp, page, appCB).Get("code")
	secrets["code"] = code
	secrets["session cookie"] = b.cookie("latchkey_session")

	// Client authentication failures, then the redemption, then reuse.
	wrong := *conf
	wrong.ClientSecret = wrongSecret
	if _, err := wrong.Exchange(context.Background(), code, oauth2.VerifierOption(verifier)); err == nil {
		t.Fatal("wrong secret accepted")
	}
	tok := exchange(t, conf, code, verifier)
	if _, err := conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier)); err == nil {
		t.Fatal("code reused")
	}
	secrets["access token"] = tok.AccessToken
	secrets["ID token"], _ = tok.Extra("id_token").(string)
	// A second code with a wrong verifier.
	code2 := b.sessionCode(authURL, appCB).Get("code")
	secrets["second code"] = code2
	if _, err := conf.Exchange(context.Background(), code2, oauth2.VerifierOption(oauth2.GenerateVerifier())); err == nil {
		t.Fatal("wrong verifier accepted")
	}
	// Userinfo with garbage and with the revoked token.
	bearerGet(t, f.issuer+"/userinfo", garbageToken)
	bearerGet(t, f.issuer+"/userinfo", tok.AccessToken)

	logs := f.logs.String()
	if !strings.Contains(logs, `"msg":"request"`) {
		t.Fatal("no logs captured")
	}
	for name, s := range secrets {
		if s == "" {
			t.Fatalf("%s is empty", name)
		}
		// Whole value, and for tokens their signature part alone.
		probes := []string{s}
		if parts := strings.Split(s, "."); len(parts) == 3 {
			probes = append(probes, parts[2])
		}
		for _, p := range probes {
			if strings.Contains(logs, p) {
				t.Errorf("%s appears in the logs", name)
			}
			if name == "csrf" || name == "password typed as username" {
				continue // in the pages by design
			}
			for _, pg := range b.pages {
				if strings.Contains(pg, p) {
					t.Errorf("%s appears in a page:\n%s", name, pg)
				}
			}
			for _, u := range b.urls {
				if strings.Contains(u, p) && !((name == "code" || name == "second code") && strings.HasPrefix(u, appCB+"?code="+p+"&")) {
					t.Errorf("%s appears in URL %s", name, u)
				}
			}
		}
	}
}

// TestSecurityHeaders: every response carries nosniff and no-referrer;
// every HTML page a CSP with frame-ancestors 'none'.
func TestSecurityHeaders(t *testing.T) {
	f := newAppFixture(t)
	const defaultCSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
	for _, tc := range []struct {
		method, path string
		status       int
		csp          string
	}{
		{"GET", "/healthz", 200, defaultCSP},
		{"GET", "/.well-known/openid-configuration", 200, defaultCSP},
		{"GET", "/.well-known/oauth-authorization-server", 200, defaultCSP},
		{"GET", "/keys", 200, defaultCSP},
		{"GET", "/static/latchkey.css", 200, defaultCSP},
		{"GET", "/authorize?client_id=nope&redirect_uri=https://app.example/cb", 400, pageCSP},
		{"GET", "/login", 400, pageCSP},
		{"GET", "/consent?req=x", 400, pageCSP},
		{"POST", "/login", 400, pageCSP},
		{"GET", "/token", 405, defaultCSP},
		{"GET", "/userinfo", 401, defaultCSP},
		{"GET", "/nowhere", 404, defaultCSP},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, f.issuer+tc.path, nil)
			resp, body := doRequest(t, req)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			assertHeaders(t, resp.Header, map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
				"Content-Security-Policy": tc.csp})
			if resp.Header.Get("Strict-Transport-Security") != "" {
				t.Error("HSTS over plain http")
			}
		})
	}
}

// TestLoginRace: the same login form posted twice at once issues one code.
func TestLoginRace(t *testing.T) {
	f := newAppFixture(t)
	conf := f.rp("app", appSecret, appCB, "openid")
	verifier := oauth2.GenerateVerifier()
	b := f.browser()
	form := b.loginForm(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	form.Set("username", "alice")
	form.Set("password", alicePassword)
	const n = 4
	type answer struct {
		status   int
		location string
	}
	answers := make(chan answer, n)
	for range n {
		go func() {
			req, _ := http.NewRequest(http.MethodPost, f.issuer+"/login", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := b.raw.Do(req)
			if err != nil {
				answers <- answer{}
				return
			}
			resp.Body.Close()
			answers <- answer{resp.StatusCode, resp.Header.Get("Location")}
		}()
	}
	codes := 0
	for range n {
		a := <-answers
		switch {
		case a.status == http.StatusSeeOther && strings.HasPrefix(a.location, appCB+"?code="):
			codes++
		case a.status == http.StatusBadRequest && a.location == "":
		default:
			t.Errorf("answer %d %q", a.status, a.location)
		}
	}
	if codes != 1 {
		t.Errorf("%d codes issued for one login", codes)
	}
}
