package web_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/storage"
)

const (
	appCB         = "https://app.example/cb"
	appSecret     = "app-secret-0123456789"
	alicePassword = "correct horse battery staple"
	acrPwd        = "urn:latchkey:acr:pwd"
)

var aliceRecord = storage.User{ID: "u-alice", Username: "alice", Email: "alice@example.com", EmailVerified: true,
	Name: "Alice Liddell", Groups: []string{"admins", "staff"}}

// newAppFixture is a fixture with the user alice and the confidential,
// first-party client "app" (redirect URI appCB, secret appSecret).
func newAppFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	f.addUser(aliceRecord, alicePassword)
	f.addClient(storage.Client{ID: "app", Name: "The App", RedirectURIs: []string{appCB}}, appSecret)
	return f
}

// decodeJWT returns the protected header and the claims of a compact JWS
// without checking it (numbers as json.Number, for exact comparison).
func decodeJWT(t *testing.T, raw string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %d parts", len(parts))
	}
	dec := func(s string) map[string]any {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("base64: %v", err)
		}
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		var m map[string]any
		if err := d.Decode(&m); err != nil {
			t.Fatalf("json: %v", err)
		}
		return m
	}
	return dec(parts[0]), dec(parts[1])
}

func num(n int64) json.Number { return json.Number(strconv.FormatInt(n, 10)) }

// atHash is the at_hash of an access token under RS256/ES256.
func atHash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

