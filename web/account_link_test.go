package web_test

import (
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/mfa/policy"
	"github.com/latchkeyid/latchkey/providers/providertest"
	"github.com/latchkeyid/latchkey/providers/saml/samltest"
	"github.com/latchkeyid/latchkey/session"
	"github.com/latchkeyid/latchkey/storage"
)

// accountLinkFixture is the link fixture (alice with a password, the
// oidc connector "up" over the fake upstream, the app client) with the
// account pages on and the account page's built-in client, as serve
// makes it; eve is a second local user.
func accountLinkFixture(t *testing.T, be backends) (*fixture, *providertest.Upstream, *oauth2.Config) {
	t.Helper()
	mp := testenv.StartMailpit(t)
	be.options = func(o *broker.Options) { withAccounts(t, mp, o.Store.(storage.Durable))(o) }
	f, up, conf := linkFixtureOn(t, be, false)
	f.addUser(storage.User{ID: "u-eve", Username: "eve", Email: "eve@example.com", EmailVerified: true}, "eve's password")
	if err := f.broker.EnsureAccountClient(t.Context()); err != nil {
		t.Fatal(err)
	}
	return f, up, conf
}

// postRaw posts a form without following the answer's redirect.
func (b *browser) postRaw(u string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	return b.postWith(b.raw, u, form)
}

// accountCSRF opens the account page and returns its CSRF token.
func (b *browser) accountCSRF() string {
	b.t.Helper()
	resp, page := b.get(b.issuer + "/account")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/account" {
		b.t.Fatalf("account page: %d at %s\n%s", resp.StatusCode, resp.Request.URL, page)
	}
	return field(b.t, csrfFieldRe, page)
}

// startLink posts the "Link" form of connector up and returns the
// upstream URL it sends the browser to.
func (b *browser) startLink(form url.Values) string {
	b.t.Helper()
	resp, page := b.postRaw(b.issuer+"/account/identities/link", form)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || strings.HasPrefix(loc, b.issuer) || loc == "" {
		b.t.Fatalf("link: want 303 upstream, got %d %q\n%s", resp.StatusCode, loc, page)
	}
	return loc
}

func sids(list []session.Session) []string {
	var out []string
	for _, s := range list {
		out = append(out, s.SID)
	}
	slices.Sort(out)
	return out
}

// assertAccountResult checks the account page a link ended on.
func assertAccountResult(t *testing.T, resp *http.Response, page, want string) {
	t.Helper()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/account" || !contains(page, want) {
		t.Fatalf("want the account page with %q, got %d at %s\n%s", want, resp.StatusCode, resp.Request.URL, page)
	}
}

// linkedEvents returns the identity.linked events of user with reason.
func linkedEvents(t *testing.T, f *fixture, userID, reason string) []storage.Event {
	t.Helper()
	var out []storage.Event
	for _, e := range f.events(t, "identity.linked") {
		if e.UserID == userID && e.Data["reason"] == reason {
			out = append(out, e)
		}
	}
	return out
}

// TestAccountLink: on /account, a connector the user has not linked is
// offered; its "Link" form (CSRF, fresh authentication) goes upstream
// and back, and the identity is linked to the signed-in user without
// touching the session. Refused: another user's identity, a state from
// another browser or session, a bad CSRF token, a stale sign-in without
// the password; an upstream error is shown on the page.
func TestAccountLink(t *testing.T) {
	for name, be := range map[string]backends{"sqlite": {}, "postgres+redis": {postgres: true, redis: true}} {
		t.Run(name, func(t *testing.T) { testAccountLink(t, be) })
	}
}

