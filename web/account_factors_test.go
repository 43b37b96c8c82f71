package web_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/internal/ratelimit"
	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/mfa"
	"github.com/latchkeyid/latchkey/mfa/webauthn"
	"github.com/latchkeyid/latchkey/mfa/webauthn/webauthntest"
	"github.com/latchkeyid/latchkey/storage"
)

const (
	msgExpired  = "This set-up has expired or was already finished; start again from your account page."
	msgBadCode  = "That code is not valid; check your authenticator and try again."
	msgReauth   = "For this change, enter your current password; without a password here, sign out and sign in again first."
	msgAddCodes = "The second factor is added. Here are your recovery codes: each signs you in once if you lose your second factors. They are shown only once."
	msgRefused  = "Your security key or passkey was not accepted; try again."
)

// factorsOf returns userID's credentials by type.
func factorsOf(t *testing.T, f *fixture, userID string) map[string][]storage.MFACredential {
	t.Helper()
	creds, err := f.db.ListMFACredentials(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]storage.MFACredential{}
	for _, c := range creds {
		out[c.Type] = append(out[c.Type], c)
	}
	return out
}

// accountEvents returns the events of typ for userID from the account
// page (via=account) and checks each names the factor.
func accountEvents(t *testing.T, f *fixture, typ, userID string) []storage.Event {
	t.Helper()
	var out []storage.Event
	for _, e := range f.events(t, typ) {
		if e.UserID == userID && e.Data["via"] == "account" {
			if e.Actor != "user:"+userID || e.Data["factor"] == nil {
				t.Errorf("%s event %+v", typ, e)
			}
			out = append(out, e)
		}
	}
	return out
}

// accountFixture is a fixture with the account pages on, WebAuthn as
// asked; withoutTOTP unregisters the TOTP factor.
func accountFixture(t *testing.T, be backends, withoutTOTP bool) *fixture {
	t.Helper()
	mp := testenv.StartMailpit(t)
	be.options = func(o *broker.Options) {
		withAccounts(t, mp, o.Store.(storage.Durable))(o)
		if withoutTOTP {
			delete(o.MFA.Factors, mfa.TypeTOTP)
		}
	}
	return newFixtureOn(t, be)
}

func TestAccountAddTOTP(t *testing.T) { accountAddTOTP(t, backends{}) }

// The same with the durable store on PostgreSQL and the pending secret,
// sessions and limits in Redis.
func TestAccountAddTOTPOnPostgresAndRedis(t *testing.T) {
	accountAddTOTP(t, backends{postgres: true, redis: true})
}