var b64url22 = regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`)
var b64url43 = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// assertMap compares two JSON objects exactly.
func assertMap(t *testing.T, what string, got, want map[string]any) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: claim %s missing, want %v", what, k, w)
		} else if !reflect.DeepEqual(g, w) {
			t.Errorf("%s: claim %s = %#v, want %#v", what, k, g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected claim %s = %#v", what, k, g)
		}
	}
}

func exchange(t *testing.T, conf *oauth2.Config, code, verifier string) *oauth2.Token {
	t.Helper()
	var opts []oauth2.AuthCodeOption
	if verifier != "" {
		opts = append(opts, oauth2.VerifierOption(verifier))
	}
	tok, err := conf.Exchange(context.Background(), code, opts...)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return tok
}

// idToken verifies the ID token of tok with go-oidc (signature, iss, aud,
// exp, at_hash) and returns its raw header and claims.
func (f *fixture) idToken(t *testing.T, clientID string, tok *oauth2.Token) (*oidc.IDToken, map[string]any, map[string]any) {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		t.Fatal("token response has no id_token")
	}
	idt, err := f.verifier(clientID).Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Fatalf("at_hash: %v", err)
	}
	h, c := decodeJWT(t, raw)
	return idt, h, c
}

// sessionCode runs an authorization request that must ride the browser's
// session (no page) and returns the authorization response.
func (b *browser) sessionCode(authURL, redirectURI string) url.Values {
	b.t.Helper()
	resp, page := b.getRaw(authURL)
	return callback(b.t, resp, page, redirectURI)
}

func TestCodeFlowClaims(t *testing.T) {
	f := newAppFixture(t)
	conf := f.rp("app", appSecret, appCB, "openid", "profile", "email", "groups")
	verifier := oauth2.GenerateVerifier()
	b := f.browser()

	authTime := f.clock.Now()
	q := b.signIn(conf.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier), oidc.Nonce("n0nce")), "alice", alicePassword, appCB)
	assertParams(t, q, map[string]string{"code": anyValue, "state": "st4te", "iss": f.issuer})
	if !b64url43.MatchString(q.Get("code")) {
		t.Errorf("code %q is not 256 bits of base64url", q.Get("code"))
	}

	f.clock.Advance(7 * time.Second) // iat must differ from auth_time
	issued := f.clock.Now()
	tok := exchange(t, conf, q.Get("code"), verifier)
	if tok.TokenType != "Bearer" || tok.Extra("expires_in") != float64(3600) || tok.Extra("scope") != "openid profile email groups" {
		t.Errorf("token response: type %q expires_in %v scope %v", tok.TokenType, tok.Extra("expires_in"), tok.Extra("scope"))
	}
	if tok.RefreshToken != "" {
		t.Errorf("refresh token issued without offline_access")
	}

	_, idHeader, idClaims := f.idToken(t, "app", tok)
	if idHeader["alg"] != "RS256" || idHeader["typ"] != "JWT" || idHeader["kid"] == "" || len(idHeader) != 3 {
		t.Errorf("ID token header = %v", idHeader)
	}
	sid, _ := idClaims["sid"].(string)
	if !b64url43.MatchString(sid) {
		t.Errorf("sid = %q, want 256 bits of base64url", sid)
	}
	if sid == b.cookie("latchkey_session") {
		t.Error("sid is the session cookie value")
	}
	assertMap(t, "ID token", idClaims, map[string]any{
		"iss": f.issuer, "sub": "u-alice", "aud": "app", "azp": "app",
		"exp": num(issued.Unix() + 3600), "iat": num(issued.Unix()), "auth_time": num(authTime.Unix()),
		"nonce": "n0nce", "acr": acrPwd, "amr": []any{"pwd"}, "sid": sid, "at_hash": atHash(tok.AccessToken),
		"name": "Alice Liddell", "preferred_username": "alice", "email": "alice@example.com", "email_verified": true,
		"groups": []any{"admins", "staff"},
	})

	atHeader, atClaims := decodeJWT(t, tok.AccessToken)
	if atHeader["alg"] != "ES256" || atHeader["typ"] != "at+jwt" || atHeader["kid"] == "" || len(atHeader) != 3 {
		t.Errorf("access token header = %v", atHeader)
	}
	if atHeader["kid"] == idHeader["kid"] {
		t.Errorf("access and ID token signed with the same key %v", atHeader["kid"])
	}
	jti, _ := atClaims["jti"].(string)
	if !b64url22.MatchString(jti) {
		t.Errorf("jti = %q, want 128 bits of base64url", jti)
	}
	assertMap(t, "access token", atClaims, map[string]any{
		"iss": f.issuer, "sub": "u-alice", "aud": f.issuer, "client_id": "app",
		"exp": num(issued.Unix() + 3600), "iat": num(issued.Unix()), "auth_time": num(authTime.Unix()),
		"jti": jti, "scope": "openid profile email groups", "acr": acrPwd, "amr": []any{"pwd"}, "sid": sid,
		"groups": []any{"admins", "staff"},
	})

	ui, err := f.provider().UserInfo(context.Background(), oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	var uiClaims map[string]any
	if err := ui.Claims(&uiClaims); err != nil {
		t.Fatal(err)
	}
	assertMap(t, "userinfo", uiClaims, map[string]any{
		"sub": "u-alice", "name": "Alice Liddell", "preferred_username": "alice",
		"email": "alice@example.com", "email_verified": true, "groups": []any{"admins", "staff"},
	})
}

// TestTokenResponse checks the raw token response of a code redemption.
func TestTokenResponse(t *testing.T) {
	f := newAppFixture(t)
	b := f.browser()
	conf := f.rp("app", appSecret, appCB, "openid")
	verifier := oauth2.GenerateVerifier()
	q := b.signIn(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), "alice", alicePassword, appCB)

	form := url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {appCB}, "code_verifier": {verifier}}
	req, _ := http.NewRequest(http.MethodPost, f.issuer+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("app", appSecret)
	resp, body := doRequest(t, req)
	if resp.StatusCode != 200 {
		t.Fatalf("token: %d %s", resp.StatusCode, body)
	}
	assertHeaders(t, resp.Header, map[string]string{
		"Content-Type": "application/json", "Cache-Control": "no-store", "Pragma": "no-cache",
		"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
	})
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	at, _ := m["access_token"].(string)
	idt, _ := m["id_token"].(string)
	if at == "" || idt == "" {
		t.Fatalf("token response %s", body)
	}
	assertMap(t, "token response", m, map[string]any{
		"access_token": at, "id_token": idt, "token_type": "Bearer", "expires_in": float64(3600), "scope": "openid",
	})
}

func TestSessionReuse(t *testing.T) {
	f := newAppFixture(t)
	f.addClient(storage.Client{ID: "app2", RedirectURIs: []string{"https://two.example/cb"}}, "secret-two")
	conf := f.rp("app", appSecret, appCB, "openid")
	b := f.browser()
	verifier := oauth2.GenerateVerifier()
	authTime := f.clock.Now()
	q := b.signIn(conf.AuthCodeURL("one", oauth2.S256ChallengeOption(verifier), oidc.Nonce("first")), "alice", alicePassword, appCB)
	_, _, first := f.idToken(t, "app", exchange(t, conf, q.Get("code"), verifier))
	cookie := b.cookie("latchkey_session")
	if cookie == "" {
		t.Fatal("no session cookie after login")
	}

	f.clock.Advance(30 * time.Second)
	q = b.sessionCode(conf.AuthCodeURL("two", oauth2.S256ChallengeOption(verifier), oidc.Nonce("second")), appCB)
	assertParams(t, q, map[string]string{"code": anyValue, "state": "two", "iss": f.issuer})
	_, _, second := f.idToken(t, "app", exchange(t, conf, q.Get("code"), verifier))
	if second["sid"] != first["sid"] || second["auth_time"] != num(authTime.Unix()) || second["nonce"] != "second" {
		t.Errorf("second login: sid %v (first %v), auth_time %v (want %d), nonce %v", second["sid"], first["sid"], second["auth_time"], authTime.Unix(), second["nonce"])
	}
	if second["iat"] != num(f.clock.Now().Unix()) {
		t.Errorf("iat = %v, want %d", second["iat"], f.clock.Now().Unix())
	}

	// Single sign-on: another client rides the same session.
	conf2 := f.rp("app2", "secret-two", "https://two.example/cb", "openid")
	q = b.sessionCode(conf2.AuthCodeURL("three", oauth2.S256ChallengeOption(verifier)), "https://two.example/cb")
	_, _, third := f.idToken(t, "app2", exchange(t, conf2, q.Get("code"), verifier))
	if third["sid"] != first["sid"] || third["auth_time"] != num(authTime.Unix()) || third["aud"] != "app2" {
		t.Errorf("other client: sid %v auth_time %v aud %v", third["sid"], third["auth_time"], third["aud"])
	}
	if got := b.cookie("latchkey_session"); got != cookie {
		t.Error("riding the session changed the session cookie")
	}
}

func TestPromptNone(t *testing.T) {
	f := newAppFixture(t)
	conf := f.rp("app", appSecret, appCB, "openid")
	verifier := oauth2.GenerateVerifier()
	none := oauth2.SetAuthURLParam("prompt", "none")

	// Without a session: login_required, with state and iss, and no page.
	fresh := f.browser()
	q := fresh.sessionCode(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier), none), appCB)
	assertParams(t, q, map[string]string{"error": "login_required", "error_description": "the user is not signed in", "state": "st", "iss": f.issuer})
	if c := fresh.cookie("latchkey_session"); c != "" {
		t.Errorf("prompt=none set a session cookie")
	}

	// With a session: a code, no page.
	b := f.browser()
	b.signIn(conf.AuthCodeURL("login", oauth2.S256ChallengeOption(verifier)), "alice", alicePassword, appCB)
	q = b.sessionCode(conf.AuthCodeURL("st2", oauth2.S256ChallengeOption(verifier), none, oidc.Nonce("nn")), appCB)
	assertParams(t, q, map[string]string{"code": anyValue, "state": "st2", "iss": f.issuer})
	idt, _, _ := f.idToken(t, "app", exchange(t, conf, q.Get("code"), verifier))
	if idt.Nonce != "nn" || idt.Subject != "u-alice" {
		t.Errorf("nonce %q sub %q", idt.Nonce, idt.Subject)
	}

	// With a session that does not satisfy max_age: login_required.
	f.clock.Advance(10 * time.Second)
	q = b.sessionCode(conf.AuthCodeURL("st3", oauth2.S256ChallengeOption(verifier), none, oauth2.SetAuthURLParam("max_age", "5")), appCB)
	assertParams(t, q, map[string]string{"error": "login_required", "error_description": "the user is not signed in", "state": "st3", "iss": f.issuer})
}

// reauth runs an authorization request that must show the password form
// although the browser has a session, and returns the new ID token claims.
func reauth(t *testing.T, f *fixture, b *browser, conf *oauth2.Config, opts ...oauth2.AuthCodeOption) map[string]any {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	q := b.signIn(conf.AuthCodeURL("re", append(opts, oauth2.S256ChallengeOption(verifier))...), "alice", alicePassword, conf.RedirectURL)
	_, _, c := f.idToken(t, conf.ClientID, exchange(t, conf, q.Get("code"), verifier))
	return c
}

func TestPromptLoginAndMaxAge(t *testing.T) {
	f := newAppFixture(t)
	conf := f.rp("app", appSecret, appCB, "openid")
	b := f.browser()
	first := reauth(t, f, b, conf)
	firstTime := f.clock.Now().Unix()
	if first["auth_time"] != num(firstTime) {
		t.Fatalf("auth_time %v, want %d", first["auth_time"], firstTime)
	}
	oldCookie := b.cookie("latchkey_session")

	// prompt=login shows the password form again; auth_time moves, the
	// SSO session (sid) stays, the cookie rotates and the old value no
	// longer works.
	f.clock.Advance(20 * time.Second)
	c := reauth(t, f, b, conf, oauth2.SetAuthURLParam("prompt", "login"))
	if c["auth_time"] != num(f.clock.Now().Unix()) || c["sid"] != first["sid"] {
		t.Errorf("after prompt=login: auth_time %v (want %d), sid %v (want %v)", c["auth_time"], f.clock.Now().Unix(), c["sid"], first["sid"])
	}
	newCookie := b.cookie("latchkey_session")
	if newCookie == oldCookie || newCookie == "" {
		t.Errorf("session cookie not rotated on login")
	}
	thief := f.browser()
	thief.setCookie("latchkey_session", oldCookie)
	verifier := oauth2.GenerateVerifier()
	q := thief.sessionCode(conf.AuthCodeURL("t", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "none")), appCB)
	if q.Get("error") != "login_required" {
		t.Errorf("the replaced session cookie still signs in: %v", q)
	}

	// max_age=0 is prompt=login, even in the same second.
	c = reauth(t, f, b, conf, oauth2.SetAuthURLParam("max_age", "0"))
	if c["auth_time"] != num(f.clock.Now().Unix()) {
		t.Errorf("max_age=0: auth_time %v", c["auth_time"])
	}

	// max_age shorter than the session's age: the form; longer: the session.
	f.clock.Advance(10 * time.Second)
	lastAuth := f.clock.Now().Unix()
	c = reauth(t, f, b, conf, oauth2.SetAuthURLParam("max_age", "9"))
	if c["auth_time"] != num(lastAuth) {
		t.Errorf("max_age=9 after 10s: auth_time %v, want %d", c["auth_time"], lastAuth)
	}
	f.clock.Advance(10 * time.Second)
	verifier = oauth2.GenerateVerifier()
	q = b.sessionCode(conf.AuthCodeURL("m", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("max_age", "10")), appCB)
	_, _, c = f.idToken(t, "app", exchange(t, conf, q.Get("code"), verifier))
	if c["auth_time"] != num(lastAuth) || c["sid"] != first["sid"] {
		t.Errorf("max_age=10 after 10s: auth_time %v (want %d) sid %v", c["auth_time"], lastAuth, c["sid"])
	}
}

// consentForm opens a consent page (after following redirects) and
// returns its hidden fields and the scope descriptions it lists.
var scopeItemRE = regexp.MustCompile(`<li>([^<]*)</li>`)

func consentPage(t *testing.T, resp *http.Response, page string) (url.Values, []string) {
	t.Helper()
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/consent" {
		t.Fatalf("want the consent page, got %d at %s (Location %q)\n%s", resp.StatusCode, resp.Request.URL, resp.Header.Get("Location"), page)
	}
	assertHTMLHeaders(t, resp.Header)
	var items []string
	for _, m := range scopeItemRE.FindAllStringSubmatch(page, -1) {
		items = append(items, html.UnescapeString(m[1]))
	}
	return hidden(t, page), items
}

func TestConsent(t *testing.T) {
	f := newFixture(t)
	f.addUser(aliceRecord, alicePassword)
	const cb = "https://third.example/cb"
	f.addClient(storage.Client{ID: "third", Name: "Third <Party>", RedirectURIs: []string{cb}, FirstParty: ptr(false)}, "third-secret")
	conf := f.rp("third", "third-secret", cb, "openid", "profile")
	verifier := oauth2.GenerateVerifier()
	challenge := oauth2.S256ChallengeOption(verifier)
	b := f.browser()

	// Login, then the consent page.
	resp, page := b.submitLogin(b.loginForm(conf.AuthCodeURL("c1", challenge)), "alice", alicePassword)
	form, items := consentPage(t, resp, page)
	if want := []string{"Sign you in", "See your name and username"}; !reflect.DeepEqual(items, want) {
		t.Errorf("consent scopes = %q, want %q", items, want)
	}
	if !strings.Contains(page, "<strong>Third &lt;Party&gt;</strong> asks to:") {
		t.Errorf("consent page does not name the client (escaped):\n%s", page)
	}
	form.Set("action", "approve")
	resp, page = b.post(f.issuer+"/consent", form)
	q := callback(t, resp, page, cb)
	assertParams(t, q, map[string]string{"code": anyValue, "state": "c1", "iss": f.issuer})
	_, _, claims := f.idToken(t, "third", exchange(t, conf, q.Get("code"), verifier))
	if claims["name"] != "Alice Liddell" {
		t.Errorf("ID token after consent: %v", claims)
	}

	// Remembered: the same scopes, or fewer, need no page.
	q = b.sessionCode(conf.AuthCodeURL("c2", challenge), cb)
	assertParams(t, q, map[string]string{"code": anyValue, "state": "c2", "iss": f.issuer})
	q = b.sessionCode(conf.AuthCodeURL("c3", challenge, oauth2.SetAuthURLParam("scope", "openid")), cb)
	assertParams(t, q, map[string]string{"code": anyValue, "state": "c3", "iss": f.issuer})

	// prompt=consent asks again.
	resp, page = b.get(conf.AuthCodeURL("c4", challenge, oauth2.SetAuthURLParam("prompt", "consent")))
	form, _ = consentPage(t, resp, page)
	form.Set("action", "approve")
	resp, page = b.post(f.issuer+"/consent", form)
	assertParams(t, callback(t, resp, page, cb), map[string]string{"code": anyValue, "state": "c4", "iss": f.issuer})

	// A new scope asks again; deny is access_denied.
	resp, page = b.get(conf.AuthCodeURL("c5", challenge, oauth2.SetAuthURLParam("scope", "openid email")))
	form, items = consentPage(t, resp, page)
	if want := []string{"Sign you in", "See your email address"}; !reflect.DeepEqual(items, want) {
		t.Errorf("consent scopes = %q, want %q", items, want)
	}
	form.Set("action", "deny")
	resp, page = b.post(f.issuer+"/consent", form)
	assertParams(t, callback(t, resp, page, cb), map[string]string{"error": "access_denied", "error_description": "the user denied access", "state": "c5", "iss": f.issuer})
	// The denied request is gone.
	form.Set("action", "approve")
	resp, page = b.post(f.issuer+"/consent", form)
	assertErrorPage(t, resp, page, 400, "Sign-in expired", "The sign-in request has expired or was already completed. Go back to the application and start again.")

	// prompt=none without consent for the scopes: consent_required.
	q = b.sessionCode(conf.AuthCodeURL("c6", challenge, oauth2.SetAuthURLParam("scope", "openid email"), oauth2.SetAuthURLParam("prompt", "none")), cb)
	assertParams(t, q, map[string]string{"error": "consent_required", "error_description": "the user has not granted these scopes", "state": "c6", "iss": f.issuer})
	// ...and with consent, a code.
	q = b.sessionCode(conf.AuthCodeURL("c7", challenge, oauth2.SetAuthURLParam("prompt", "none")), cb)
	assertParams(t, q, map[string]string{"code": anyValue, "state": "c7", "iss": f.issuer})
}

var (
	formActionRE = regexp.MustCompile(`<form method="post" action="([^"]*)" id="f">`)
	formFieldRE  = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
	scriptRE     = regexp.MustCompile(`(?s)<script>(.*?)</script>`)
)

