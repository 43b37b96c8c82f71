package web_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/mfa"
	"github.com/latchkeyid/latchkey/mfa/webauthn"
	"github.com/latchkeyid/latchkey/mfa/webauthn/webauthntest"
	"github.com/latchkeyid/latchkey/storage"
)

// withWebAuthn adds the WebAuthn factor to o when on: RP ID and origin
// from the issuer, as cmd derives them.
func withWebAuthn(t *testing.T, o *broker.MFAOptions, on bool, issuer string, clk clock.Clock) *broker.MFAOptions {
	t.Helper()
	if !on {
		return o
	}
	u, err := url.Parse(issuer)
	if err != nil {
		t.Fatal(err)
	}
	f, err := webauthn.New(webauthn.Options{RPID: u.Hostname(), Origins: []string{u.Scheme + "://" + u.Host}, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	o.Factors[mfa.TypeWebAuthn] = f
	return o
}

// scriptCSP is the policy of the pages that load /static/webauthn.js.
const scriptCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"

var optionsRE = regexp.MustCompile(`data-options="([^"]*)"`)

// ceremonyOptions returns the WebAuthn options a page gives its script.
func ceremonyOptions(t *testing.T, resp *http.Response, page string) []byte {
	t.Helper()
	m := optionsRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no WebAuthn options on %s (%d):\n%s", resp.Request.URL.Path, resp.StatusCode, page)
	}
	if got := resp.Header.Get("Content-Security-Policy"); got != scriptCSP {
		t.Errorf("CSP of %s = %q, want %q", resp.Request.URL.Path, got, scriptCSP)
	}
	if !strings.Contains(page, `<script src="/static/webauthn.js" defer></script>`) || strings.Contains(page, "<script>") {
		t.Errorf("page %s: want only the static script", resp.Request.URL.Path)
	}
	return []byte(html.UnescapeString(m[1]))
}

func newWebAuthnFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixtureOn(t, backends{localhost: true, webauthn: true})
	f.addUser(storage.User{Username: "alice", Email: "alice@example.com", Name: "Alice"}, "correct horse")
	f.addUser(storage.User{Username: "bob", Email: "bob@example.com"}, "battery staple")
	f.addClient(storage.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}}, "app-secret")
	return f
}

// enroll signs alice in with her password asking for acr phr and
// registers a's authenticator under label; it returns the ID token's acr
// and amr.
func (f *fixture) enrollWebAuthn(a *webauthntest.Authenticator, label string) (string, []string) {
	t := f.t
	t.Helper()
	b := f.browser()
	m, _, page := f.mfaFlow(b, mfa.ACRPhr)
	resp, page := b.submitLogin(hidden(t, page), "alice", "correct horse")
	if resp.Request.URL.Path != "/mfa/webauthn/enroll" {
		t.Fatalf("want the WebAuthn enrollment, got %d %s\n%s", resp.StatusCode, resp.Request.URL, page)
	}
	resp2, err := a.Create(ceremonyOptions(t, resp, page))
	if err != nil {
		t.Fatal(err)
	}
	form := hidden(t, page)
	form.Set("label", label)
	form.Set("response", resp2)
	resp, page = b.post(f.issuer+"/mfa/webauthn/enroll", form)
	if strings.Contains(page, "Save your recovery codes") {
		resp, page = b.post(f.issuer+"/mfa/continue", hidden(t, page))
	}
	return claimsOf(t, m.idToken(resp, page))
}

// passkeyPage opens a new sign-in and returns the login page's passkey
// options and form.
func (f *fixture) passkeyPage(b *browser) (*mfaFlow, []byte, url.Values) {
	t := f.t
	t.Helper()
	m, resp, page := f.mfaFlow(b, "")
	if !strings.Contains(page, `autocomplete="username webauthn"`) || !strings.Contains(page, `action="/login/passkey"`) {
		t.Fatalf("no passkey sign-in on the login page:\n%s", page)
	}
	return m, ceremonyOptions(t, resp, page), hidden(t, page)
}

