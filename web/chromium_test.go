package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/storage"
)

// chromiumDir holds the npm package (playwright-core, pinned) and the
// script that drives Chromium.
const chromiumDir = "testdata/chromium"

// chromiumRP is a relying party on 127.0.0.1 (another site than Latchkey
// on localhost): it redeems the code, starts RP-initiated logout with an
// auto-submitting cross-site form POST, and records its front-channel
// logout and post-logout requests.
type chromiumRP struct {
	srv      *httptest.Server
	conf     *oauth2.Config
	verifier string
	mu       sync.Mutex
	idToken  string
	fc       []url.Values
	bye      []url.Values
	errs     []string
}

var startLogoutPage = template.Must(template.New("").Parse(`<!doctype html><html><body>
<form method="post" action="{{.Action}}">
<input type="hidden" name="id_token_hint" value="{{.Hint}}">
<input type="hidden" name="post_logout_redirect_uri" value="{{.Redirect}}">
<input type="hidden" name="state" value="st-chromium">
</form><script>document.forms[0].submit()</script></body></html>`))

func (rp *chromiumRP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/cb":
		tok, err := rp.conf.Exchange(r.Context(), r.URL.Query().Get("code"), oauth2.VerifierOption(rp.verifier))
		rp.mu.Lock()
		defer rp.mu.Unlock()
		if err != nil {
			rp.errs = append(rp.errs, "exchange: "+err.Error())
			http.Error(w, "exchange failed", 500)
			return
		}
		rp.idToken, _ = tok.Extra("id_token").(string)
		w.Write([]byte("signed in"))
	case "/start-logout":
		rp.mu.Lock()
		hint := rp.idToken
		rp.mu.Unlock()
		startLogoutPage.Execute(w, map[string]string{"Action": strings.Replace(rp.conf.Endpoint.AuthURL, "/authorize", "/logout", 1),
			"Hint": hint, "Redirect": rp.srv.URL + "/bye"})
	case "/fc":
		rp.mu.Lock()
		rp.fc = append(rp.fc, r.URL.Query())
		rp.mu.Unlock()
		w.Write([]byte("<!doctype html><p>signed out of the RP</p>"))
	case "/bye":
		rp.mu.Lock()
		rp.bye = append(rp.bye, r.URL.Query())
		rp.mu.Unlock()
		w.Write([]byte("bye"))
	default:
		http.NotFound(w, r)
	}
}

// TestLogoutInChromium: in a real browser, with Latchkey on localhost and
// the relying party on 127.0.0.1 (two sites): the RP's cross-site form
// POST to /logout still ends the session (the POST is resumed as a GET on
// our origin, where the SameSite=Lax cookie is sent), the signed-out page
// loads the RP's front-channel logout URL in a frame (CSP frame-src lets
// it), then its script (CSP hash) continues to post_logout_redirect_uri
// with the state.
func TestLogoutInChromium(t *testing.T) {
	chromium := testenv.Program(t, "chromium")
	node := ensureNodePackage(t, chromiumDir)
	f := newFixtureOn(t, backends{localhost: true})
	f.addUser(aliceRecord, alicePassword)
	rp := &chromiumRP{verifier: oauth2.GenerateVerifier()}
	rp.srv = httptest.NewServer(rp)
	t.Cleanup(rp.srv.Close)
	f.addClient(storage.Client{ID: "rp", RedirectURIs: []string{rp.srv.URL + "/cb"}, PostLogoutRedirectURIs: []string{rp.srv.URL + "/bye"},
		FrontchannelLogoutURI: rp.srv.URL + "/fc"}, "rp-secret")
	rp.conf = f.rp("rp", "rp-secret", rp.srv.URL+"/cb", "openid")

	var res struct {
		URLs          []string `json:"urls"`
		LogoutMillis  int      `json:"logoutMillis"`
		ConsoleErrors []string `json:"consoleErrors"`
	}
	runChromium(t, chromium, node, "logout-flow.mjs", map[string]string{
		"authorizeURL": rp.conf.AuthCodeURL("st", oauth2.S256ChallengeOption(rp.verifier)),
		"username":     "alice", "password": alicePassword,
		"callbackPrefix": rp.srv.URL + "/cb?", "startLogoutURL": rp.srv.URL + "/start-logout", "byePrefix": rp.srv.URL + "/bye",
	}, &res)
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if len(rp.errs) > 0 {
		t.Fatalf("relying party: %v", rp.errs)
	}
	if len(res.URLs) != 2 || res.URLs[1] != rp.srv.URL+"/bye?state=st-chromium" {
		t.Errorf("browser went to %v", res.URLs)
	}
	// The page continues when its frames have loaded, not on the 5 s
	// fallback.
	if res.LogoutMillis >= 4500 {
		t.Errorf("the signed-out page took %d ms to continue: it waited for the fallback", res.LogoutMillis)
	}
	if len(res.ConsoleErrors) > 0 {
		t.Errorf("console errors (CSP?): %q", res.ConsoleErrors)
	}
	_, claims := decodeJWT(t, rp.idToken)
	want := url.Values{"iss": {f.issuer}, "sid": {claims["sid"].(string)}}
	if len(rp.fc) != 1 || rp.fc[0].Encode() != want.Encode() {
		t.Errorf("front-channel requests %v, want one with %v", rp.fc, want)
	}
	ended := f.events(t, "session.ended")
	if len(ended) != 1 || ended[0].Data["reason"] != "logout" || ended[0].Data["sid"] != claims["sid"] {
		t.Errorf("session.ended = %+v", ended)
	}
}

// runChromium runs a flow script of testdata/chromium (browser.mjs) with
// in as its JSON input (bounded to 120 s) and decodes its output into out.
func runChromium(t *testing.T, chromium, node, script string, in, out any) {
	t.Helper()
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Dir = chromiumDir
	cmd.Env = append(cmd.Environ(), "LATCHKEY_CHROMIUM="+chromium)
	cmd.Stdin = bytes.NewReader(data)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %s: %v\n%s\n%s", script, err, stdout, stderr.String())
	}
	if err := json.Unmarshal(stdout, out); err != nil {
		t.Fatalf("chromium %s output %q: %v", script, stdout, err)
	}
}