// formPost parses a response_mode=form_post page: its action and fields,
// and checks its CSP admits exactly its inline script.
func formPost(t *testing.T, resp *http.Response, page string) (string, url.Values) {
	t.Helper()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("form_post: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), page)
	}
	m := formActionRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no form in\n%s", page)
	}
	action := html.UnescapeString(m[1])
	fields := url.Values{}
	for _, fm := range formFieldRE.FindAllStringSubmatch(page, -1) {
		fields.Add(html.UnescapeString(fm[1]), html.UnescapeString(fm[2]))
	}
	scripts := scriptRE.FindAllStringSubmatch(page, -1)
	if len(scripts) != 1 {
		t.Fatalf("form_post page has %d scripts", len(scripts))
	}
	sum := sha256.Sum256([]byte(scripts[0][1]))
	wantCSP := "default-src 'none'; script-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; frame-ancestors 'none'; base-uri 'none'"
	assertHeaders(t, resp.Header, map[string]string{
		"Content-Security-Policy": wantCSP, "Cache-Control": "no-store",
		"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
	})
	if resp.Header.Get("Location") != "" {
		t.Errorf("form_post page with a Location")
	}
	return action, fields
}

func TestFormPost(t *testing.T) {
	f := newAppFixture(t)
	conf := f.rp("app", appSecret, appCB, "openid")
	verifier := oauth2.GenerateVerifier()
	fp := oauth2.SetAuthURLParam("response_mode", "form_post")
	b := f.browser()

	// A state that would break out of the attribute if not escaped.
	state := `"><script>alert(1)</script>&amp;`
	resp, page := b.submitLogin(b.loginForm(conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), fp)), "alice", alicePassword)
	action, fields := formPost(t, resp, page)
	if action != appCB {
		t.Errorf("form action %q, want %q", action, appCB)
	}
	assertParams(t, fields, map[string]string{"code": anyValue, "state": state, "iss": f.issuer})
	if strings.Contains(page, "<script>alert") {
		t.Error("state not escaped in the form_post page")
	}
	exchange(t, conf, fields.Get("code"), verifier)

	// Riding the session: the form at once.
	resp, page = b.getRaw(conf.AuthCodeURL("s2", oauth2.S256ChallengeOption(verifier), fp))
	_, fields = formPost(t, resp, page)
	assertParams(t, fields, map[string]string{"code": anyValue, "state": "s2", "iss": f.issuer})

	// Errors are posted too.
	resp, page = f.browser().getRaw(conf.AuthCodeURL("s3", oauth2.S256ChallengeOption(verifier), fp, oauth2.SetAuthURLParam("prompt", "none")))
	action, fields = formPost(t, resp, page)
	if action != appCB {
		t.Errorf("form action %q", action)
	}
	assertParams(t, fields, map[string]string{"error": "login_required", "error_description": "the user is not signed in", "state": "s3", "iss": f.issuer})
}