// passkeySignIn signs in with a's passkey alone in a new browser and
// checks the ID token; it returns the answer posted.
func (f *fixture) passkeySignIn(a *webauthntest.Authenticator) string {
	t := f.t
	t.Helper()
	b := f.browser()
	m, opts, form := f.passkeyPage(b)
	answer, err := a.Get(opts)
	if err != nil {
		t.Fatal(err)
	}
	form.Set("response", answer)
	resp, page := b.post(f.issuer+"/login/passkey", form)
	if acr, amr := claimsOf(t, m.idToken(resp, page)); acr != mfa.ACRPhr || !slices.Equal(amr, []string{"hwk", "user", "mfa"}) {
		t.Fatalf("passkey sign-in: acr %q amr %q", acr, amr)
	}
	return answer
}

func lastEvent(t *testing.T, f *fixture, typ string) storage.Event {
	t.Helper()
	es := f.events(t, typ)
	if len(es) == 0 {
		t.Fatalf("no %s event", typ)
	}
	return es[len(es)-1]
}

// TestWebAuthnFlows: register a passkey during a password login that
// asks for acr phr, sign in with it without a password, use a second,
// non-discoverable authenticator as second factor; and every bad answer
// is refused with an event.
func TestWebAuthnFlows(t *testing.T) {
	f := newWebAuthnFixture(t)
	ctx := context.Background()
	origin := f.issuer
	passkey := webauthntest.New(origin)

	acr, amr := f.enrollWebAuthn(passkey, "Laptop")
	if acr != mfa.ACRPhr || !slices.Equal(amr, []string{"pwd", "hwk", "user", "mfa"}) {
		t.Fatalf("after registration: acr %q amr %q", acr, amr)
	}
	creds, _ := f.db.ListMFACredentials(ctx, "u-alice")
	creds = slices.DeleteFunc(creds, func(c mfa.Credential) bool { return c.Type == mfa.TypeRecovery })
	if len(creds) != 1 || creds[0].Type != mfa.TypeWebAuthn || creds[0].Label != "Laptop" || !webauthn.Discoverable(creds[0]) {
		t.Fatalf("credentials %v", creds)
	}
	if e := lastEvent(t, f, "mfa.enrolled"); e.Data["factor"] != mfa.TypeRecovery {
		t.Errorf("last mfa.enrolled %v", e.Data)
	}

	// Passwordless: the passkey alone.
	answer := f.passkeySignIn(passkey)
	var (
		b    *browser
		m    *mfaFlow
		form url.Values
		resp *http.Response
		page string
		opts []byte
		err  error
	)
	if e := lastEvent(t, f, "user.login.succeeded"); e.UserID != "u-alice" || e.Data["method"] != "passkey" {
		t.Errorf("user.login.succeeded %+v", e)
	}

	// Bad answers on the login page, each refused with user.login.failed.
	refused := func(name string, b *browser, answer string, form url.Values, reason string) {
		t.Helper()
		form.Set("response", answer)
		resp, page := b.post(f.issuer+"/login/passkey", form)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "That passkey was not accepted") {
			t.Fatalf("%s: %d\n%s", name, resp.StatusCode, page)
		}
		ceremonyOptions(t, resp, page) // a new ceremony to try again
		e := lastEvent(t, f, "user.login.failed")
		if e.Data["method"] != "passkey" || e.Data["reason"] != reason {
			t.Errorf("%s: event %+v, want reason %s", name, e.Data, reason)
		}
	}
	// A replayed assertion: the one just used, on a new sign-in (another
	// challenge), then again (the ceremony is used up).
	b = f.browser()
	_, _, form = f.passkeyPage(b)
	refused("replay", b, answer, form, "invalid")
	refused("replay again", b, answer, form, "invalid") // the refusal page began a new ceremony

	for _, tc := range []struct {
		name, reason string
		bend         func(a *webauthntest.Authenticator)
	}{
		{"another origin", "invalid", func(a *webauthntest.Authenticator) { a.Origin = "http://localhost:1" }},
		{"another RP ID", "invalid", func(a *webauthntest.Authenticator) { a.RPID = "example.com" }},
		{"counter regression", "counter_regression", func(a *webauthntest.Authenticator) { a.Counter = 0 }},
	} {
		b := f.browser()
		_, opts, form := f.passkeyPage(b)
		bent := *passkey
		tc.bend(&bent)
		ans, err := bent.Get(opts)
		if err != nil {
			t.Fatal(err)
		}
		refused(tc.name, b, ans, form, tc.reason)
	}
	// Another challenge: an assertion for one sign-in posted to another.
	b1, b2 := f.browser(), f.browser()
	_, opts1, _ := f.passkeyPage(b1)
	_, _, form2 := f.passkeyPage(b2)
	ans, _ := passkey.Get(opts1)
	refused("another challenge", b2, ans, form2, "invalid")

	// The counter refused is not stored: the real authenticator goes on.
	f.passkeySignIn(passkey)

	// Remove alice's factors (as latchkey mfa reset does); a security key
	// without discoverable credentials is registered and used as a
	// second factor.
	if _, err := f.db.DeleteUserMFACredentials(ctx, "u-alice"); err != nil {
		t.Fatal(err)
	}
	key := webauthntest.New(origin)
	key.Resident, key.UV = false, false
	acr, amr = f.enrollWebAuthn(key, "YubiKey")
	if acr != mfa.ACRPhr || !slices.Equal(amr, []string{"pwd", "hwk", "user", "mfa"}) {
		t.Fatalf("after the second registration: acr %q amr %q", acr, amr)
	}
	b = f.browser()
	m, _, page = f.mfaFlow(b, mfa.ACRPhr)
	resp, page = b.submitLogin(hidden(t, page), "alice", "correct horse")
	if resp.Request.URL.Path != "/mfa/webauthn" || strings.Contains(page, `id="use-recovery"`) { // a recovery code does not reach phr
		t.Fatalf("want the WebAuthn challenge, got %s\n%s", resp.Request.URL, page)
	}
	mfaForm := hidden(t, page)
	ans, err = key.Get(ceremonyOptions(t, resp, page))
	if err != nil {
		t.Fatal(err)
	}
	// A bad second-factor answer first: another origin, refused with
	// mfa.challenge.failed.
	badAnswer := func(b *browser, mfaForm url.Values, name, reason string, bend func(a *webauthntest.Authenticator)) {
		t.Helper()
		bent := *key
		bend(&bent)
		resp, page := b.get(f.issuer + "/mfa/webauthn?req=" + mfaForm.Get("req"))
		bad, err := bent.Get(ceremonyOptions(t, resp, page))
		if err != nil {
			t.Fatal(err)
		}
		form := cloneValues(mfaForm)
		form.Set("response", bad)
		resp, page = b.post(f.issuer+"/mfa/webauthn", form)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "Your security key or passkey was not accepted") {
			t.Fatalf("%s: %d\n%s", name, resp.StatusCode, page)
		}
		if e := lastEvent(t, f, "mfa.challenge.failed"); e.Data["reason"] != reason || e.Data["factor"] != "webauthn" {
			t.Errorf("%s: event %+v", name, e.Data)
		}
	}
	badAnswer(b, mfaForm, "another origin", "invalid", func(a *webauthntest.Authenticator) { a.Origin = "https://localhost" })
	// ans was for a ceremony that has since been replaced.
	form = cloneValues(mfaForm)
	form.Set("response", ans)
	if resp, _ := b.post(f.issuer+"/mfa/webauthn", form); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("an answer to a replaced ceremony: %d", resp.StatusCode)
	}
	resp, page = b.get(f.issuer + "/mfa/webauthn?req=" + mfaForm.Get("req"))
	ans, _ = key.Get(ceremonyOptions(t, resp, page))
	form.Set("response", ans)
	resp, page = b.post(f.issuer+"/mfa/webauthn", form)
	acr, amr = claimsOf(t, m.idToken(resp, page))
	if acr != mfa.ACRPhr || !slices.Equal(amr, []string{"pwd", "hwk", "user", "mfa"}) {
		t.Fatalf("second factor: acr %q amr %q", acr, amr)
	}
	if e := lastEvent(t, f, "mfa.challenge.succeeded"); e.Data["factor"] != "webauthn" || e.Data["label"] != "YubiKey" {
		t.Errorf("mfa.challenge.succeeded %+v", e.Data)
	}
	// The key's counter is now 1; an assertion that says 1 again is a
	// regression (a cloned key). (Past the factor limit's window first.)
	f.clock.Advance(6 * time.Minute)
	b = f.browser()
	_, _, page = f.mfaFlow(b, mfa.ACRPhr)
	_, page = b.submitLogin(hidden(t, page), "alice", "correct horse")
	badAnswer(b, hidden(t, page), "counter regression", "counter_regression", func(a *webauthntest.Authenticator) { a.Counter = 0 })
	// The non-discoverable key offers no passwordless sign-in.
	b = f.browser()
	_, opts, form = f.passkeyPage(b)
	if _, err := key.Get(opts); err == nil {
		t.Fatal("a non-discoverable credential answered a passkey sign-in")
	}
	for _, p := range b.pages {
		if strings.Contains(p, ans) {
			t.Fatal("an assertion was echoed in a page")
		}
	}
	if logs := f.logs.String(); strings.Contains(logs, answer) || strings.Contains(logs, ans) {
		t.Fatal("an assertion reached the log")
	}
}