// accountAddTOTP: add an authenticator app from /account — a wrong code
// shows the same secret again, another user's session finds nothing
// pending, the right code stores it with recovery codes shown once, the
// pending secret works once; a stale session needs the password; the
// factor limit answers 429; no secret in a URL, hidden field, log or
// event.
func accountAddTOTP(t *testing.T, be backends) {
	f := accountFixture(t, be, false)
	f.addUser(storage.User{Username: "bob", Email: "bob@example.com", EmailVerified: true}, "bob's password")
	f.addUser(storage.User{Username: "eve", Email: "eve@example.com", EmailVerified: true}, "eve's password")
	f.addUser(storage.User{Username: "carol", Email: "carol@example.com", EmailVerified: true}, "carol's password")
	f.addClient(storage.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}}, "app-secret")
	conf := f.rp("app", "app-secret", "https://app.example/cb", "openid")
	b, eb := f.browser(), f.browser()
	f.signedIn(t, b, conf, "bob", "bob's password")
	f.signedIn(t, eb, conf, "eve", "eve's password")

	resp, page := b.get(f.issuer + "/account")
	if resp.StatusCode != 200 || !contains(page, `action="/account/factors/totp"`) || !contains(page, "Add an authenticator app") {
		t.Fatalf("account page offers no authenticator app: %d\n%s", resp.StatusCode, page)
	}
	if contains(page, "/account/factors/webauthn") {
		t.Fatal("a passkey offered with WebAuthn off")
	}
	csrf := field(t, csrfFieldRe, page)
	_, epage := eb.get(f.issuer + "/account")
	ecsrf := field(t, csrfFieldRe, epage)

	// WebAuthn is off: its routes are a clear 404.
	for _, path := range []string{"/account/factors/webauthn", "/account/factors/webauthn/finish"} {
		resp, page = b.post(f.issuer+path, url.Values{"csrf": {csrf}})
		assertErrorPage(t, resp, page, 404, "Not found", "Security keys and passkeys are not available here.")
	}
	// CSRF on both forms; another user's token is not this session's.
	for _, path := range []string{"/account/factors/totp", "/account/factors/totp/confirm"} {
		for _, token := range []string{"x", ecsrf} {
			resp, page = b.post(f.issuer+path, url.Values{"csrf": {token}, "code": {"123456"}})
			assertErrorPage(t, resp, page, 400, "Form expired", "The form was not valid. Open the account page again.")
		}
	}
	// Confirm with nothing pending.
	resp, page = b.post(f.issuer+"/account/factors/totp/confirm", url.Values{"csrf": {csrf}, "code": {"123456"}})
	if resp.StatusCode != 400 || !contains(page, msgExpired) {
		t.Fatalf("nothing pending: %d\n%s", resp.StatusCode, page)
	}

	// Begin (signed in just now: no password needed).
	resp, page = b.post(f.issuer+"/account/factors/totp", url.Values{"csrf": {csrf}})
	if resp.StatusCode != 200 || !contains(page, "Scan this code with an authenticator app") || !contains(page, `src="data:image/png;base64,`) {
		t.Fatalf("begin: %d\n%s", resp.StatusCode, page)
	}
	assertHTMLHeaders(t, resp.Header)
	secret := field(t, secretRe, page)
	secrets := []string{secret, "bob's password", "eve's password", "carol's password"}

	// A wrong code: the same secret again, an error, an event.
	right := f.oathtool(secret)
	wrong := "000000"
	if wrong == right {
		wrong = "111111"
	}
	resp, page = b.post(f.issuer+"/account/factors/totp/confirm", url.Values{"csrf": {csrf}, "code": {wrong}, "label": {"Phone"}})
	if resp.StatusCode != 400 || !contains(page, msgBadCode) || field(t, secretRe, page) != secret || !contains(page, `value="Phone"`) {
		t.Fatalf("wrong code: %d\n%s", resp.StatusCode, page)
	}
	if es := accountEvents(t, f, "mfa.enrollment.failed", "u-bob"); len(es) != 1 || es[0].Data["factor"] != "totp" || es[0].Data["reason"] != "invalid" {
		t.Fatalf("mfa.enrollment.failed: %+v", es)
	}
	// A bad name: the page again.
	resp, page = b.post(f.issuer+"/account/factors/totp/confirm", url.Values{"csrf": {csrf}, "code": {right}, "label": {strings.Repeat("x", 65)}})
	if resp.StatusCode != 400 || !contains(page, "Enter a name of 1 to 64 characters.") || field(t, secretRe, page) != secret {
		t.Fatalf("long label: %d\n%s", resp.StatusCode, page)
	}
	// Another user's session (eve, with her own token and bob's right
	// code) finds nothing pending; nothing is stored for either.
	resp, page = eb.post(f.issuer+"/account/factors/totp/confirm", url.Values{"csrf": {ecsrf}, "code": {right}})
	if resp.StatusCode != 400 || !contains(page, msgExpired) || contains(page, secret) {
		t.Fatalf("eve confirms bob's: %d\n%s", resp.StatusCode, page)
	}
	for _, u := range []string{"u-bob", "u-eve"} {
		if got := factorsOf(t, f, u); len(got) != 0 {
			t.Fatalf("%s has factors before a right code: %v", u, got)
		}
	}

	// The right code: stored with its name; recovery codes, shown once.
	resp, page = b.post(f.issuer+"/account/factors/totp/confirm", url.Values{"csrf": {csrf}, "code": {right}, "label": {" Phone "}})
	codes := recoveryRe.FindAllStringSubmatch(page, -1)
	if resp.StatusCode != 200 || !contains(page, msgAddCodes) || len(codes) == 0 || !contains(page, "Authenticator app · Phone") {
		t.Fatalf("right code: %d\n%s", resp.StatusCode, page)
	}
	got := factorsOf(t, f, "u-bob")
	if len(got[mfa.TypeTOTP]) != 1 || got[mfa.TypeTOTP][0].Label != "Phone" || len(got[mfa.TypeRecovery]) != 1 || len(got) != 2 {
		t.Fatalf("bob's factors: %v", got)
	}
	for _, c := range codes {
		secrets = append(secrets, c[1])
	}
	enrolled := accountEvents(t, f, "mfa.enrolled", "u-bob")
	if len(enrolled) != 2 || enrolled[0].Data["factor"] != "totp" || enrolled[0].Data["credential_id"] != got[mfa.TypeTOTP][0].ID || enrolled[1].Data["factor"] != "recovery" {
		t.Fatalf("mfa.enrolled: %+v", enrolled)
	}
	if _, page = b.get(f.issuer + "/account"); recoveryRe.MatchString(page) {
		t.Fatal("recovery codes shown again")
	}
	// Once: the same confirmation again finds nothing pending.
	resp, page = b.post(f.issuer+"/account/factors/totp/confirm", url.Values{"csrf": {csrf}, "code": {right}, "label": {"Phone"}})
	if resp.StatusCode != 400 || !contains(page, msgExpired) {
		t.Fatalf("confirmed twice: %d\n%s", resp.StatusCode, page)
	}
	// The new factor signs in: bob with acr mfa asks for its code.
	f.clock.Advance(30 * time.Second)
	m, _, lpage := f.mfaFlow(f.browser(), mfa.ACRMFA)
	mresp, mpage := m.b.submitLogin(hidden(t, lpage), "bob", "bob's password")
	if mresp.Request.URL.Path != "/mfa" {
		t.Fatalf("want the code page, got %s\n%s", mresp.Request.URL, mpage)
	}
	form := hidden(t, mpage)
	form.Set("factor", "totp")
	form.Set("code", f.oathtool(secret))
	mresp, mpage = m.b.post(f.issuer+"/mfa", form)
	if acr, amr := claimsOf(t, m.idToken(mresp, mpage)); acr != mfa.ACRMFA || !slices.Equal(amr, []string{"pwd", "otp", "mfa"}) {
		t.Fatalf("sign-in with the added app: %s %v", acr, amr)
	}

	// A second app later: the session is stale, so the password is asked
	// for; no new recovery codes; the default name.
	f.clock.Advance(broker.FreshAuthWindow + time.Minute)
	resp, page = b.post(f.issuer+"/account/factors/totp", url.Values{"csrf": {csrf}})
	if resp.StatusCode != 400 || !contains(page, msgReauth) {
		t.Fatalf("stale begin: %d\n%s", resp.StatusCode, page)
	}
	resp, page = b.post(f.issuer+"/account/factors/totp", url.Values{"csrf": {csrf}, "current": {"wrong"}})
	if resp.StatusCode != 400 || !contains(page, "The current password is not correct.") || secretRe.MatchString(page) {
		t.Fatalf("wrong password: %d\n%s", resp.StatusCode, page)
	}
	resp, page = b.post(f.issuer+"/account/factors/totp", url.Values{"csrf": {csrf}, "current": {"bob's password"}})
	secret2 := field(t, secretRe, page)
	secrets = append(secrets, secret2)
	if resp.StatusCode != 200 || secret2 == secret {
		t.Fatalf("second begin: %d\n%s", resp.StatusCode, page)
	}
	resp, page = b.post(f.issuer+"/account/factors/totp/confirm", url.Values{"csrf": {csrf}, "code": {f.oathtool(secret2)}, "label": {""}})
	if resp.StatusCode != 200 || !contains(page, "The authenticator app is added.") || recoveryRe.MatchString(page) || !contains(page, "Authenticator app · authenticator app") {
		t.Fatalf("second app: %d\n%s", resp.StatusCode, page)
	}
	if got := factorsOf(t, f, "u-bob"); len(got[mfa.TypeTOTP]) != 2 || len(got[mfa.TypeRecovery]) != 1 {
		t.Fatalf("bob's factors: %v", got)
	}

	// The factor limit (5 per 5 minutes) counts wrong codes: carol's
	// sixth answer is 429 with Retry-After, the page kept.
	cb := f.browser()
	f.signedIn(t, cb, conf, "carol", "carol's password")
	_, page = cb.get(f.issuer + "/account")
	ccsrf := field(t, csrfFieldRe, page)
	_, page = cb.post(f.issuer+"/account/factors/totp", url.Values{"csrf": {ccsrf}})
	csecret := field(t, secretRe, page)
	secrets = append(secrets, csecret)
	cwrong := "000000"
	if cwrong == f.oathtool(csecret) {
		cwrong = "111111"
	}
	var statuses []int
	for range 6 {
		resp, page = cb.post(f.issuer+"/account/factors/totp/confirm", url.Values{"csrf": {ccsrf}, "code": {cwrong}})
		statuses = append(statuses, resp.StatusCode)
	}
	if !slices.Equal(statuses, []int{400, 400, 400, 400, 400, 429}) || resp.Header.Get("Retry-After") == "" || field(t, secretRe, page) != csecret {
		t.Fatalf("limit: %v\n%s", statuses, page)
	}
	if es := accountEvents(t, f, "mfa.rate_limited", "u-carol"); len(es) != 1 {
		t.Fatalf("mfa.rate_limited: %+v", es)
	}
	if got := factorsOf(t, f, "u-carol"); len(got) != 0 {
		t.Fatalf("carol's factors: %v", got)
	}

	// No secret in any URL, hidden field, log line or event.
	for _, br := range []*browser{b, eb, cb} {
		for _, u := range br.urls {
			for _, s := range secrets {
				if strings.Contains(u, s) || strings.Contains(u, url.QueryEscape(s)) {
					t.Fatalf("a secret in the URL %s", u)
				}
			}
		}
		for _, p := range br.pages {
			for _, s := range []string{secret, secret2, csecret} {
				if strings.Contains(p, `value="`+s) {
					t.Fatal("a TOTP secret in a form field")
				}
			}
		}
	}
	assertNoSecretsLogged(t, f, secrets)
}