// TestRedirectURIQueryKept: a registered redirect URI with a query keeps
// it byte for byte; the response parameters are added after it.
func TestRedirectURIQueryKept(t *testing.T) {
	f := newFixture(t)
	f.addUser(aliceRecord, alicePassword)
	const cb = "https://app.example/cb?z=1&a=%7E&flag"
	f.addClient(storage.Client{ID: "app", RedirectURIs: []string{cb}}, appSecret)
	conf := f.rp("app", appSecret, cb, "openid")
	verifier := oauth2.GenerateVerifier()
	b := f.browser()
	resp, page := b.submitLogin(b.loginForm(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier))), "alice", alicePassword)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, cb+"&") {
		t.Fatalf("want 303 to %s&..., got %d %q\n%s", cb, resp.StatusCode, loc, page)
	}
	u, _ := url.Parse(loc)
	q := u.Query()
	assertParams(t, q, map[string]string{"z": "1", "a": "~", "flag": "", "code": anyValue, "state": "st", "iss": f.issuer})
	exchange(t, conf, q.Get("code"), verifier)
}

func TestPublicClientPKCE(t *testing.T) {
	f := newFixture(t)
	f.addUser(aliceRecord, alicePassword)
	const cb = "https://spa.example/cb"
	f.addClient(storage.Client{ID: "spa", RedirectURIs: []string{cb}, TokenEndpointAuthMethod: "none"}, "")
	conf := f.rp("spa", "", cb, "openid")
	conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	verifier := oauth2.GenerateVerifier()
	b := f.browser()
	q := b.signIn(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), "alice", alicePassword, cb)
	idt, _, _ := f.idToken(t, "spa", exchange(t, conf, q.Get("code"), verifier))
	if idt.Subject != "u-alice" {
		t.Errorf("sub %q", idt.Subject)
	}

	// Without the verifier: invalid_grant.
	q = b.sessionCode(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), cb)
	_, err := conf.Exchange(context.Background(), q.Get("code"))
	assertRetrieveError(t, err, 400, "invalid_grant", "code_verifier is required")
}

