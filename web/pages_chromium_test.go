package web_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/mfa"
	"github.com/latchkeyid/latchkey/storage"
)

// TestPagesInChromium visits the hosted pages (login in English and
// German, consent, account selection, second-factor enrollment, error,
// logout confirmation, signed out) at 390 px and 1280 px, and in dark mode
// at 1280 px, screenshots each (light) into artifactsDir("pages") and
// fails on any serious or critical axe-core violation. With
// LATCHKEY_UPDATE_DOCS=1 the screenshots also replace docs/img/pages-*.png.
func TestPagesInChromium(t *testing.T) {
	chromium := testenv.Program(t, "chromium")
	node := ensureNodePackage(t, chromiumDir)
	f := newFixtureOn(t, backends{localhost: true})
	f.addUser(aliceRecord, alicePassword)
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("signed in")) }))
	t.Cleanup(rp.Close)
	f.addClient(storage.Client{ID: "third", Name: "Photo Prints", RedirectURIs: []string{rp.URL + "/cb"}, FirstParty: ptr(false)}, "third-secret")
	f.addClient(storage.Client{ID: "app", Name: "Payroll", RedirectURIs: []string{rp.URL + "/cb"}}, "app-secret")
	third := f.rp("third", "third-secret", rp.URL+"/cb", "openid", "profile", "email")
	app := f.rp("app", "app-secret", rp.URL+"/cb", "openid")
	dir := artifactsDir(t, "pages")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}

	var res struct {
		URLs  []string `json:"urls"`
		Pages []struct {
			Name, URL, Lang string
		} `json:"pages"`
		Violations    []string `json:"violations"`
		AxeRuns       int      `json:"axeRuns"`
		ConsoleErrors []string `json:"consoleErrors"`
	}
	runChromium(t, chromium, node, "pages-flow.mjs", map[string]string{
		"consentURL": third.AuthCodeURL("s1", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())),
		"mfaURL":     app.AuthCodeURL("s2", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("acr_values", mfa.ACRMFA)),
		"errorURL":   f.issuer + "/login?req=no-such-request",
		"logoutURL":  f.issuer + "/logout",
		"selectURL":  app.AuthCodeURL("s3", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("prompt", "select_account")),
		"username":   "alice", "password": alicePassword, "shotDir": dir,
	}, &res)

	paths := map[string]string{"login": "/login", "login-de": "/login", "consent": "/consent", "select-account": "/select-account",
		"mfa-enroll": "/mfa/enroll", "error": "/login", "logout-confirm": "/logout", "signed-out": "/logout/confirm"}
	if len(res.Pages) != len(paths) {
		t.Errorf("visited %+v", res.Pages)
	}
	for _, p := range res.Pages {
		lang := "en"
		if p.Name == "login-de" {
			lang = "de"
		}
		if p.Lang != lang || !strings.HasPrefix(p.URL, f.issuer+paths[p.Name]) {
			t.Errorf("page %s: lang %q at %s", p.Name, p.Lang, p.URL)
		}
	}
	if len(res.URLs) != 1 || !strings.HasPrefix(res.URLs[0], rp.URL+"/cb?code=") {
		t.Errorf("consent did not return to the app: %v", res.URLs)
	}
	for _, v := range res.Violations {
		t.Errorf("axe: %s", v)
	}
	for _, e := range res.ConsoleErrors {
		if e != "Failed to load resource: the server responded with a status of 400 (Bad Request) ("+f.issuer+"/login?req=no-such-request)" {
			t.Errorf("console error: %s", e)
		}
	}
	if res.AxeRuns != 3*len(paths) {
		t.Errorf("axe ran %d times, want %d", res.AxeRuns, 3*len(paths))
	}
	if os.Getenv("LATCHKEY_UPDATE_DOCS") == "1" {
		shots, _ := filepath.Glob(filepath.Join(dir, "pages-*.png"))
		for _, s := range shots {
			data, err := os.ReadFile(s)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join("..", "docs", "img", filepath.Base(s)), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