func testAccountLink(t *testing.T, be backends) {
	f, up, conf := accountLinkFixture(t, be)
	ctx := t.Context()
	aliceSub := providertest.Alice().Subject
	b := f.fedBrowser()
	f.signedIn(t, b, conf, "alice", alicePassword)

	resp, page := b.get(f.issuer + "/account")
	if resp.StatusCode != 200 || !contains(page, `<h3>Link another service</h3>`) || !contains(page, `name="connector" value="up">`) ||
		!contains(page, `action="/account/identities/link"`) {
		t.Fatalf("account page without the link form: %d\n%s", resp.StatusCode, page)
	}
	// Just signed in: the sensitive forms ask for no password.
	if contains(page, "(needed if you signed in more than") {
		t.Fatalf("fresh session asked for a password:\n%s", page)
	}
	csrf := field(t, csrfFieldRe, page)

	// Bad CSRF: nothing starts.
	resp, page = b.postRaw(f.issuer+"/account/identities/link", url.Values{"csrf": {"x"}, "connector": {"up"}})
	assertErrorPage(t, resp, page, 400, "Form expired", "The form was not valid. Open the account page again.")
	// A connector that is not there.
	resp, page = b.postRaw(f.issuer+"/account/identities/link", url.Values{"csrf": {csrf}, "connector": {"nope"}})
	if resp.StatusCode != 404 || !contains(page, "That service cannot be linked here.") {
		t.Fatalf("unknown connector: %d\n%s", resp.StatusCode, page)
	}
	if n := up.Requests(providertest.AuthorizePath); n != 0 {
		t.Fatalf("%d upstream logins started by refused forms", n)
	}

	// The upstream answers access_denied: a clear message, nothing linked.
	up.SetBehavior(providertest.Behavior{AuthorizeError: "access_denied", AuthorizeErrorDescription: "the user said no"})
	resp, page = b.get(b.startLink(url.Values{"csrf": {csrf}, "connector": {"up"}}))
	assertAccountResult(t, resp, page, "The service did not sign you in, so nothing was linked. Try again if you want to link it.")
	up.SetBehavior(providertest.Behavior{})
	if es := f.events(t, "identity.link_failed"); len(es) != 1 || es[0].Data["reason"] != "upstream error access_denied" || es[0].UserID != "u-alice" {
		t.Fatalf("identity.link_failed: %+v", es)
	}
	// An unknown state at the callback: the expired page, not a 500.
	resp, page = b.get(f.issuer + "/callback/up?state=not-a-state&code=x")
	assertErrorPage(t, resp, page, 400, "Sign-in expired", "The sign-in request has expired or was already completed. Go back to the application and start again.")

	// Another browser (eve's) follows alice's upstream URL: refused.
	eve := f.fedBrowser()
	f.signedIn(t, eve, conf, "eve", "eve's password")
	resp, page = eve.get(b.startLink(url.Values{"csrf": {csrf}, "connector": {"up"}}))
	assertErrorPage(t, resp, page, 400, "Link not recognised", "Linking was started in another browser or another session. Open your account page and start again.")
	// The same browser binding but another session (eve's session
	// cookie with alice's binding cookie): refused.
	mixed := f.fedBrowser()
	mixed.setCookie("latchkey_auth", b.cookie("latchkey_auth"))
	mixed.setCookie("latchkey_session", eve.cookie("latchkey_session"))
	resp, page = mixed.get(b.startLink(url.Values{"csrf": {csrf}, "connector": {"up"}}))
	assertErrorPage(t, resp, page, 400, "Link not recognised", "Linking was started in another browser or another session. Open your account page and start again.")
	if _, err := f.db.GetIdentity(ctx, "up", aliceSub); err == nil {
		t.Fatal("linked by a refused callback")
	}

	// The upstream identity belongs to eve already: refused, audited.
	if err := f.db.CreateIdentity(ctx, storage.Identity{ConnectorID: "up", Subject: aliceSub, UserID: "u-eve"}); err != nil {
		t.Fatal(err)
	}
	resp, page = b.get(b.startLink(url.Values{"csrf": {csrf}, "connector": {"up"}}))
	assertAccountResult(t, resp, page, "That account is already linked to another user. Nothing was changed.")
	if i, _ := f.db.GetIdentity(ctx, "up", aliceSub); i.UserID != "u-eve" {
		t.Fatalf("eve's identity now %+v", i)
	}
	if es := f.events(t, "identity.link_refused"); len(es) != 1 || es[0].UserID != "u-alice" || es[0].ConnectorID != "up" ||
		es[0].Data["reason"] != "linked to another user" || es[0].Actor != "user:u-alice" {
		t.Fatalf("identity.link_refused: %+v", es)
	}
	if _, page = b.get(f.issuer + "/account"); contains(page, "already linked to another user") {
		t.Fatal("the outcome is shown twice")
	}

	// A stale sign-in (alice's session of ten minutes ago, in another
	// browser): the password is needed; then the link works.
	up.AddUser(providertest.User{Subject: "alice-up-2", Claims: map[string]any{"email": "alice@up.example", "email_verified": true}})
	up.LoginAs("alice-up-2")
	past := clock.NewFake(f.clock.Now().Add(-broker.FreshAuthWindow - 5*time.Minute))
	staleCookie, _, err := session.NewStore(f.eph, session.Options{Clock: past}).Create(ctx, "u-alice", "local", []string{"pwd"})
	if err != nil {
		t.Fatal(err)
	}
	stale := f.fedBrowser()
	stale.setCookie("latchkey_session", staleCookie)
	scsrf := stale.accountCSRF()
	if _, page := stale.get(f.issuer + "/account"); strings.Count(page, "Current password (needed if you signed in more than 5 minutes ago)") < 2 {
		t.Fatalf("stale session not asked for a password:\n%s", page)
	}
	sessions, _ := f.broker.Sessions(ctx, "u-alice")
	resp, page = stale.postRaw(f.issuer+"/account/identities/link", url.Values{"csrf": {scsrf}, "connector": {"up"}})
	if resp.StatusCode != 400 || !contains(page, "For this change, enter your current password; without a password here, sign out and sign in again first.") {
		t.Fatalf("stale link: %d\n%s", resp.StatusCode, page)
	}
	resp, page = stale.postRaw(f.issuer+"/account/identities/link", url.Values{"csrf": {scsrf}, "connector": {"up"}, "current": {"wrong"}})
	if resp.StatusCode != 400 || !contains(page, "The current password is not correct.") {
		t.Fatalf("wrong password: %d\n%s", resp.StatusCode, page)
	}
	resp, page = stale.get(stale.startLink(url.Values{"csrf": {scsrf}, "connector": {"up"}, "current": {alicePassword}}))
	assertAccountResult(t, resp, page, "The service is linked to your account. You can sign in with it from now on.")
	if !contains(page, `<li data-connector="up">Upstream · alice@up.example`) || contains(page, "Link another service") {
		t.Fatalf("identity not listed or still offered:\n%s", page)
	}
	if i, err := f.db.GetIdentity(ctx, "up", "alice-up-2"); err != nil || i.UserID != "u-alice" {
		t.Fatalf("identity %+v %v", i, err)
	}
	if es := linkedEvents(t, f, "u-alice", broker.ReasonAccountLink); len(es) != 1 || es[0].ConnectorID != "up" || es[0].Actor != "user:u-alice" ||
		es[0].Data["subject"] != "alice-up-2" {
		t.Fatalf("identity.linked: %+v", es)
	}
	// The session is the same one, of the same user; no one signed in.
	if got := stale.cookie("latchkey_session"); got != staleCookie {
		t.Fatal("the link changed the session cookie")
	}
	if after, _ := f.broker.Sessions(ctx, "u-alice"); !reflect.DeepEqual(sids(after), sids(sessions)) {
		t.Fatalf("sessions before %v, after %v", sids(sessions), sids(after))
	}
	if es := f.events(t, "user.login.succeeded"); len(es) != 2 { // alice's and eve's password sign-ins
		t.Fatalf("%d user.login.succeeded events, want 2", len(es))
	}

	// Already linked to this user (another tab linked it meanwhile): a
	// friendly message, nothing written.
	if _, err := broker.Unlink(ctx, f.db, "u-alice", "up", "test", broker.RequestMeta{}); err != nil {
		t.Fatal(err)
	}
	loc := b.startLink(url.Values{"csrf": {csrf}, "connector": {"up"}})
	if err := f.db.CreateIdentity(ctx, storage.Identity{ConnectorID: "up", Subject: "alice-up-2", UserID: "u-alice"}); err != nil {
		t.Fatal(err)
	}
	resp, page = b.get(loc)
	assertAccountResult(t, resp, page, "That account is already linked to yours; nothing changed.")
	if es := linkedEvents(t, f, "u-alice", broker.ReasonAccountLink); len(es) != 1 {
		t.Fatalf("%d identity.linked events, want 1", len(es))
	}
	assertNoSecretsLogged(t, f, append([]string{alicePassword, "eve's password"}, up.Secrets()...))
}