// assertRetrieveError checks an x/oauth2 token endpoint error.
func assertRetrieveError(t *testing.T, err error, status int, code, desc string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("error %v is not a RetrieveError", err)
	}
	if re.Response.StatusCode != status || re.ErrorCode != code || re.ErrorDescription != desc {
		t.Errorf("token error = %d %q %q, want %d %q %q", re.Response.StatusCode, re.ErrorCode, re.ErrorDescription, status, code, desc)
	}
}

func TestClientAuthentication(t *testing.T) {
	f := newFixture(t)
	f.addUser(aliceRecord, alicePassword)
	// Characters that must be form-urlencoded before base64 (RFC 6749
	// §2.3.1): ':' in the id, '+', '/', '=', '&', '%' in the secret.
	const cb = "https://app.example/cb"
	f.addClient(storage.Client{ID: "my:app", RedirectURIs: []string{cb}}, "s3cr3t+/=&%")
	f.addClient(storage.Client{ID: "post-only", RedirectURIs: []string{cb}, TokenEndpointAuthMethod: "client_secret_post"}, "post-secret")
	f.addClient(storage.Client{ID: "basic-only", RedirectURIs: []string{cb}, TokenEndpointAuthMethod: "client_secret_basic"}, "basic-secret")
	b := f.browser()
	verifier := oauth2.GenerateVerifier()
	first := true

	for _, tc := range []struct {
		name, client, secret string
		style                oauth2.AuthStyle
		wantErr              string // "" for success, else the error code (401 invalid_client)
	}{
		{"basic with encoded id and secret", "my:app", "s3cr3t+/=&%", oauth2.AuthStyleInHeader, ""},
		{"post with the same client", "my:app", "s3cr3t+/=&%", oauth2.AuthStyleInParams, ""},
		{"basic, wrong secret", "my:app", "s3cr3t+/=&", oauth2.AuthStyleInHeader, "invalid_client"},
		{"post-only client by post", "post-only", "post-secret", oauth2.AuthStyleInParams, ""},
		{"post-only client by basic", "post-only", "post-secret", oauth2.AuthStyleInHeader, "invalid_client"},
		{"basic-only client by basic", "basic-only", "basic-secret", oauth2.AuthStyleInHeader, ""},
		{"basic-only client by post", "basic-only", "basic-secret", oauth2.AuthStyleInParams, "invalid_client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b.t = t
			conf := f.rp(tc.client, tc.secret, cb, "openid")
			conf.Endpoint.AuthStyle = tc.style
			authURL := conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier))
			var q url.Values
			if first {
				q = b.signIn(authURL, "alice", alicePassword, cb)
				first = false
			} else {
				q = b.sessionCode(authURL, cb)
			}
			tok, err := conf.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
			if tc.wantErr != "" {
				assertRetrieveError(t, err, 401, tc.wantErr, "client authentication failed")
				return
			}
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			if idt, _, _ := f.idToken(t, tc.client, tok); idt.Audience[0] != tc.client {
				t.Errorf("aud %v", idt.Audience)
			}
		})
	}
}