// TestWebAuthnRegistrationOtherSession: a registration posted with
// another user's session is refused (mfa.refused), and a registration
// answer made for another user's ceremony does not register anything.
func TestWebAuthnRegistrationOtherSession(t *testing.T) {
	f := newWebAuthnFixture(t)
	ctx := context.Background()
	a := webauthntest.New(f.issuer)

	// alice's enrollment page.
	b := f.browser()
	_, _, page := f.mfaFlow(b, mfa.ACRPhr)
	resp, page := b.submitLogin(hidden(t, page), "alice", "correct horse")
	aliceOpts, aliceForm := ceremonyOptions(t, resp, page), hidden(t, page)

	// bob's enrollment page in another browser.
	ob := f.browser()
	_, _, opage := f.mfaFlow(ob, mfa.ACRPhr)
	oresp, opage := ob.submitLogin(hidden(t, opage), "bob", "battery staple")
	bobOpts, bobForm := ceremonyOptions(t, oresp, opage), hidden(t, opage)

	// alice's registration posted with bob's session cookie.
	answer, err := a.Create(aliceOpts)
	if err != nil {
		t.Fatal(err)
	}
	aliceSession := b.cookie("latchkey_session")
	b.setCookie("latchkey_session", ob.cookie("latchkey_session"))
	form := cloneValues(aliceForm)
	form.Set("label", "x")
	form.Set("response", answer)
	resp, page = b.post(f.issuer+"/mfa/webauthn/enroll", form)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("registration with bob's session: %d\n%s", resp.StatusCode, page)
	}
	if e := lastEvent(t, f, "mfa.refused"); e.UserID != "u-alice" {
		t.Errorf("mfa.refused %+v", e)
	}
	b.setCookie("latchkey_session", aliceSession)

	// A registration made for bob's ceremony, posted in alice's sign-in.
	bobAnswer, err := a.Create(bobOpts)
	if err != nil {
		t.Fatal(err)
	}
	form.Set("response", bobAnswer)
	resp, page = b.post(f.issuer+"/mfa/webauthn/enroll", form)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "Your security key or passkey was not accepted") {
		t.Fatalf("bob's registration in alice's sign-in: %d\n%s", resp.StatusCode, page)
	}
	if e := lastEvent(t, f, "mfa.enrollment.failed"); e.UserID != "u-alice" || e.Data["reason"] != "invalid" {
		t.Errorf("mfa.enrollment.failed %+v", e)
	}
	// An empty name is refused before anything is checked.
	resp, page = b.get(f.issuer + "/mfa/webauthn/enroll?req=" + aliceForm.Get("req"))
	answer, _ = a.Create(ceremonyOptions(t, resp, page))
	form.Set("label", " ")
	form.Set("response", answer)
	if resp, page = b.post(f.issuer+"/mfa/webauthn/enroll", form); resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "Give the security key or passkey a name") {
		t.Fatalf("empty label: %d\n%s", resp.StatusCode, page)
	}
	for _, u := range []string{"u-alice", "u-bob"} {
		if creds, _ := f.db.ListMFACredentials(ctx, u); len(creds) != 0 {
			t.Errorf("%s has credentials %v", u, creds)
		}
	}
	_ = bobForm
}

