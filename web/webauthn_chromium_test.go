package web_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/mfa"
	"github.com/latchkeyid/latchkey/storage"
)

// artifactsDir is where browser tests leave their screenshots:
// $LATCHKEY_TEST_ARTIFACTS/<name>, default <tmp>/latchkey-test-artifacts/<name>.
func artifactsDir(t *testing.T, name string) string {
	t.Helper()
	return testenv.Artifacts(t, name)
}

// webauthnRP is the relying party of TestWebAuthnInChromium on
// 127.0.0.1: it redeems each code with the verifier of its state and
// keeps the ID token's acr and amr; /reset removes alice's factors (as
// `latchkey mfa reset` does).
type webauthnRP struct {
	f         *fixture
	conf      *oauth2.Config
	verifiers map[string]string
	mu        sync.Mutex
	logins    map[string][2]any // state -> {acr, amr}
	errs      []string
}

func (rp *webauthnRP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/cb":
		st := r.URL.Query().Get("state")
		tok, err := rp.conf.Exchange(r.Context(), r.URL.Query().Get("code"), oauth2.VerifierOption(rp.verifiers[st]))
		var claims struct {
			ACR string   `json:"acr"`
			AMR []string `json:"amr"`
		}
		if err == nil {
			raw, _ := tok.Extra("id_token").(string)
			var idt *oidc.IDToken
			if idt, err = rp.f.verifier("web").Verify(r.Context(), raw); err == nil {
				err = idt.Claims(&claims)
			}
		}
		rp.mu.Lock()
		defer rp.mu.Unlock()
		if err != nil {
			rp.errs = append(rp.errs, st+": "+err.Error())
			http.Error(w, "sign-in failed", 500)
			return
		}
		rp.logins[st] = [2]any{claims.ACR, claims.AMR}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><title>Example app</title><body style=\"font:16px system-ui;padding:2rem\"><h1>Example app</h1><p>Signed in: acr <code>%s</code>, amr <code>%v</code></p>", claims.ACR, claims.AMR)
	case "/reset":
		if _, err := rp.f.db.DeleteUserMFACredentials(r.Context(), "u-alice"); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Write([]byte("ok"))
	default:
		http.NotFound(w, r)
	}
}

// newWebAuthnRP serves a webauthnRP for f on 127.0.0.1, registered as
// the client "web"; authURL starts a sign-in with state (and acr_values
// acr when set).
func newWebAuthnRP(t *testing.T, f *fixture) (*webauthnRP, *httptest.Server, func(state, acr string) string) {
	t.Helper()
	rp := &webauthnRP{f: f, verifiers: map[string]string{}, logins: map[string][2]any{}}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	f.addClient(storage.Client{ID: "web", Name: "Example app", RedirectURIs: []string{srv.URL + "/cb"}}, "web-secret")
	rp.conf = f.rp("web", "web-secret", srv.URL+"/cb", "openid")
	return rp, srv, func(state, acr string) string {
		v := oauth2.GenerateVerifier()
		rp.verifiers[state] = v
		opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(v)}
		if acr != "" {
			opts = append(opts, oauth2.SetAuthURLParam("acr_values", acr))
		}
		return rp.conf.AuthCodeURL(state, opts...)
	}
}

// TestWebAuthnInChromium: the WebAuthn pages in a real browser with the
// DevTools virtual authenticators, Latchkey on http://localhost (RP ID
// localhost): register a passkey after a password login, sign out, sign
// in with the passkey alone; then a security key without discoverable
// credentials as a second factor. CSP stays strict: no console errors.
// Screenshots go to the artifacts directory (docs/img holds copies).
func TestWebAuthnInChromium(t *testing.T) {
	chromium := testenv.Program(t, "chromium")
	node := ensureNodePackage(t, chromiumDir)
	f := newWebAuthnFixture(t)
	rp, srv, authURL := newWebAuthnRP(t, f)
	shots := artifactsDir(t, "webauthn")
	in := map[string]string{
		"issuer": f.issuer, "username": "alice", "password": "correct horse",
		"registerURL": authURL("register", mfa.ACRPhr), "passkeyURL": authURL("passkey", ""), "autofillURL": authURL("autofill", ""),
		"enrollKeyURL": authURL("enroll-key", mfa.ACRPhr), "secondFactorURL": authURL("second-factor", mfa.ACRPhr),
		"callbackPrefix": srv.URL + "/cb?", "resetURL": srv.URL + "/reset", "screenshots": shots,
	}
	var res struct {
		Steps []struct {
			Name, URL string
		} `json:"steps"`
		ConsoleErrors      []string `json:"consoleErrors"`
		Shots              []string `json:"shots"`
		PasskeyCredentials []struct {
			Resident bool `json:"resident"`
		} `json:"passkeyCredentials"`
		KeyCredentials []struct {
			Resident bool `json:"resident"`
		} `json:"keyCredentials"`
	}
	runChromium(t, chromium, node, "webauthn-flow.mjs", in, &res)
	t.Logf("screenshots in %s: %d", shots, len(res.Shots))
	if len(res.ConsoleErrors) > 0 {
		t.Errorf("console errors (CSP?): %q", res.ConsoleErrors)
	}
	if len(res.PasskeyCredentials) != 1 || !res.PasskeyCredentials[0].Resident {
		t.Errorf("passkey authenticator holds %+v, want one discoverable credential", res.PasskeyCredentials)
	}
	if len(res.KeyCredentials) != 1 || res.KeyCredentials[0].Resident {
		t.Errorf("security key holds %+v, want one non-discoverable credential", res.KeyCredentials)
	}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if len(rp.errs) > 0 {
		t.Fatalf("relying party: %v", rp.errs)
	}
	for state, want := range map[string][]string{
		"register":      {"pwd", "hwk", "user", "mfa"},
		"passkey":       {"hwk", "user", "mfa"},
		"autofill":      {"hwk", "user", "mfa"},
		"enroll-key":    {"pwd", "hwk", "user", "mfa"},
		"second-factor": {"pwd", "hwk", "user", "mfa"},
	} {
		got, ok := rp.logins[state]
		if !ok {
			t.Errorf("%s: no sign-in", state)
			continue
		}
		if got[0] != mfa.ACRPhr || !slices.Equal(got[1].([]string), want) {
			t.Errorf("%s: acr %v amr %v, want %s %v", state, got[0], got[1], mfa.ACRPhr, want)
		}
	}
	if e := lastEvent(t, f, "user.login.succeeded"); e.Data["method"] != nil {
		t.Errorf("the last sign-in was with a password, got %v", e.Data)
	}
	var via []any
	for _, e := range f.events(t, "user.login.succeeded") {
		if e.Data["method"] == "passkey" {
			via = append(via, e.Data["via"])
		}
	}
	if !slices.Equal(via, []any{"button", "autofill"}) {
		t.Errorf("passkey sign-ins via %v, want the button, then autofill", via)
	}
	if e := lastEvent(t, f, "mfa.challenge.succeeded"); e.Data["factor"] != "webauthn" || e.Data["label"] != "YubiKey" {
		t.Errorf("mfa.challenge.succeeded %v", e.Data)
	}
}
