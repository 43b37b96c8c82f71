package web_test

import (
	"context"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/internal/ratelimit"
	"github.com/latchkeyid/latchkey/internal/secretbox"
	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/mfa"
	"github.com/latchkeyid/latchkey/mfa/recovery"
	"github.com/latchkeyid/latchkey/mfa/totp"
	"github.com/latchkeyid/latchkey/storage"
)

// testMFA wires TOTP and recovery codes as cmd does, with the default
// policy (a second factor only when acr_values ask).
func testMFA(t *testing.T, db mfa.Store, ring *secretbox.Keyring, clk clock.Clock) *broker.MFAOptions {
	t.Helper()
	tf, err := totp.New(totp.Options{Issuer: "Latchkey", Sealer: ring, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := mfa.NewRegistry(tf, recovery.New(recovery.Options{Clock: clk}))
	if err != nil {
		t.Fatal(err)
	}
	return &broker.MFAOptions{Factors: reg, Store: db}
}

// testFactorLimits turns on only limits.factorPerAccount (default 5/5m).
func testFactorLimits(eph storage.Ephemeral, clk clock.Clock) broker.Limits {
	rules := ratelimit.DefaultRules()
	for _, r := range []*ratelimit.Rule{&rules.LoginIP, &rules.LoginAccount, &rules.TokenClient, &rules.RecoveryAccount, &rules.RegistrationIP, &rules.EnrollmentAccount} {
		r.Limit = 0
	}
	return broker.Limits{Limiter: ratelimit.New(eph, ratelimit.Options{Clock: clk}), Rules: rules}
}

// oathtool computes the TOTP code of secret at the fixture's time,
// independently of pquerna/otp.
func (f *fixture) oathtool(secret string) string {
	f.t.Helper()
	bin := testenv.Program(f.t, "oathtool")
	now := f.clock.Now().UTC().Format("2006-01-02 15:04:05 UTC")
	out, err := exec.Command(bin, "--totp", "-b", "--now", now, secret).Output()
	if err != nil {
		f.t.Fatalf("oathtool: %v", err)
	}
	return strings.TrimSpace(string(out))
}

var secretRe = regexp.MustCompile(`<code id="totp-secret">([A-Z2-7]+)</code>`)
var recoveryRe = regexp.MustCompile(`<li><code>([0-9A-Z-]+)</code></li>`)

// mfaFlow is one sign-in through the MFA pages.
type mfaFlow struct {
	f        *fixture
	b        *browser
	conf     *oauth2.Config
	verifier string
}

func (f *fixture) mfaFlow(b *browser, acr string) (*mfaFlow, *http.Response, string) {
	f.t.Helper()
	m := &mfaFlow{f: f, b: b, conf: f.rp("app", "app-secret", "https://app.example/cb", "openid"), verifier: oauth2.GenerateVerifier()}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(m.verifier), oidc.Nonce("n")}
	if acr != "" {
		opts = append(opts, oauth2.SetAuthURLParam("acr_values", acr))
	}
	resp, page := b.get(m.conf.AuthCodeURL("st", opts...))
	return m, resp, page
}

// idToken redeems the code of a callback and returns the ID token.
func (m *mfaFlow) idToken(resp *http.Response, page string) *oidc.IDToken {
	t := m.f.t
	t.Helper()
	q := callback(t, resp, page, "https://app.example/cb")
	tok, err := m.conf.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(m.verifier))
	if err != nil {
		t.Fatalf("exchange: %v (%v)", err, q)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := m.f.verifier("app").Verify(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	return idt
}

func claimsOf(t *testing.T, idt *oidc.IDToken) (string, []string) {
	t.Helper()
	var c struct {
		ACR string   `json:"acr"`
		AMR []string `json:"amr"`
	}
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	return c.ACR, c.AMR
}

func TestMFAEnrollChallengeRecovery(t *testing.T) {
	f := newFixture(t)
	f.addUser(storage.User{Username: "alice", Email: "alice@example.com"}, "correct horse")
	f.addUser(storage.User{Username: "bob", Email: "bob@example.com"}, "battery staple")
	f.addClient(storage.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}}, "app-secret")
	var secrets []string // every code and secret seen, for the log check

	// Without acr_values nothing changes: acr pwd, amr [pwd].
	b0 := f.browser()
	m, _, _ := f.mfaFlow(b0, "")
	resp, page := b0.submitLogin(b0.loginForm(m.conf.AuthCodeURL("st", oauth2.S256ChallengeOption(m.verifier), oidc.Nonce("n"))), "alice", "correct horse")
	if acr, amr := claimsOf(t, m.idToken(resp, page)); acr != mfa.ACRPwd || !slices.Equal(amr, []string{"pwd"}) {
		t.Fatalf("plain login: acr %q amr %q", acr, amr)
	}

	// acr_values=mfa: password, then enrollment (nothing enrolled yet).
	b := f.browser()
	m, resp, page = f.mfaFlow(b, mfa.ACRMFA)
	resp, page = b.submitLogin(hidden(t, page), "alice", "correct horse")
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/mfa/enroll" {
		t.Fatalf("want the enrollment page, got %d %s\n%s", resp.StatusCode, resp.Request.URL, page)
	}
	if !strings.Contains(page, `src="data:image/png;base64,`) {
		t.Fatalf("no QR code on the enrollment page:\n%s", page)
	}
	sm := secretRe.FindStringSubmatch(page)
	if sm == nil {
		t.Fatalf("no secret on the enrollment page:\n%s", page)
	}
	secret := sm[1]
	secrets = append(secrets, secret)
	enrollForm := hidden(t, page)

	// Another user's session cannot confirm alice's enrollment.
	other := f.browser()
	om, _, opage := f.mfaFlow(other, "")
	_ = om
	oresp, _ := other.submitLogin(hidden(t, opage), "bob", "battery staple")
	if oresp.StatusCode != http.StatusSeeOther {
		t.Fatalf("bob's login: %d", oresp.StatusCode)
	}
	b.jar.SetCookies(mustURL(t, f.issuer), []*http.Cookie{{Name: "latchkey_session", Value: other.cookie("latchkey_session"), Path: "/"}})
	aliceSession := "" // restored below
	_ = aliceSession
	code := f.oathtool(secret)
	form := cloneValues(enrollForm)
	form.Set("code", code)
	resp, page = b.post(f.issuer+"/mfa/enroll", form)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("enrollment with bob's session: %d\n%s", resp.StatusCode, page)
	}
	if len(f.events(t, "mfa.refused")) != 1 {
		t.Fatalf("no mfa.refused event")
	}
	if creds, _ := f.db.ListMFACredentials(context.Background(), "u-bob"); len(creds) != 0 {
		t.Fatalf("bob got a credential")
	}

	// Start again in alice's browser (the session cookie was replaced).
	b = f.browser()
	m, _, page = f.mfaFlow(b, mfa.ACRMFA)
	resp, page = b.submitLogin(hidden(t, page), "alice", "correct horse")
	secret = secretRe.FindStringSubmatch(page)[1]
	secrets = append(secrets, secret)
	enrollForm = hidden(t, page)
	// A wrong code: the same page, a clear message, an event.
	form = cloneValues(enrollForm)
	form.Set("code", "000000")
	resp, page = b.post(f.issuer+"/mfa/enroll", form)
	if resp.StatusCode != 400 || !strings.Contains(page, "That code is not valid") || secretRe.FindStringSubmatch(page)[1] != secret {
		t.Fatalf("wrong enrollment code: %d\n%s", resp.StatusCode, page)
	}
	code = f.oathtool(secret)
	secrets = append(secrets, code)
	form.Set("code", code)
	resp, page = b.post(f.issuer+"/mfa/enroll", form)
	codes := recoveryRe.FindAllStringSubmatch(page, -1)
	if resp.StatusCode != 200 || len(codes) != recovery.Count {
		t.Fatalf("want %d recovery codes, got %d %d\n%s", recovery.Count, resp.StatusCode, len(codes), page)
	}
	for _, c := range codes {
		secrets = append(secrets, c[1])
	}
	resp, page = b.post(f.issuer+"/mfa/continue", hidden(t, page))
	acr, amr := claimsOf(t, m.idToken(resp, page))
	if acr != mfa.ACRMFA || !slices.Equal(amr, []string{"pwd", "otp", "mfa"}) {
		t.Fatalf("after enrollment: acr %q amr %q", acr, amr)
	}
	if len(f.events(t, "mfa.enrolled")) != 2 {
		t.Fatalf("want mfa.enrolled for totp and recovery")
	}

	// A new browser: password, then the challenge; the enrollment code
	// (same time step) is refused as reused.
	b2 := f.browser()
	m, _, page = f.mfaFlow(b2, mfa.ACRMFA)
	resp, page = b2.submitLogin(hidden(t, page), "alice", "correct horse")
	if resp.Request.URL.Path != "/mfa" || !strings.Contains(page, `id="use-recovery"`) {
		t.Fatalf("want the challenge page with a recovery link, got %s\n%s", resp.Request.URL, page)
	}
	challenge := hidden(t, page)
	form = cloneValues(challenge)
	form.Set("code", code)
	resp, page = b2.post(f.issuer+"/mfa", form)
	if resp.StatusCode != 400 || !strings.Contains(page, "That code was already used") {
		t.Fatalf("reused code: %d\n%s", resp.StatusCode, page)
	}
	form.Set("code", "123456")
	if code == "123456" {
		form.Set("code", "654321")
	}
	resp, page = b2.post(f.issuer+"/mfa", form)
	if resp.StatusCode != 400 || !strings.Contains(page, "That code is not valid") {
		t.Fatalf("wrong code: %d\n%s", resp.StatusCode, page)
	}
	if n := len(f.events(t, "mfa.challenge.failed")); n != 2 {
		t.Fatalf("mfa.challenge.failed events = %d, want 2", n)
	}
	f.clock.Advance(30 * time.Second)
	code = f.oathtool(secret)
	secrets = append(secrets, code)
	form.Set("code", code)
	oldCookie := b2.cookie("latchkey_session")
	resp, page = b2.post(f.issuer+"/mfa", form)
	acr, amr = claimsOf(t, m.idToken(resp, page))
	if acr != mfa.ACRMFA || !slices.Equal(amr, []string{"pwd", "otp", "mfa"}) {
		t.Fatalf("after challenge: acr %q amr %q", acr, amr)
	}
	if b2.cookie("latchkey_session") == oldCookie {
		t.Fatal("the session cookie did not rotate on step-up")
	}

	// Recovery code: works once, then refused.
	for i, want := range []int{http.StatusSeeOther, http.StatusBadRequest} {
		f.clock.Advance(10 * time.Minute) // two windows of the factor limit: a fresh budget
		bb := f.browser()
		m, _, page = f.mfaFlow(bb, mfa.ACRMFA)
		resp, page = bb.submitLogin(hidden(t, page), "alice", "correct horse")
		resp, page = bb.get(f.issuer + "/mfa?req=" + url.QueryEscape(hidden(t, page).Get("req")) + "&factor=recovery")
		if !strings.Contains(page, "Recovery code") {
			t.Fatalf("recovery page:\n%s", page)
		}
		form = hidden(t, page)
		form.Set("factor", "recovery") // hidden() reads only req and csrf
		form.Set("code", codes[0][1])
		resp, page = bb.post(f.issuer+"/mfa", form)
		if resp.StatusCode != want {
			t.Fatalf("recovery use %d: %d\n%s", i, resp.StatusCode, page)
		}
		if i == 0 {
			acr, amr = claimsOf(t, m.idToken(resp, page))
			if acr != mfa.ACRMFA || !slices.Equal(amr, []string{"pwd", "rcode", "mfa"}) {
				t.Fatalf("after recovery code: acr %q amr %q", acr, amr)
			}
		} else if !strings.Contains(page, "That code was already used") {
			t.Fatalf("reused recovery code:\n%s", page)
		}
	}
	if len(f.events(t, "mfa.recovery.used")) != 1 {
		t.Fatal("want one mfa.recovery.used event")
	}

	// Brute force: the sixth wrong code within 5 minutes is 429.
	f.clock.Advance(10 * time.Minute)
	bf := f.browser()
	_, _, page = f.mfaFlow(bf, mfa.ACRMFA)
	_, page = bf.submitLogin(hidden(t, page), "alice", "correct horse")
	form = hidden(t, page)
	var last *http.Response
	for i := range 6 {
		form.Set("code", "00000"+string(rune('0'+i)))
		last, page = bf.post(f.issuer+"/mfa", form)
	}
	if ra := last.Header.Get("Retry-After"); last.StatusCode != http.StatusTooManyRequests || ra == "" ||
		!strings.Contains(page, `id="mfa-error">Too many attempts. Please wait `+ra+` seconds and try again.</p>`) {
		t.Fatalf("brute force: %d %q\n%s", last.StatusCode, ra, page)
	}
	// The same page in German: the wait is part of the translated text.
	bf.setCookie("latchkey_lang", "de")
	last, page = bf.post(f.issuer+"/mfa", form)
	if ra := last.Header.Get("Retry-After"); last.StatusCode != http.StatusTooManyRequests ||
		!strings.Contains(page, `id="mfa-error">Zu viele Versuche. Bitte warten Sie `+ra+` Sekunden und versuchen Sie es erneut.</p>`) {
		t.Fatalf("brute force in German: %d %q\n%s", last.StatusCode, ra, page)
	}
	if len(f.events(t, "mfa.rate_limited")) == 0 {
		t.Fatal("no mfa.rate_limited event")
	}

	// prompt=none with a factor needed: interaction_required.
	bn := f.browser()
	_, _, page = f.mfaFlow(bn, "")
	bn.submitLogin(hidden(t, page), "alice", "correct horse")
	mn := f.rp("app", "app-secret", "https://app.example/cb", "openid")
	resp, page = bn.get(mn.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("prompt", "none"), oauth2.SetAuthURLParam("acr_values", mfa.ACRMFA)))
	if q := callback(t, resp, page, "https://app.example/cb"); q.Get("error") != "interaction_required" {
		t.Fatalf("prompt=none: %v", q)
	}

	// No code, secret or recovery code in the logs.
	logs := f.logs.String()
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Fatalf("the logs hold a secret or code %q", s)
		}
	}
}