// TestAccountSignIn: GET /account without a session signs in through
// /authorize as the built-in account client and comes back to /account
// signed in; the callback works once and only in the browser that
// started it; a form without a session still gets the clear 401 page.
func TestAccountSignIn(t *testing.T) {
	for name, be := range map[string]backends{"sqlite": {}, "postgres+redis": {postgres: true, redis: true}} {
		t.Run(name, func(t *testing.T) { testAccountSignIn(t, be) })
	}
}

func testAccountSignIn(t *testing.T, be backends) {
	f, _, _ := accountLinkFixture(t, be)
	b := f.browser()

	// The redirect: a fixed authorization request, whatever the URL says.
	resp, _ := b.getRaw(f.issuer + "/account?redirect_uri=https://evil.example/&next=https://evil.example/")
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || err != nil || loc.Scheme+"://"+loc.Host+loc.Path != f.issuer+"/authorize" {
		t.Fatalf("GET /account without a session: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	q := loc.Query()
	for k, want := range map[string]string{"client_id": "latchkey-account", "redirect_uri": f.issuer + "/account/callback",
		"response_type": "code", "scope": "openid", "code_challenge_method": "S256"} {
		if q.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, q.Get(k), want)
		}
	}
	if q.Get("state") == "" || q.Get("state") != b.cookie("latchkey_account_signin") || len(q.Get("code_challenge")) != 43 {
		t.Fatalf("state %q (cookie %q), challenge %q", q.Get("state"), b.cookie("latchkey_account_signin"), q.Get("code_challenge"))
	}

	// The round trip: the login page, then the account page, signed in.
	resp, page := b.get(f.issuer + "/account")
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/login" || !contains(page, "to continue to <strong>Account console</strong>") {
		t.Fatalf("want the login page, got %d at %s\n%s", resp.StatusCode, resp.Request.URL, page)
	}
	resp, page = b.submitLogin(hidden(t, page), "alice", alicePassword)
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/account" || !contains(page, "Signed in as <strong>alice</strong>") {
		t.Fatalf("want the account page, got %d at %s\n%s", resp.StatusCode, resp.Request.URL, page)
	}
	if b.cookie("latchkey_account_signin") != "" {
		t.Fatal("the sign-in cookie stays")
	}
	var callbackURL string
	for _, u := range b.urls {
		if strings.HasPrefix(u, f.issuer+"/account/callback?") {
			callbackURL = u
		}
	}
	if callbackURL == "" {
		t.Fatalf("no callback among %v", b.urls)
	}
	if es := f.events(t, "user.login.succeeded"); len(es) != 1 || es[0].ClientID != "latchkey-account" || es[0].UserID != "u-alice" {
		t.Fatalf("user.login.succeeded: %+v", es)
	}
	// Signed in, GET /account is the page itself.
	if resp, _ = b.getRaw(f.issuer + "/account"); resp.StatusCode != 200 {
		t.Fatalf("signed in: %d", resp.StatusCode)
	}

	// The callback again (used state, no cookie), or in another browser.
	resp, page = b.get(callbackURL)
	assertErrorPage(t, resp, page, 400, "Sign-in not recognised", "This sign-in was started in another browser or has expired. Open your account page again.")
	other := f.browser()
	other.getRaw(f.issuer + "/account") // its own state cookie
	resp, page = other.get(callbackURL)
	assertErrorPage(t, resp, page, 400, "Sign-in not recognised", "This sign-in was started in another browser or has expired. Open your account page again.")
	// The authorization server's error (the user cancelled): a clear page.
	c := f.browser()
	resp, _ = c.getRaw(f.issuer + "/account")
	state := c.cookie("latchkey_account_signin")
	resp, page = c.get(f.issuer + "/account/callback?" + url.Values{"error": {"access_denied"}, "state": {state}, "iss": {f.issuer}}.Encode())
	assertErrorPage(t, resp, page, 400, "Sign-in cancelled", "You are not signed in. Open your account page to try again.")
	// A forged code with a good state: refused, not a 500.
	c.getRaw(f.issuer + "/account")
	state = c.cookie("latchkey_account_signin")
	resp, page = c.get(f.issuer + "/account/callback?" + url.Values{"code": {"forged"}, "state": {state}, "iss": {f.issuer}}.Encode())
	assertErrorPage(t, resp, page, 400, "Sign-in failed", "The sign-in could not be completed. Open your account page to try again.")

	// Forms without a session: the clear 401 page, no redirect.
	anon := f.browser()
	for _, path := range []string{"/account/password", "/account/identities/link", "/account/sessions/end"} {
		resp, page = anon.postRaw(f.issuer+path, url.Values{"csrf": {"x"}})
		assertErrorPage(t, resp, page, 401, "Not signed in", "Your session has ended. Open your account page to sign in again.")
	}
	assertNoSecretsLogged(t, f, []string{alicePassword})
}