func TestNativeLoopbackRedirect(t *testing.T) {
	f := newFixture(t)
	f.addUser(aliceRecord, alicePassword)
	f.addClient(storage.Client{ID: "cli", ApplicationType: "native", RedirectURIs: []string{"http://127.0.0.1/callback", "http://[::1]:8080/callback"}}, "")
	f.addClient(storage.Client{ID: "web", RedirectURIs: []string{"http://127.0.0.1:8080/callback"}}, "web-secret")
	b := f.browser()
	verifier := oauth2.GenerateVerifier()
	public := func(cb string) *oauth2.Config {
		c := f.rp("cli", "", cb, "openid")
		c.Endpoint.AuthStyle = oauth2.AuthStyleInParams
		return c
	}

	// Any port on the registered loopback host and path.
	conf := public("http://127.0.0.1:53123/callback")
	q := b.signIn(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), "alice", alicePassword, "http://127.0.0.1:53123/callback")
	exchange(t, conf, q.Get("code"), verifier)
	conf = public("http://[::1]:61000/callback")
	q = b.sessionCode(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), "http://[::1]:61000/callback")
	tok := exchange(t, conf, q.Get("code"), verifier)
	// The code is bound to the port used.
	q = b.sessionCode(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), "http://[::1]:61000/callback")
	_, err := public("http://[::1]:8080/callback").Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier))
	assertRetrieveError(t, err, 400, "invalid_grant", "redirect_uri does not match the authorization request")
	if tok.AccessToken == "" {
		t.Error("no access token")
	}

	for _, tc := range []struct{ client, redirect string }{
		{"cli", "http://127.0.0.1:53123/other"},
		{"cli", "http://localhost:53123/callback"},
		{"cli", "https://127.0.0.1:53123/callback"},
		{"cli", "http://127.0.0.1:53123/callback?x=1"},
		{"web", "http://127.0.0.1:53123/callback"},
	} {
		c := f.rp(tc.client, "", tc.redirect, "openid")
		resp, page := b.getRaw(c.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
		assertErrorPage(t, resp, page, 400, "Invalid redirect", "The address to return to is not registered for this application.")
	}
}

func TestScopesSelectClaims(t *testing.T) {
	f := newAppFixture(t)
	b := f.browser()
	verifier := oauth2.GenerateVerifier()
	b.signIn(f.rp("app", appSecret, appCB, "openid").AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), "alice", alicePassword, appCB)
	for _, tc := range []struct {
		scope string
		want  map[string]any // profile claims in the ID token and userinfo
	}{
		{"openid", map[string]any{}},
		{"openid profile", map[string]any{"name": "Alice Liddell", "preferred_username": "alice"}},
		{"openid email", map[string]any{"email": "alice@example.com", "email_verified": true}},
		{"openid groups", map[string]any{"groups": []any{"admins", "staff"}}},
		{"openid profile email groups unknown", map[string]any{"name": "Alice Liddell", "preferred_username": "alice",
			"email": "alice@example.com", "email_verified": true, "groups": []any{"admins", "staff"}}},
	} {
		t.Run(tc.scope, func(t *testing.T) {
			conf := f.rp("app", appSecret, appCB, strings.Fields(tc.scope)...)
			q := b.sessionCode(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), appCB)
			tok := exchange(t, conf, q.Get("code"), verifier)
			if want := strings.TrimSuffix(tc.scope, " unknown"); tok.Extra("scope") != want {
				t.Errorf("granted scope %v, want %q", tok.Extra("scope"), want)
			}
			_, _, claims := f.idToken(t, "app", tok)
			got := map[string]any{}
			for _, k := range []string{"name", "preferred_username", "email", "email_verified", "groups"} {
				if v, ok := claims[k]; ok {
					got[k] = v
				}
			}
			assertMap(t, "ID token profile claims", got, tc.want)

			ui, err := f.provider().UserInfo(context.Background(), oauth2.StaticTokenSource(tok))
			if err != nil {
				t.Fatal(err)
			}
			var uc map[string]any
			if err := ui.Claims(&uc); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{"sub": "u-alice"}
			for k, v := range tc.want {
				want[k] = v
			}
			assertMap(t, "userinfo", uc, want)
		})
	}
}

func TestDisabledUser(t *testing.T) {
	f := newAppFixture(t)
	f.addUser(storage.User{ID: "u-bob", Username: "bob", Email: "bob@example.com", Disabled: true}, "bob-password")
	conf := f.rp("app", appSecret, appCB, "openid", "email")
	verifier := oauth2.GenerateVerifier()

	// A disabled user gets the same answer as a wrong password.
	b := f.browser()
	form := b.loginForm(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	resp, page := b.submitLogin(form, "bob", "bob-password")
	assertLoginError(t, resp, page, "bob")
	resp, page = b.submitLogin(form, "alice", "wrong password")
	assertLoginError(t, resp, page, "alice")

	// alice signs in and has a token and a session; then she is disabled.
	q := b.signIn(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), "alice", alicePassword, appCB)
	tok := exchange(t, conf, q.Get("code"), verifier)
	pending := b.sessionCode(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), appCB).Get("code")
	f.setDisabled("u-alice", true)

	resp, body := bearerGet(t, f.issuer+"/userinfo", tok.AccessToken)
	assertBearerError(t, resp, body, 401, "invalid_token", "the account is not available")
	_, err := conf.Exchange(context.Background(), pending, oauth2.VerifierOption(verifier))
	assertRetrieveError(t, err, 400, "invalid_grant", "the account is not available")
	q = b.sessionCode(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), appCB)
	assertParams(t, q, map[string]string{"error": "access_denied", "error_description": "the account is not available", "state": "s", "iss": f.issuer})
	resp, page = b.submitLogin(b.loginForm(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "login"))), "alice", alicePassword)
	assertLoginError(t, resp, page, "alice")
}

var loginErrorRE = regexp.MustCompile(`<p class="error" role="alert" id="login-error">([^<]*)</p>`)