func TestMFAStepUpLiveSession(t *testing.T) {
	f := newFixture(t)
	f.addUser(storage.User{Username: "alice"}, "pw")
	f.addClient(storage.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}}, "app-secret")
	b := f.browser()
	m, _, page := f.mfaFlow(b, mfa.ACRMFA)
	_, page = b.submitLogin(hidden(t, page), "alice", "pw")
	secret := secretRe.FindStringSubmatch(page)[1]
	form := hidden(t, page)
	form.Set("code", f.oathtool(secret))
	_, page = b.post(f.issuer+"/mfa/enroll", form)
	resp, page := b.post(f.issuer+"/mfa/continue", hidden(t, page))
	m.idToken(resp, page)

	// A new session at pwd level; then acr_values=mfa steps up: only the
	// code is asked, no password.
	b2 := f.browser()
	m, _, page = f.mfaFlow(b2, "")
	resp, page = b2.submitLogin(hidden(t, page), "alice", "pw")
	if acr, _ := claimsOf(t, m.idToken(resp, page)); acr != mfa.ACRPwd {
		t.Fatalf("acr %q", acr)
	}
	m, resp, page = f.mfaFlow(b2, mfa.ACRMFA)
	if resp.Request.URL.Path != "/mfa" {
		t.Fatalf("step-up: want /mfa, got %s\n%s", resp.Request.URL, page)
	}
	f.clock.Advance(30 * time.Second)
	form = hidden(t, page)
	form.Set("code", f.oathtool(secret))
	resp, page = b2.post(f.issuer+"/mfa", form)
	if acr, amr := claimsOf(t, m.idToken(resp, page)); acr != mfa.ACRMFA || !slices.Equal(amr, []string{"pwd", "otp", "mfa"}) {
		t.Fatalf("step-up: acr %q amr %q", acr, amr)
	}
	// prompt=login with acr_values=mfa: the password and the code again
	// (a second factor from before the new sign-in does not count); so
	// for max_age shorter than the code's age.
	for _, extra := range []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "login"), oauth2.SetAuthURLParam("max_age", "0")} {
		f.clock.Advance(30 * time.Second)
		m = &mfaFlow{f: f, b: b2, conf: f.rp("app", "app-secret", "https://app.example/cb", "openid"), verifier: oauth2.GenerateVerifier()}
		resp, page = b2.get(m.conf.AuthCodeURL("st", oauth2.S256ChallengeOption(m.verifier), oidc.Nonce("n"), oauth2.SetAuthURLParam("acr_values", mfa.ACRMFA), extra))
		if resp.Request.URL.Path != "/login" {
			t.Fatalf("re-authentication: want /login, got %s", resp.Request.URL)
		}
		resp, page = b2.submitLogin(hidden(t, page), "alice", "pw")
		if resp.Request.URL.Path != "/mfa" {
			t.Fatalf("re-authentication: want the code asked again, got %d %s\n%s", resp.StatusCode, resp.Request.URL, page)
		}
		form = hidden(t, page)
		form.Set("code", f.oathtool(secret))
		resp, page = b2.post(f.issuer+"/mfa", form)
		if acr, amr := claimsOf(t, m.idToken(resp, page)); acr != mfa.ACRMFA || !slices.Equal(amr, []string{"pwd", "otp", "mfa"}) {
			t.Fatalf("re-authentication: acr %q amr %q", acr, amr)
		}
	}
	// Asking above what any factor here reaches is unmet.
	m, resp, page = f.mfaFlow(b2, mfa.ACRPhr)
	if q := callback(t, resp, page, "https://app.example/cb"); q.Get("error") != "unmet_authentication_requirements" {
		t.Fatalf("phr: %v", q)
	}
}

func TestMFADiscovery(t *testing.T) {
	f := newFixture(t)
	_, body := doRequest(t, mustGet(t, f.issuer+broker.PathDiscoveryOIDC))
	if !strings.Contains(body, `"acr_values_supported":["urn:latchkey:acr:pwd","urn:latchkey:acr:mfa","urn:latchkey:acr:phr"]`) {
		t.Fatalf("discovery: %s", body)
	}
}

func mustGet(t *testing.T, u string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustURL(t *testing.T, u string) *url.URL {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