// TestWebAuthnOnProductionStores: registration and passkey sign-in with
// the durable store on PostgreSQL and the ceremonies in Redis; the
// signature counter is written with the check, so an assertion replayed
// after success is refused as a counter regression.
func TestWebAuthnOnProductionStores(t *testing.T) {
	f := newFixtureOn(t, backends{postgres: true, redis: true, localhost: true, webauthn: true})
	f.addUser(storage.User{Username: "alice", Email: "alice@example.com"}, "correct horse")
	f.addClient(storage.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}}, "app-secret")
	passkey := webauthntest.New(f.issuer)
	if acr, _ := f.enrollWebAuthn(passkey, "Laptop"); acr != mfa.ACRPhr {
		t.Fatalf("registration: acr %q", acr)
	}
	f.passkeySignIn(passkey)
	// The same answer again, signed anew for a new challenge but with the
	// same counter: a cloned authenticator.
	b := f.browser()
	_, opts, form := f.passkeyPage(b)
	passkey.Counter--
	answer, _ := passkey.Get(opts)
	form.Set("response", answer)
	resp, page := b.post(f.issuer+"/login/passkey", form)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "That passkey was not accepted") {
		t.Fatalf("cloned authenticator: %d\n%s", resp.StatusCode, page)
	}
	if e := lastEvent(t, f, "user.login.failed"); e.UserID != "u-alice" || e.Data["reason"] != "counter_regression" {
		t.Errorf("user.login.failed %+v", e)
	}
}

