package web_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/providers/providertest"
	"github.com/latchkeyid/latchkey/storage"
)

// linkFixture is the app fixture (alice with a password and the
// verified email alice@example.com) with the oidc connector "up" over
// the fake upstream, whose Alice reports the same email.
func linkFixture(t *testing.T, trustEmail bool) (*fixture, *providertest.Upstream, *oauth2.Config) {
	t.Helper()
	return linkFixtureOn(t, backends{}, trustEmail)
}

func linkFixtureOn(t *testing.T, be backends, trustEmail bool) (*fixture, *providertest.Upstream, *oauth2.Config) {
	t.Helper()
	f := newFixtureOn(t, be)
	f.addUser(aliceRecord, alicePassword)
	f.addClient(storage.Client{ID: "app", Name: "The App", RedirectURIs: []string{appCB}}, appSecret)
	up := f.addOIDCConnector("up", "Upstream", trustEmail)
	return f, up, f.rp("app", appSecret, appCB, "openid", "email", "profile")
}

// addOIDCConnector adds an oidc connector over a new fake upstream.
func (f *fixture) addOIDCConnector(id, name string, trustEmail bool) *providertest.Upstream {
	f.t.Helper()
	up := providertest.NewUpstream(f.t)
	cfg, _ := json.Marshal(map[string]any{"issuer": up.URL, "clientID": providertest.ClientID,
		"clientSecret": providertest.ClientSecret, "trustEmail": trustEmail})
	ctx := f.t.Context()
	now := time.Now().UTC()
	if err := f.db.CreateConnector(ctx, storage.Connector{ID: id, Type: "oidc", Name: name, Config: cfg, CreatedAt: now, UpdatedAt: now}); err != nil {
		f.t.Fatal(err)
	}
	list, _ := f.db.ListConnectors(ctx)
	if err := f.conns.Sync(ctx, list); err != nil {
		f.t.Fatal(err)
	}
	return up
}

// fedBrowser is a browser that follows redirects to the upstream too,
// stopping at the app.
func (f *fixture) fedBrowser() *browser {
	b := f.browser()
	b.client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		b.record(req.URL.String(), "")
		if strings.HasPrefix(req.URL.String(), appCB) || len(via) > 10 {
			return http.ErrUseLastResponse
		}
		return nil
	}
	return b
}

// startUpstream opens the login page for authURL and presses the "up"
// button; it returns the answer after the upstream's callback.
func (b *browser) startUpstream(authURL string) (*http.Response, string) {
	b.t.Helper()
	resp, page := b.get(authURL)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/login" {
		b.t.Fatalf("want the login page, got %d at %s\n%s", resp.StatusCode, resp.Request.URL, page)
	}
	form := hidden(b.t, page)
	form.Set("connector", "up")
	return b.post(b.issuer+"/login/upstream", form)
}

// toLinkPage starts an upstream login at authURL that must end on the
// link page, and returns the page and its form fields.
func (b *browser) toLinkPage(authURL string) (url.Values, *http.Response, string) {
	b.t.Helper()
	resp, page := b.startUpstream(authURL)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/link" {
		b.t.Fatalf("want the link page, got %d at %s\n%s", resp.StatusCode, resp.Request.URL, page)
	}
	return hidden(b.t, page), resp, page
}

// linkAction posts the link page's form with action ("signin" with a
// username and password, "separate" or "cancel").
func (b *browser) linkAction(form url.Values, action string, usernamePassword ...string) (*http.Response, string) {
	b.t.Helper()
	form = cloneValues(form)
	form.Set("action", action)
	if len(usernamePassword) == 2 {
		form.Set("username", usernamePassword[0])
		form.Set("password", usernamePassword[1])
	}
	return b.post(b.issuer+"/link", form)
}