// TestAccountLinkSAML: a saml connector is offered on /account too; its
// "Link" sends an AuthnRequest to the IdP, and the response posted to
// the ACS links the identity to the signed-in user (the account page
// sign-in, with the password, is the way in here). A response that does
// not verify links nothing.
func TestAccountLinkSAML(t *testing.T) {
	mp := testenv.StartMailpit(t)
	e := newSAMLEnv(t, backends{options: func(o *broker.Options) { withAccounts(t, mp, o.Store.(storage.Durable))(o) }}, nil)
	f := e.f
	f.addUser(aliceRecord, alicePassword)
	if err := f.broker.EnsureAccountClient(t.Context()); err != nil {
		t.Fatal(err)
	}
	b := f.browser()
	resp, page := b.get(f.issuer + "/account")
	resp, page = b.submitLogin(hidden(t, page), "alice", alicePassword)
	if resp.Request.URL.Path != "/account" || !contains(page, `name="connector" value="corp">`) {
		t.Fatalf("want the account page offering corp, got %d at %s\n%s", resp.StatusCode, resp.Request.URL, page)
	}
	csrf := field(t, csrfFieldRe, page)
	link := func(opts samltest.RespOpts) (*http.Response, string) {
		t.Helper()
		relay, reqID := samlAuthnRequest(t, b.startLink(url.Values{"csrf": {csrf}, "connector": {"corp"}}))
		e.idp.RequestID, e.idp.Now = reqID, f.clock.Now()
		return b.post(f.issuer+"/saml/corp/acs", url.Values{"SAMLResponse": {b64(e.idp.ResponseXML(t, opts))}, "RelayState": {relay}})
	}
	resp, page = link(samltest.RespOpts{Signer: &e.other})
	assertAccountResult(t, resp, page, "The service's answer could not be verified, so nothing was linked. Try again in a moment.")
	if es := f.events(t, "identity.link_failed"); len(es) != 1 || !strings.HasPrefix(es[0].Data["reason"].(string), "saml ") {
		t.Fatalf("identity.link_failed: %+v", es)
	}
	resp, page = link(samltest.RespOpts{AssertionID: "id-assertion-link"})
	assertAccountResult(t, resp, page, "The service is linked to your account. You can sign in with it from now on.")
	ids, _ := f.db.ListUserIdentities(t.Context(), "u-alice")
	if len(ids) != 1 || ids[0].ConnectorID != "corp" || ids[0].Subject == "" {
		t.Fatalf("identities %+v", ids)
	}
	if es := linkedEvents(t, f, "u-alice", broker.ReasonAccountLink); len(es) != 1 || es[0].ConnectorID != "corp" {
		t.Fatalf("identity.linked: %+v", es)
	}
	if es := f.events(t, "user.login.succeeded"); len(es) != 1 { // the account page sign-in only
		t.Fatalf("%d user.login.succeeded events, want 1", len(es))
	}
}