func TestAccountAddPasskey(t *testing.T) { accountAddPasskey(t, backends{}) }

// The same with the durable store on PostgreSQL and the ceremonies in
// Redis.
func TestAccountAddPasskeyOnPostgresAndRedis(t *testing.T) {
	accountAddPasskey(t, backends{postgres: true, redis: true})
}

// accountAddPasskey: add a passkey from /account (TOTP off: no offer, a
// 404) — refused and audited with nothing stored: another session's
// ceremony, another origin, a bad name, a replayed answer, no fresh
// authentication; the one added signs in without a password.
func accountAddPasskey(t *testing.T, be backends) {
	be.localhost, be.webauthn = true, true
	f := accountFixture(t, be, true)
	f.addUser(storage.User{Username: "alice", Email: "alice@example.com", Name: "Alice"}, "correct horse")
	f.addUser(storage.User{Username: "bob", Email: "bob@example.com"}, "battery staple")
	f.addClient(storage.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}}, "app-secret")
	conf := f.rp("app", "app-secret", "https://app.example/cb", "openid")
	ctx := context.Background()
	b, ob := f.browser(), f.browser()
	f.signedIn(t, b, conf, "alice", "correct horse")
	f.signedIn(t, ob, conf, "bob", "battery staple")
	// scratch answers the refused ceremonies; passkey only the one added
	// (a discoverable sign-in uses an authenticator's first credential).
	scratch, passkey := webauthntest.New(f.issuer), webauthntest.New(f.issuer)

	resp, page := b.get(f.issuer + "/account")
	if resp.StatusCode != 200 || !contains(page, `action="/account/factors/webauthn"`) || !contains(page, "Add a passkey or security key") {
		t.Fatalf("account page offers no passkey: %d\n%s", resp.StatusCode, page)
	}
	assertHTMLHeaders(t, resp.Header) // the account page itself runs no script
	if contains(page, `action="/account/factors/totp"`) {
		t.Fatal("an authenticator app offered with TOTP off")
	}
	csrf := field(t, csrfFieldRe, page)
	_, opage := ob.get(f.issuer + "/account")
	ocsrf := field(t, csrfFieldRe, opage)
	for _, path := range []string{"/account/factors/totp", "/account/factors/totp/confirm"} {
		resp, page = b.post(f.issuer+path, url.Values{"csrf": {csrf}})
		assertErrorPage(t, resp, page, 404, "Not found", "Authenticator apps are not available here.")
	}
	for _, path := range []string{"/account/factors/webauthn", "/account/factors/webauthn/finish"} {
		resp, page = b.post(f.issuer+path, url.Values{"csrf": {ocsrf}})
		assertErrorPage(t, resp, page, 400, "Form expired", "The form was not valid. Open the account page again.")
	}

	begin := func(b *browser, csrf string) []byte {
		t.Helper()
		resp, page := b.post(f.issuer+"/account/factors/webauthn", url.Values{"csrf": {csrf}})
		if resp.StatusCode != 200 || !contains(page, `action="/account/factors/webauthn/finish"`) {
			t.Fatalf("begin: %d\n%s", resp.StatusCode, page)
		}
		return ceremonyOptions(t, resp, page) // scriptCSP, the static script only
	}
	finish := func(b *browser, csrf, label, answer string) (*http.Response, string) {
		t.Helper()
		return b.post(f.issuer+"/account/factors/webauthn/finish", url.Values{"csrf": {csrf}, "label": {label}, "response": {answer}})
	}
	var answers []string
	refused := func(name, userID, reason string, resp *http.Response, page string) {
		t.Helper()
		if resp.StatusCode != 400 || !contains(page, msgRefused) || !contains(page, "Your account") {
			t.Fatalf("%s: %d\n%s", name, resp.StatusCode, page)
		}
		es := accountEvents(t, f, "mfa.enrollment.failed", userID)
		if len(es) == 0 || es[len(es)-1].Data["reason"] != reason || es[len(es)-1].Data["factor"] != "webauthn" {
			t.Fatalf("%s: events %+v, want reason %s", name, es, reason)
		}
	}

	// Another session's ceremony: the answer to bob's, posted in alice's
	// session (which has its own): another challenge and user.
	aliceOpts := begin(b, csrf)
	bobOpts := begin(ob, ocsrf)
	bobAnswer, err := scratch.Create(bobOpts)
	if err != nil {
		t.Fatal(err)
	}
	resp, page = finish(b, csrf, "Laptop", bobAnswer)
	refused("bob's ceremony", "u-alice", "invalid", resp, page)
	// alice's ceremony was used up by that answer.
	aliceAnswer, _ := scratch.Create(aliceOpts)
	resp, page = finish(b, csrf, "Laptop", aliceAnswer)
	refused("a used ceremony", "u-alice", "no_ceremony", resp, page)
	// Another origin.
	bent := *scratch
	bent.Origin = "http://localhost:1"
	bentAnswer, _ := bent.Create(begin(b, csrf))
	resp, page = finish(b, csrf, "Laptop", bentAnswer)
	refused("another origin", "u-alice", "invalid", resp, page)
	// Garbage, in bob's session (whose ceremony is still pending).
	resp, page = finish(ob, ocsrf, "Laptop", `{"id":"x"}`)
	refused("garbage", "u-bob", "invalid", resp, page)
	// A bad name.
	answer, _ := scratch.Create(begin(b, csrf))
	resp, page = finish(b, csrf, " ", answer)
	if resp.StatusCode != 400 || !contains(page, "Give the security key or passkey a name of 1 to 64 characters.") {
		t.Fatalf("empty name: %d\n%s", resp.StatusCode, page)
	}
	answers = append(answers, bobAnswer, aliceAnswer, bentAnswer, answer)
	for _, u := range []string{"u-alice", "u-bob"} {
		if got := factorsOf(t, f, u); len(got) != 0 {
			t.Fatalf("%s has factors after refusals: %v", u, got)
		}
	}

	// Added: named, discoverable, recovery codes shown once.
	answer, err = passkey.Create(begin(b, csrf))
	if err != nil {
		t.Fatal(err)
	}
	answers = append(answers, answer)
	resp, page = finish(b, csrf, "Laptop", answer)
	codes := recoveryRe.FindAllStringSubmatch(page, -1)
	if resp.StatusCode != 200 || !contains(page, msgAddCodes) || len(codes) == 0 || !contains(page, "Security key or passkey · Laptop") {
		t.Fatalf("add: %d\n%s", resp.StatusCode, page)
	}
	assertHTMLHeaders(t, resp.Header)
	got := factorsOf(t, f, "u-alice")
	if len(got[mfa.TypeWebAuthn]) != 1 || got[mfa.TypeWebAuthn][0].Label != "Laptop" || !webauthn.Discoverable(got[mfa.TypeWebAuthn][0]) || len(got[mfa.TypeRecovery]) != 1 {
		t.Fatalf("alice's factors: %v", got)
	}
	enrolled := accountEvents(t, f, "mfa.enrolled", "u-alice")
	if len(enrolled) != 2 || enrolled[0].Data["factor"] != "webauthn" || enrolled[0].Data["label"] != "Laptop" || enrolled[0].Data["discoverable"] != true || enrolled[1].Data["factor"] != "recovery" {
		t.Fatalf("mfa.enrolled: %+v", enrolled)
	}
	// The same answer again: the ceremony is used up.
	resp, page = finish(b, csrf, "Laptop", answer)
	refused("replay", "u-alice", "no_ceremony", resp, page)
	if got := factorsOf(t, f, "u-alice"); len(got[mfa.TypeWebAuthn]) != 1 {
		t.Fatalf("a replay stored a credential: %v", got)
	}

	// The passkey signs in without a password.
	f.passkeySignIn(passkey)

	// Later (past the factor limit's windows): the session is stale, so
	// the password is asked for; the name suggested is "Passkey 2"; a
	// second authenticator is added without new codes.
	f.clock.Advance(11 * time.Minute)
	resp, page = b.post(f.issuer+"/account/factors/webauthn", url.Values{"csrf": {csrf}})
	if resp.StatusCode != 400 || !contains(page, msgReauth) {
		t.Fatalf("stale begin: %d\n%s", resp.StatusCode, page)
	}
	resp, page = b.post(f.issuer+"/account/factors/webauthn", url.Values{"csrf": {csrf}, "current": {"correct horse"}})
	if resp.StatusCode != 200 || !contains(page, `value="Passkey 2"`) {
		t.Fatalf("second begin: %d\n%s", resp.StatusCode, page)
	}
	key := webauthntest.New(f.issuer)
	key.Resident, key.UV = false, false
	answer, err = key.Create(ceremonyOptions(t, resp, page))
	if err != nil {
		t.Fatal(err)
	}
	answers = append(answers, answer)
	resp, page = finish(b, csrf, "YubiKey", answer)
	if resp.StatusCode != 200 || !contains(page, "The security key or passkey is added.") || recoveryRe.MatchString(page) || !contains(page, "Security key or passkey · YubiKey") {
		t.Fatalf("second key: %d\n%s", resp.StatusCode, page)
	}
	if creds, _ := f.db.ListMFACredentials(ctx, "u-bob"); len(creds) != 0 {
		t.Fatalf("bob has credentials %v", creds)
	}
	secrets := []string{"correct horse", "battery staple"}
	for _, c := range codes {
		secrets = append(secrets, c[1])
	}
	assertNoSecretsLogged(t, f, append(secrets, answers...))
}