// claimsOf redeems the authorization response's code and returns the ID
// token's claims.
func (f *fixture) claimsOf(t *testing.T, conf *oauth2.Config, q map[string][]string, verifier string) map[string]any {
	t.Helper()
	tok, err := conf.Exchange(t.Context(), first(q["code"]), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	_, _, claims := f.idToken(t, "app", tok)
	return claims
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// TestLinkByProof: a first upstream login whose email is an existing
// account's, through a connector without trustEmail, creates nothing and
// shows the link page; another browser cannot use it; a wrong password is
// refused; the right one links the identity and signs in as the existing
// user; the next upstream login goes straight in as the same sub.
func TestLinkByProof(t *testing.T) {
	for name, be := range map[string]backends{"sqlite": {}, "postgres+redis": {postgres: true, redis: true}} {
		t.Run(name, func(t *testing.T) { testLinkByProof(t, be) })
	}
}

func testLinkByProof(t *testing.T, be backends) {
	f, _, conf := linkFixtureOn(t, be, false)
	ctx := t.Context()
	b := f.fedBrowser()
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("s1", oauth2.S256ChallengeOption(verifier))
	form, resp, page := b.toLinkPage(authURL)
	for _, want := range []string{"An account with this email already exists", "Sign in to link <strong>Upstream</strong> (alice@example.com)",
		`action="/link"`, `name="password"`, `value="signin"`, `value="separate"`, `value="cancel"`} {
		if !strings.Contains(page, want) {
			t.Fatalf("link page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(resp.Request.URL.String(), "alice") || strings.Contains(resp.Request.URL.String(), providertest.Alice().Subject) {
		t.Fatalf("the pending link is in the URL %s", resp.Request.URL)
	}
	users, _ := f.db.ListUsers(ctx)
	if _, err := f.db.GetIdentity(ctx, "up", providertest.Alice().Subject); !errors.Is(err, storage.ErrNotFound) || len(users) != 1 {
		t.Fatalf("before the proof: identity err %v, %d users; want nothing linked or created", err, len(users))
	}
	linkURL := resp.Request.URL.String()

	// Another browser: neither the page nor the form is accepted.
	other := f.fedBrowser()
	resp2, page2 := other.get(linkURL)
	assertErrorPage(t, resp2, page2, 400, "Sign-in not recognised", "The sign-in request was started in another browser. Go back to the application and start again in this browser.")
	resp2, page2 = other.linkAction(form, "signin", "alice", alicePassword)
	assertErrorPage(t, resp2, page2, 400, "Sign-in not recognised", "The sign-in request was started in another browser. Go back to the application and start again in this browser.")
	if _, err := f.db.GetIdentity(ctx, "up", providertest.Alice().Subject); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("another browser linked the identity: %v", err)
	}

	// A wrong password: the link page again, nothing linked.
	resp, page = b.linkAction(form, "signin", "alice", "wrong password")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Incorrect username or password.") || !strings.Contains(page, "An account with this email already exists") {
		t.Fatalf("wrong password: %d\n%s", resp.StatusCode, page)
	}
	if _, err := f.db.GetIdentity(ctx, "up", providertest.Alice().Subject); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a wrong password linked the identity: %v", err)
	}

	// The right password links and signs in as alice.
	resp, page = b.linkAction(form, "signin", "alice", alicePassword)
	claims := f.claimsOf(t, conf, callback(t, resp, page, appCB), verifier)
	if claims["sub"] != aliceRecord.ID || claims["email"] != "alice@example.com" {
		t.Fatalf("after the proof: claims %v, want alice's sub %s", claims, aliceRecord.ID)
	}
	ident, err := f.db.GetIdentity(ctx, "up", providertest.Alice().Subject)
	if err != nil || ident.UserID != aliceRecord.ID || len(ident.ConnectorData) == 0 {
		t.Fatalf("identity %v, %v; want linked to alice with its sealed data", ident, err)
	}
	ev := f.events(t, "identity.linked")
	if len(ev) != 1 || ev[0].UserID != aliceRecord.ID || ev[0].ConnectorID != "up" ||
		!reflect.DeepEqual(ev[0].Data, map[string]any{"subject": providertest.Alice().Subject, "reason": "proven", "proof_connector": "local"}) {
		t.Fatalf("identity.linked events %+v", ev)
	}
	if users, _ := f.db.ListUsers(ctx); len(users) != 1 {
		t.Fatalf("%d users after the link, want 1", len(users))
	}

	// The next upstream login (a new browser) goes straight in as alice.
	b3 := f.fedBrowser()
	verifier3 := oauth2.GenerateVerifier()
	resp, page = b3.startUpstream(conf.AuthCodeURL("s3", oauth2.S256ChallengeOption(verifier3)))
	claims = f.claimsOf(t, conf, callback(t, resp, page, appCB), verifier3)
	if claims["sub"] != aliceRecord.ID || !reflect.DeepEqual(claims["amr"], []any{"fed"}) {
		t.Fatalf("next upstream login: sub %v amr %v, want %s [fed]", claims["sub"], claims["amr"], aliceRecord.ID)
	}
	if strings.Contains(f.logs.String(), alicePassword) || strings.Contains(f.logs.String(), providertest.ClientSecret) {
		t.Fatal("a secret is in the logs")
	}
}

// TestLinkProofOtherAccount: the proof must sign in the account with the
// email; another account's correct password is refused and links
// nothing.
func TestLinkProofOtherAccount(t *testing.T) {
	f, _, conf := linkFixture(t, false)
	f.addUser(storage.User{Username: "bob", Email: "bob@example.com"}, "bob password")
	b := f.fedBrowser()
	form, _, _ := b.toLinkPage(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	resp, page := b.linkAction(form, "signin", "bob", "bob password")
	assertErrorPage(t, resp, page, 403, "Not the same account", "You signed in with that account as an account other than the one with this email address. Go back and sign in with that account, or start again.")
	if _, err := f.db.GetIdentity(t.Context(), "up", providertest.Alice().Subject); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("another account's proof linked the identity: %v", err)
	}
}

// TestLinkDecline: "create a separate account" makes a new user for the
// identity; "cancel" sends access_denied to the app.
func TestLinkDecline(t *testing.T) {
	f, _, conf := linkFixture(t, false)
	b := f.fedBrowser()
	verifier := oauth2.GenerateVerifier()
	form, _, _ := b.toLinkPage(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	resp, page := b.linkAction(form, "cancel")
	q := callback(t, resp, page, appCB)
	if q.Get("error") != "access_denied" || q.Get("state") != "s" {
		t.Fatalf("cancel: %v", q)
	}

	b = f.fedBrowser()
	form, _, _ = b.toLinkPage(conf.AuthCodeURL("s2", oauth2.S256ChallengeOption(verifier)))
	resp, page = b.linkAction(form, "separate")
	claims := f.claimsOf(t, conf, callback(t, resp, page, appCB), verifier)
	ident, err := f.db.GetIdentity(t.Context(), "up", providertest.Alice().Subject)
	if err != nil || claims["sub"] == aliceRecord.ID || ident.UserID != claims["sub"] {
		t.Fatalf("separate account: sub %v, identity %v %v", claims["sub"], ident, err)
	}
	if ev := f.events(t, "identity.linked"); len(ev) != 1 || ev[0].Data["reason"] != "new_user" {
		t.Fatalf("identity.linked events %+v", ev)
	}
}

// TestLinkTrustEmail: with trustEmail a verified upstream email links
// directly to the one account with it (the oidc connector reports
// email_verified true under trustEmail, CONTRACTS.md); when several
// accounts have it, the user proves one.
func TestLinkTrustEmail(t *testing.T) {
	f, up, conf := linkFixture(t, true)
	b := f.fedBrowser()
	verifier := oauth2.GenerateVerifier()
	resp, page := b.startUpstream(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	claims := f.claimsOf(t, conf, callback(t, resp, page, appCB), verifier)
	if claims["sub"] != aliceRecord.ID {
		t.Fatalf("trustEmail: sub %v, want %s", claims["sub"], aliceRecord.ID)
	}
	if ev := f.events(t, "identity.linked"); len(ev) != 1 || ev[0].Data["reason"] != "verified_email" || ev[0].UserID != aliceRecord.ID {
		t.Fatalf("identity.linked events %+v", ev)
	}

	// Two accounts with that email: which one is not the upstream's to
	// say, so another upstream account with it must prove one.
	f.addUser(storage.User{Username: "alice2", Email: "alice@example.com", EmailVerified: true}, "other password")
	up.AddUser(providertest.User{Subject: "carol-sub", Claims: map[string]any{"email": "alice@example.com", "email_verified": true}})
	up.LoginAs("carol-sub")
	f.fedBrowser().toLinkPage(conf.AuthCodeURL("s2", oauth2.S256ChallengeOption(verifier)))
}

// TestLinkWaitsForSecondFactor: the proof is a sign-in like any other:
// when the policy asks for a second factor (here acr_values asks for
// mfa, which alice must enroll), the identity is not linked until that
// step is done.
func TestLinkWaitsForSecondFactor(t *testing.T) {
	f, _, conf := linkFixture(t, false)
	b := f.fedBrowser()
	form, _, _ := b.toLinkPage(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()),
		oauth2.SetAuthURLParam("acr_values", "urn:latchkey:acr:mfa")))
	resp, page := b.linkAction(form, "signin", "alice", alicePassword)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/mfa/enroll" {
		t.Fatalf("after the password: want the enrollment page, got %d at %s\n%s", resp.StatusCode, resp.Request.URL, page)
	}
	if _, err := f.db.GetIdentity(t.Context(), "up", providertest.Alice().Subject); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("linked before the second factor: %v", err)
	}
}