// TestAccountSignInMFAPolicy: the account page's sign-in is an ordinary
// sign-in: an MFA policy that requires a second factor of the account
// client sends a user without one to enrollment, not to /account.
func TestAccountSignInMFAPolicy(t *testing.T) {
	mp := testenv.StartMailpit(t)
	f := newFixtureOn(t, backends{options: func(o *broker.Options) {
		withAccounts(t, mp, o.Store.(storage.Durable))(o)
		p, err := policy.New(policy.Config{Clients: map[string]policy.Rule{broker.AccountClientID: {Mode: policy.Required}}}, o.MFA.Factors.Types(), o.Clock)
		if err != nil {
			t.Fatal(err)
		}
		o.MFA.Policy = p
	}})
	f.addUser(aliceRecord, alicePassword)
	if err := f.broker.EnsureAccountClient(t.Context()); err != nil {
		t.Fatal(err)
	}
	b := f.browser()
	_, page := b.get(f.issuer + "/account")
	resp, page := b.submitLogin(hidden(t, page), "alice", alicePassword)
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/mfa/enroll" {
		t.Fatalf("want the enrollment page, got %d at %s\n%s", resp.StatusCode, resp.Request.URL, page)
	}
}

// TestAccountLinkInChromium: in a real browser, with Latchkey on
// localhost and the upstream on 127.0.0.1 (two sites), /account signs in
// and links Sign in with Apple, whose answer is a cross-site form_post
// (no SameSite=Lax cookies): the binding and session cookies arrive on
// the same-site GET that resumes it.
func TestAccountLinkInChromium(t *testing.T) {
	chromium := testenv.Program(t, "chromium")
	node := ensureNodePackage(t, chromiumDir)
	mp := testenv.StartMailpit(t)
	f, _ := appleFixture(t, backends{localhost: true, options: func(o *broker.Options) { withAccounts(t, mp, o.Store.(storage.Durable))(o) }})
	f.addUser(aliceRecord, alicePassword)
	if err := f.broker.EnsureAccountClient(t.Context()); err != nil {
		t.Fatal(err)
	}
	var res struct {
		URLs          []string `json:"urls"`
		SignedIn      string   `json:"signedIn"`
		Linked        string   `json:"linked"`
		ConsoleErrors []string `json:"consoleErrors"`
	}
	runChromium(t, chromium, node, "account-link-flow.mjs", map[string]any{
		"accountURL": f.issuer + "/account", "username": "alice", "password": alicePassword,
	}, &res)
	if !strings.Contains(res.SignedIn, "Signed in as alice") || res.Linked != "The service is linked to your account. You can sign in with it from now on." {
		t.Fatalf("signed in %q, linked %q; at %v", res.SignedIn, res.Linked, res.URLs)
	}
	if i, err := f.db.GetIdentity(t.Context(), "apple", appleSubject); err != nil || i.UserID != "u-alice" {
		t.Fatalf("identity %+v %v", i, err)
	}
	if len(res.ConsoleErrors) > 0 {
		t.Errorf("console errors: %q", res.ConsoleErrors)
	}
}