// TestAccountPasskeyInChromium: in a real browser with a DevTools virtual
// authenticator, Latchkey on http://localhost: sign in with the
// password, open /account, add a passkey there, sign out, sign in with
// the passkey alone. CSP stays strict: no console errors. Screenshots of
// the new pages go to the artifacts directory (account-factors).
func TestAccountPasskeyInChromium(t *testing.T) {
	chromium := testenv.Program(t, "chromium")
	node := ensureNodePackage(t, chromiumDir)
	f := accountFixture(t, backends{localhost: true, webauthn: true}, false)
	f.addUser(storage.User{Username: "alice", Email: "alice@example.com", Name: "Alice"}, "correct horse")
	rp, srv, authURL := newWebAuthnRP(t, f)
	shots := artifactsDir(t, "account-factors")
	in := map[string]string{
		"issuer": f.issuer, "username": "alice", "password": "correct horse", "label": "Laptop passkey",
		"loginURL": authURL("password", ""), "passkeyURL": authURL("passkey", ""),
		"callbackPrefix": srv.URL + "/cb?", "screenshots": shots,
	}
	var res struct {
		Steps []struct {
			Name, URL string
		} `json:"steps"`
		ConsoleErrors []string `json:"consoleErrors"`
		Shots         []string `json:"shots"`
		Message       string   `json:"message"`
		Credentials   []struct {
			Resident bool `json:"resident"`
		} `json:"credentials"`
	}
	runChromium(t, chromium, node, "account-passkey-flow.mjs", in, &res)
	t.Logf("screenshots in %s: %d", shots, len(res.Shots))
	if len(res.ConsoleErrors) > 0 {
		t.Errorf("console errors (CSP?): %q", res.ConsoleErrors)
	}
	if res.Message != msgAddCodes {
		t.Errorf("account page message %q", res.Message)
	}
	if len(res.Credentials) != 1 || !res.Credentials[0].Resident {
		t.Errorf("authenticator holds %+v, want one discoverable credential", res.Credentials)
	}
	got := factorsOf(t, f, "u-alice")
	if len(got[mfa.TypeWebAuthn]) != 1 || got[mfa.TypeWebAuthn][0].Label != "Laptop passkey" || len(got[mfa.TypeRecovery]) != 1 {
		t.Errorf("alice's factors %v", got)
	}
	// The authenticator-app page was opened but never confirmed.
	if len(got[mfa.TypeTOTP]) != 0 {
		t.Errorf("an unconfirmed authenticator app was stored")
	}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if len(rp.errs) > 0 {
		t.Fatalf("relying party: %v", rp.errs)
	}
	if got := rp.logins["password"]; got[0] != mfa.ACRPwd || !slices.Equal(got[1].([]string), []string{"pwd"}) {
		t.Errorf("password sign-in: %v", got)
	}
	if got, ok := rp.logins["passkey"]; !ok || got[0] != mfa.ACRPhr || !slices.Equal(got[1].([]string), []string{"hwk", "user", "mfa"}) {
		t.Errorf("passkey sign-in: %v", got)
	}
	if e := lastEvent(t, f, "user.login.succeeded"); e.UserID != "u-alice" || e.Data["method"] != "passkey" {
		t.Errorf("last sign-in %+v", e)
	}
	if es := accountEvents(t, f, "mfa.enrolled", "u-alice"); len(es) != 2 || es[0].Data["factor"] != "webauthn" {
		t.Errorf("mfa.enrolled %+v", es)
	}
}