// TestLinkProofThroughConnector: an account without a password proves
// itself through another connector linked to it: the link page offers
// that connector's button (not the password form), and signing in there
// links the new identity to the same user.
func TestLinkProofThroughConnector(t *testing.T) {
	f := newFixture(t)
	f.addClient(storage.Client{ID: "app", Name: "The App", RedirectURIs: []string{appCB}}, appSecret)
	conf := f.rp("app", appSecret, appCB, "openid", "email", "profile")
	f.addOIDCConnector("up", "Upstream", false)
	other := f.addOIDCConnector("other", "Other IdP", false)
	other.AddUser(providertest.User{Subject: "other-alice", Claims: map[string]any{"email": "alice@example.com", "email_verified": true}})
	other.LoginAs("other-alice")

	// alice signs up through "other" (no password).
	b := f.fedBrowser()
	verifier := oauth2.GenerateVerifier()
	resp, page := b.get(conf.AuthCodeURL("s1", oauth2.S256ChallengeOption(verifier)))
	form := hidden(t, page)
	form.Set("connector", "other")
	resp, page = b.post(f.issuer+"/login/upstream", form)
	sub := f.claimsOf(t, conf, callback(t, resp, page, appCB), verifier)["sub"]

	// Then "up" with the same email: prove it through "other".
	b = f.fedBrowser()
	form, _, page = b.toLinkPage(conf.AuthCodeURL("s2", oauth2.S256ChallengeOption(verifier)))
	if !strings.Contains(page, `name="connector" value="other"`) || strings.Contains(page, `name="connector" value="up"`) || strings.Contains(page, `name="password"`) {
		t.Fatalf("link page should offer only the Other IdP button:\n%s", page)
	}
	form.Set("connector", "other")
	resp, page = b.post(f.issuer+"/login/upstream", form)
	claims := f.claimsOf(t, conf, callback(t, resp, page, appCB), verifier)
	ident, err := f.db.GetIdentity(t.Context(), "up", providertest.Alice().Subject)
	if claims["sub"] != sub || err != nil || ident.UserID != sub {
		t.Fatalf("after the proof: sub %v (want %v), identity %v %v", claims["sub"], sub, ident, err)
	}
	ev := f.events(t, "identity.linked")
	if len(ev) != 2 || ev[1].Data["reason"] != "proven" || ev[1].Data["proof_connector"] != "other" {
		t.Fatalf("identity.linked events %+v", ev)
	}
}