// TestPasskeyAfterWrongPassword: the login page shown again after a wrong
// password still offers the passkey, with a new ceremony that works.
func TestPasskeyAfterWrongPassword(t *testing.T) {
	f := newWebAuthnFixture(t)
	passkey := webauthntest.New(f.issuer)
	f.enrollWebAuthn(passkey, "Laptop")
	b := f.browser()
	m, _, form := f.passkeyPage(b)
	resp, page := b.submitLogin(form, "alice", "wrong")
	if !strings.Contains(page, "Incorrect username or password.") {
		t.Fatalf("wrong password: %d\n%s", resp.StatusCode, page)
	}
	answer, err := passkey.Get(ceremonyOptions(t, resp, page))
	if err != nil {
		t.Fatal(err)
	}
	form = hidden(t, page)
	form.Set("response", answer)
	resp, page = b.post(f.issuer+"/login/passkey", form)
	if acr, _ := claimsOf(t, m.idToken(resp, page)); acr != mfa.ACRPhr {
		t.Fatalf("passkey after a wrong password: acr %q", acr)
	}
}

// TestWebAuthnScriptServed: the one script is a static file with a
// JavaScript type (nosniff would refuse anything else).
func TestWebAuthnScriptServed(t *testing.T) {
	f := newWebAuthnFixture(t)
	resp, body := f.browser().get(f.issuer + "/static/webauthn.js")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "navigator.credentials.get") {
		t.Fatalf("GET /static/webauthn.js: %d", resp.StatusCode)
	}
	assertHeaders(t, resp.Header, map[string]string{"Content-Type": "text/javascript; charset=utf-8", "X-Content-Type-Options": "nosniff"})
}