// TestAccountAddFactorStartLimit: every start of an addition counts
// against limits.enrollmentPerAccount; over it the account page answers
// 429 with Retry-After and nothing new is pending.
func TestAccountAddFactorStartLimit(t *testing.T) {
	mp := testenv.StartMailpit(t)
	f := newFixtureOn(t, backends{options: func(o *broker.Options) {
		withAccounts(t, mp, o.Store.(storage.Durable))(o)
		o.Limits.Rules.EnrollmentAccount = ratelimit.Rule{Name: ratelimit.NameEnrollmentAccount, Limit: 2, Window: 15 * time.Minute}
	}})
	f.addUser(storage.User{Username: "bob", Email: "bob@example.com"}, "bob's password")
	f.addClient(storage.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}}, "app-secret")
	b := f.browser()
	f.signedIn(t, b, f.rp("app", "app-secret", "https://app.example/cb", "openid"), "bob", "bob's password")
	_, page := b.get(f.issuer + "/account")
	csrf := field(t, csrfFieldRe, page)
	var secrets []string
	for i := range 3 {
		resp, page := b.post(f.issuer+"/account/factors/totp", url.Values{"csrf": {csrf}})
		if i < 2 {
			if resp.StatusCode != 200 {
				t.Fatalf("start %d: %d\n%s", i+1, resp.StatusCode, page)
			}
			secrets = append(secrets, field(t, secretRe, page))
			continue
		}
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || !contains(page, "Too many attempts.") || secretRe.MatchString(page) {
			t.Fatalf("third start: %d\n%s", resp.StatusCode, page)
		}
	}
	if es := accountEvents(t, f, "mfa.rate_limited", "u-bob"); len(es) != 1 || es[0].Data["limit"] != "enrollment" {
		t.Fatalf("mfa.rate_limited: %+v", es)
	}
	// The second start replaced the first: the first secret's code fails.
	resp, page := b.post(f.issuer+"/account/factors/totp/confirm", url.Values{"csrf": {csrf}, "code": {f.oathtool(secrets[0])}})
	if resp.StatusCode != 400 || !contains(page, msgBadCode) || field(t, secretRe, page) != secrets[1] {
		t.Fatalf("the replaced secret: %d\n%s", resp.StatusCode, page)
	}
	assertNoSecretsLogged(t, f, append(secrets, "bob's password"))
}

