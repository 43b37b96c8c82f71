package web_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/providers/apple/appletest"
	"github.com/latchkeyid/latchkey/providers/providertest"
	"github.com/latchkeyid/latchkey/storage"
)

// appleSubject and appleRelay are the fake Apple's user: she hides her
// address behind the private relay.
const (
	appleSubject = "001234.abcdef.0042"
	appleRelay   = "x7k2m9q4ab@privaterelay.appleid.com"
)

// appleFixture is a fixture on be with the apple connector "apple" over a
// fake Sign in with Apple on 127.0.0.1, signing in appleSubject, whose
// name Alice Example is sent at the first authorization only.
func appleFixture(t *testing.T, be backends) (*fixture, *providertest.Upstream) {
	t.Helper()
	f := newFixtureOn(t, be)
	p8, pub := appletest.NewKey(t)
	fake := appletest.New(t, appletest.Settings{Key: pub})
	fake.AddUser(providertest.User{Subject: appleSubject, Claims: map[string]any{
		"email": appleRelay, "email_verified": "true", "is_private_email": "true", "name": "Alice Example",
	}})
	fake.LoginAs(appleSubject)
	ctx := t.Context()
	cfg, _ := json.Marshal(map[string]any{"clientID": providertest.ClientID, "teamID": appletest.TeamID, "keyID": appletest.KeyID,
		"privateKey": p8, "baseURL": fake.URL})
	now := time.Now().UTC()
	if err := f.db.CreateConnector(ctx, storage.Connector{ID: "apple", Type: "apple", Name: "Apple", Config: cfg, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	list, _ := f.db.ListConnectors(ctx)
	if err := f.conns.Sync(ctx, list); err != nil {
		t.Fatal(err)
	}
	return f, fake
}

// codeRP is a relying party on 127.0.0.1 that redeems every code it
// receives at /cb and keeps the ID tokens.
type codeRP struct {
	conf     *oauth2.Config
	verifier string
	mu       sync.Mutex
	idTokens []string
	errs     []string
}

func (rp *codeRP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/cb" {
		http.NotFound(w, r)
		return
	}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if e := r.URL.Query().Get("error"); e != "" {
		rp.errs = append(rp.errs, "authorization error: "+e+": "+r.URL.Query().Get("error_description"))
		http.Error(w, "authorization failed", http.StatusBadRequest)
		return
	}
	tok, err := rp.conf.Exchange(r.Context(), r.URL.Query().Get("code"), oauth2.VerifierOption(rp.verifier))
	if err != nil {
		rp.errs = append(rp.errs, "exchange: "+err.Error())
		http.Error(w, "exchange failed", http.StatusInternalServerError)
		return
	}
	idt, _ := tok.Extra("id_token").(string)
	rp.idTokens = append(rp.idTokens, idt)
	_, _ = w.Write([]byte("signed in"))
}

// TestAppleFormPostInChromium: Sign in with Apple answers with
// response_mode=form_post, a cross-site POST from the fake Apple on
// 127.0.0.1 to Latchkey's callback on http://localhost:PORT, which the
// browser sends without the SameSite=Lax binding cookie. In headless
// Chromium the flow still completes (Latchkey keeps the POST under its
// state and resumes it as a GET on its own origin) to a relying party,
// twice: the second login (prompt=login) has no user field, and the ID
// token keeps the same sub and the name Apple sent at the first login;
// the private-relay email is the user's verified email.
func TestAppleFormPostInChromium(t *testing.T) {
	chromium := testenv.Program(t, "chromium")
	node := ensureNodePackage(t, chromiumDir)
	f, fake := appleFixture(t, backends{localhost: true})
	if !strings.HasPrefix(f.issuer, "http://localhost:") || !strings.HasPrefix(fake.URL, "http://127.0.0.1:") {
		t.Fatalf("Latchkey at %s and the fake Apple at %s, want localhost and 127.0.0.1", f.issuer, fake.URL)
	}
	ctx := t.Context()
	rp := &codeRP{verifier: oauth2.GenerateVerifier()}
	rpSrv := httptest.NewServer(rp)
	t.Cleanup(rpSrv.Close)
	f.addClient(storage.Client{ID: "rp", RedirectURIs: []string{rpSrv.URL + "/cb"}}, "rp-secret")
	rp.conf = f.rp("rp", "rp-secret", rpSrv.URL+"/cb", "openid", "profile", "email")
	apple := oauth2.SetAuthURLParam("connector_id", "apple")
	var res struct {
		URLs          []string `json:"urls"`
		Bodies        []string `json:"bodies"`
		ConsoleErrors []string `json:"consoleErrors"`
	}
	runChromium(t, chromium, node, "form-post-flow.mjs", map[string]any{
		"authorizeURLs": []string{
			rp.conf.AuthCodeURL("st1", oauth2.S256ChallengeOption(rp.verifier), apple),
			rp.conf.AuthCodeURL("st2", oauth2.S256ChallengeOption(rp.verifier), apple, oauth2.SetAuthURLParam("prompt", "login")),
		},
		"callbackPrefix": rpSrv.URL + "/cb?",
	}, &res)
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if len(rp.errs) > 0 {
		t.Fatalf("relying party: %v", rp.errs)
	}
	if !reflect.DeepEqual(res.Bodies, []string{"signed in", "signed in"}) || len(rp.idTokens) != 2 {
		t.Fatalf("browser ended at %v with %q; %d ID tokens", res.URLs, res.Bodies, len(rp.idTokens))
	}
	if len(res.ConsoleErrors) > 0 {
		t.Errorf("console errors: %q", res.ConsoleErrors)
	}
	if n := fake.Requests(providertest.AuthorizePath); n != 2 {
		t.Errorf("the fake Apple saw %d authorizations, want 2", n)
	}
	var sub string
	for i, raw := range rp.idTokens {
		_, c := decodeJWT(t, raw)
		s, _ := c["sub"].(string)
		if i == 0 {
			sub = s
		}
		want := map[string]any{"sub": sub, "email": appleRelay, "email_verified": true, "name": "Alice Example", "amr": []any{"fed"}}
		for k, v := range want {
			if !reflect.DeepEqual(c[k], v) || s == "" {
				t.Errorf("login %d: ID token %s = %#v, want %#v", i+1, k, c[k], v)
			}
		}
	}
	ident, err := f.db.GetIdentity(ctx, "apple", appleSubject)
	if err != nil || ident.UserID != sub {
		t.Fatalf("identity %v, %v; want linked to %s", ident, err, sub)
	}
}