// assertLoginError: the password form again, with the one generic message
// and the username kept (never the password).
func assertLoginError(t *testing.T, resp *http.Response, page, username string) {
	t.Helper()
	if resp.StatusCode != 200 || resp.Header.Get("Location") != "" || resp.Request.URL.Path != "/login" {
		t.Fatalf("failed login: %d %q at %s", resp.StatusCode, resp.Header.Get("Location"), resp.Request.URL)
	}
	assertHTMLHeaders(t, resp.Header)
	m := loginErrorRE.FindStringSubmatch(page)
	if m == nil || m[1] != "Incorrect username or password." {
		t.Errorf("login error = %v\n%s", m, page)
	}
	if !strings.Contains(page, `required value="`+username+`"`) {
		t.Errorf("username %q not kept in the form", username)
	}
	hidden(t, page)
}

// TestFlowOnProductionStores runs the core of the flow on PostgreSQL and
// Redis (the production stores; skipped without them unless
// LATCHKEY_TEST_REQUIRE_SERVICES=1) as well as on SQLite.
func TestFlowOnProductionStores(t *testing.T) {
	for _, tc := range []struct {
		name string
		be   backends
	}{
		{"sqlite", backends{}},
		{"postgres+redis", backends{postgres: true, redis: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixtureOn(t, tc.be)
			f.addUser(aliceRecord, alicePassword)
			f.addClient(storage.Client{ID: "app", RedirectURIs: []string{appCB}}, appSecret)
			const cb = "https://third.example/cb"
			f.addClient(storage.Client{ID: "third", RedirectURIs: []string{cb}, FirstParty: ptr(false)}, "third-secret")
			conf := f.rp("app", appSecret, appCB, "openid", "email")
			verifier := oauth2.GenerateVerifier()
			b := f.browser()

			authTime := f.clock.Now().Unix()
			q := b.signIn(conf.AuthCodeURL("s1", oauth2.S256ChallengeOption(verifier), oidc.Nonce("n1")), "alice", alicePassword, appCB)
			code := q.Get("code")
			tok := exchange(t, conf, code, verifier)
			_, _, first := f.idToken(t, "app", tok)
			if first["nonce"] != "n1" || first["auth_time"] != num(authTime) || first["email"] != "alice@example.com" || first["amr"].([]any)[0] != "pwd" {
				t.Errorf("ID token %v", first)
			}

			// The session carries a second login; prompt=login renews it
			// (same sid, new cookie, old cookie dead).
			q = b.sessionCode(conf.AuthCodeURL("s2", oauth2.S256ChallengeOption(verifier)), appCB)
			_, _, second := f.idToken(t, "app", exchange(t, conf, q.Get("code"), verifier))
			if second["sid"] != first["sid"] || second["auth_time"] != num(authTime) {
				t.Errorf("session reuse: %v", second)
			}
			old := b.cookie("latchkey_session")
			f.clock.Advance(5 * time.Second)
			c := reauth(t, f, b, conf, oauth2.SetAuthURLParam("prompt", "login"))
			if c["sid"] != first["sid"] || c["auth_time"] != num(authTime+5) {
				t.Errorf("prompt=login: %v", c)
			}
			thief := f.browser()
			thief.setCookie("latchkey_session", old)
			q = thief.sessionCode(conf.AuthCodeURL("t", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "none")), appCB)
			assertParams(t, q, map[string]string{"error": "login_required", "error_description": "the user is not signed in", "state": "t", "iss": f.issuer})

			// Consent, remembered.
			conf3 := f.rp("third", "third-secret", cb, "openid")
			resp, page := b.get(conf3.AuthCodeURL("c", oauth2.S256ChallengeOption(verifier)))
			form, _ := consentPage(t, resp, page)
			form.Set("action", "approve")
			resp, page = b.post(f.issuer+"/consent", form)
			callback(t, resp, page, cb)
			b.sessionCode(conf3.AuthCodeURL("c", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "none")), cb)

			// Reuse of the first code revokes its access token.
			_, err := conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
			assertRetrieveError(t, err, 400, "invalid_grant", "the authorization code is invalid, expired or already used")
			resp, body := bearerGet(t, f.issuer+"/userinfo", tok.AccessToken)
			assertBearerError(t, resp, body, 401, "invalid_token", "the access token was revoked")
		})
	}
}

// TestIDTokenAlgorithms: the ID token is signed with the client's
// id_token_signed_response_alg (RS256 by default), at_hash computed to
// match; the access token stays ES256.
func TestIDTokenAlgorithms(t *testing.T) {
	f := newFixture(t)
	f.addUser(aliceRecord, alicePassword)
	b := f.browser()
	verifier := oauth2.GenerateVerifier()
	first := true
	for _, alg := range []string{"", "RS256", "ES256", "EdDSA"} {
		name := alg
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) {
			b.t = t
			id := "client-" + alg
			f.addClient(storage.Client{ID: id, RedirectURIs: []string{appCB}, IDTokenSignedAlg: alg}, "s3cret")
			conf := f.rp(id, "s3cret", appCB, "openid")
			authURL := conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier))
			var q url.Values
			if first {
				q = b.signIn(authURL, "alice", alicePassword, appCB)
				first = false
			} else {
				q = b.sessionCode(authURL, appCB)
			}
			tok := exchange(t, conf, q.Get("code"), verifier)
			_, h, _ := f.idToken(t, id, tok) // go-oidc checks the signature and at_hash
			want := alg
			if want == "" {
				want = "RS256"
			}
			if h["alg"] != want {
				t.Errorf("ID token alg %v, want %s", h["alg"], want)
			}
			if ah, _ := decodeJWT(t, tok.AccessToken); ah["alg"] != "ES256" {
				t.Errorf("access token alg %v", ah["alg"])
			}
		})
	}
}