// TestAccountAddPasskeyModelNotAllowed: mfa.webauthn.allowedAAGUIDs
// applies on the account page as at sign-in: another model is refused
// (authenticator_not_allowed) and nothing is stored; a listed one is
// added.
func TestAccountAddPasskeyModelNotAllowed(t *testing.T) {
	allowed := [16]byte{0xee, 0x88, 0x28, 0x79}
	mp := testenv.StartMailpit(t)
	f := newFixtureOn(t, backends{localhost: true, webauthn: true, options: func(o *broker.Options) {
		withAccounts(t, mp, o.Store.(storage.Durable))(o)
		u, _ := url.Parse(o.Issuer)
		wf, err := webauthn.New(webauthn.Options{RPID: u.Hostname(), Origins: []string{o.Issuer}, Clock: o.Clock,
			AllowedAAGUIDs: []string{uuid.UUID(allowed).String()}})
		if err != nil {
			t.Fatal(err)
		}
		o.MFA.Factors[mfa.TypeWebAuthn] = wf
	}})
	f.addUser(storage.User{Username: "alice", Email: "alice@example.com"}, "correct horse")
	f.addClient(storage.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}}, "app-secret")
	b := f.browser()
	f.signedIn(t, b, f.rp("app", "app-secret", "https://app.example/cb", "openid"), "alice", "correct horse")
	_, page := b.get(f.issuer + "/account")
	csrf := field(t, csrfFieldRe, page)
	add := func(a *webauthntest.Authenticator) (*http.Response, string) {
		t.Helper()
		resp, page := b.post(f.issuer+"/account/factors/webauthn", url.Values{"csrf": {csrf}})
		answer, err := a.Create(ceremonyOptions(t, resp, page))
		if err != nil {
			t.Fatal(err)
		}
		return b.post(f.issuer+"/account/factors/webauthn/finish", url.Values{"csrf": {csrf}, "label": {"Key"}, "response": {answer}})
	}
	resp, page := add(webauthntest.New(f.issuer)) // another model
	if resp.StatusCode != 400 || !contains(page, msgRefused) {
		t.Fatalf("model not allowed: %d\n%s", resp.StatusCode, page)
	}
	if e := lastEvent(t, f, "mfa.enrollment.failed"); e.Data["reason"] != "authenticator_not_allowed" || e.Data["via"] != "account" {
		t.Fatalf("mfa.enrollment.failed %+v", e.Data)
	}
	if got := factorsOf(t, f, "u-alice"); len(got) != 0 {
		t.Fatalf("stored %v", got)
	}
	listed := webauthntest.New(f.issuer)
	listed.AAGUID = allowed
	if resp, page = add(listed); resp.StatusCode != 200 || !contains(page, "Security key or passkey · Key") {
		t.Fatalf("listed model: %d\n%s", resp.StatusCode, page)
	}
}