// TestClaimsParameter: claims named in the id_token member of the claims
// parameter (OIDC Core §5.5) are released in the ID token without their
// scope.
func TestClaimsParameter(t *testing.T) {
	f := newAppFixture(t)
	conf := f.rp("app", appSecret, appCB, "openid")
	verifier := oauth2.GenerateVerifier()
	b := f.browser()
	q := b.signIn(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("claims", `{"id_token":{"email":{"essential":true},"groups":null,"unknown":null}}`)), "alice", alicePassword, appCB)
	tok := exchange(t, conf, q.Get("code"), verifier)
	_, _, claims := f.idToken(t, "app", tok)
	got := map[string]any{}
	for _, k := range []string{"name", "preferred_username", "email", "email_verified", "groups", "unknown"} {
		if v, ok := claims[k]; ok {
			got[k] = v
		}
	}
	assertMap(t, "ID token", got, map[string]any{"email": "alice@example.com", "groups": []any{"admins", "staff"}})

	// The userinfo member: userinfo releases what it names (OIDC Core
	// §5.5) although the email scope was not granted.
	q = b.sessionCode(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("claims", `{"userinfo":{"email":null}}`)), appCB)
	tok = exchange(t, conf, q.Get("code"), verifier)
	resp, body := bearerGet(t, f.issuer+"/userinfo", tok.AccessToken)
	var ui map[string]any
	if err := json.Unmarshal([]byte(body), &ui); err != nil || resp.StatusCode != 200 {
		t.Fatalf("userinfo %d %s", resp.StatusCode, body)
	}
	assertMap(t, "userinfo", ui, map[string]any{"sub": "u-alice", "email": "alice@example.com"})
}

// TestLoginHint: login_hint fills the username field, escaped.
func TestLoginHint(t *testing.T) {
	f := newAppFixture(t)
	conf := f.rp("app", appSecret, appCB, "openid")
	verifier := oauth2.GenerateVerifier()
	b := f.browser()
	hint := `alice"><script>x</script>`
	resp, page := b.get(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("login_hint", hint)))
	if resp.StatusCode != 200 {
		t.Fatalf("login page %d", resp.StatusCode)
	}
	assertHTMLHeaders(t, resp.Header)
	if !strings.Contains(page, `required value="`+html.EscapeString(hint)+`"`) || strings.Contains(page, "<script>x") {
		t.Errorf("login_hint not in the username field, escaped:\n%s", page)
	}
	if !strings.Contains(page, "to continue to <strong>The App</strong>") {
		t.Errorf("login page does not name the client")
	}
}

// TestSessionTimeouts: a session ends after 24h without use and 7 days
// after sign-in whatever the use.
func TestSessionTimeouts(t *testing.T) {
	f := newAppFixture(t)
	conf := f.rp("app", appSecret, appCB, "openid")
	verifier := oauth2.GenerateVerifier()
	none := oauth2.SetAuthURLParam("prompt", "none")
	b := f.browser()
	b.signIn(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), "alice", alicePassword, appCB)
	signedIn := f.clock.Now()
	ride := func(wantCode bool) {
		t.Helper()
		q := b.sessionCode(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier), none), appCB)
		if got := q.Get("code") != ""; got != wantCode {
			t.Errorf("at +%s: code %v, want %v (%v)", f.clock.Now().Sub(signedIn), got, wantCode, q)
		}
	}
	// Used every 23h: alive until the absolute limit.
	for f.clock.Now().Add(23 * time.Hour).Before(signedIn.Add(7 * 24 * time.Hour)) {
		f.clock.Advance(23 * time.Hour)
		ride(true)
	}
	f.clock.Set(signedIn.Add(7*24*time.Hour - time.Second))
	ride(true)
	f.clock.Set(signedIn.Add(7 * 24 * time.Hour))
	ride(false)

	// Idle for 24h: gone.
	b = f.browser()
	b.signIn(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), "alice", alicePassword, appCB)
	signedIn = f.clock.Now()
	f.clock.Advance(24*time.Hour - time.Second)
	ride(true)
	f.clock.Advance(24*time.Hour - time.Second)
	ride(true)
	f.clock.Advance(24 * time.Hour)
	ride(false)
}

// TestLoginAsAnotherUser: signing in as someone else in a browser with a
// session ends that session and starts a new one.
func TestLoginAsAnotherUser(t *testing.T) {
	f := newAppFixture(t)
	f.addUser(storage.User{ID: "u-bob", Username: "bob"}, "bob-password")
	conf := f.rp("app", appSecret, appCB, "openid")
	b := f.browser()
	alice := reauth(t, f, b, conf)
	aliceCookie := b.cookie("latchkey_session")

	verifier := oauth2.GenerateVerifier()
	q := b.signIn(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "login")), "bob", "bob-password", appCB)
	_, _, bob := f.idToken(t, "app", exchange(t, conf, q.Get("code"), verifier))
	if bob["sub"] != "u-bob" || bob["sid"] == alice["sid"] {
		t.Errorf("bob's ID token: sub %v sid %v (alice's sid %v)", bob["sub"], bob["sid"], alice["sid"])
	}
	// The browser now rides bob's session; alice's is gone.
	q = b.sessionCode(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), appCB)
	_, _, again := f.idToken(t, "app", exchange(t, conf, q.Get("code"), verifier))
	if again["sub"] != "u-bob" || again["sid"] != bob["sid"] {
		t.Errorf("after switching: %v", again)
	}
	thief := f.browser()
	thief.setCookie("latchkey_session", aliceCookie)
	q = thief.sessionCode(conf.AuthCodeURL("t", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("prompt", "none")), appCB)
	if q.Get("error") != "login_required" {
		t.Errorf("alice's old session cookie still works: %v", q)
	}
}
