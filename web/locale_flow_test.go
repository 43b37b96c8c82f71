package web_test

import (
	"html"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"

	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/storage"
	"github.com/latchkeyid/latchkey/web"
)

// TestLanguageThroughAFlow: ui_locales picks the language of the login
// page, the switcher overrides it for that request, the error page after
// a wrong password keeps it, and the next request's ui_locales wins again.
func TestLanguageThroughAFlow(t *testing.T) {
	f := newAppFixture(t)
	conf := f.rp("app", appSecret, appCB, "openid")
	b := f.browser()
	authURL := func(locales string) string {
		return conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("ui_locales", locales))
	}
	resp, page := b.get(authURL("tlh de-AT fr"))
	if resp.StatusCode != 200 || !strings.Contains(page, `<html lang="de">`) || !strings.Contains(page, `<label for="password">Passwort</label>`) {
		t.Fatalf("login page not in German: %d\n%s", resp.StatusCode, page)
	}
	if !strings.Contains(page, "um mit <strong>The App</strong> fortzufahren") {
		t.Errorf("client name missing from the German text:\n%s", page)
	}
	m := regexp.MustCompile(`href="(/language\?lang=ja&amp;return=[^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no switcher link to ja:\n%s", page)
	}
	resp, page = b.get(f.issuer + html.UnescapeString(m[1]))
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/login" || !strings.Contains(page, `<html lang="ja">`) {
		t.Fatalf("switcher: %d %s\n%s", resp.StatusCode, resp.Request.URL, page)
	}
	_, page = b.submitLogin(hidden(t, page), "alice", "wrong password")
	if !strings.Contains(page, `<html lang="ja">`) || !strings.Contains(page, "ユーザー名またはパスワードが正しくありません。") {
		t.Errorf("failed login not in Japanese:\n%s", page)
	}
	resp, page = b.get(authURL("es"))
	if resp.StatusCode != 200 || !strings.Contains(page, `<html lang="es">`) {
		t.Errorf("next request's ui_locales=es lost to the switcher cookie:\n%s", page)
	}
	resp, page = b.get(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if resp.StatusCode != 200 || !strings.Contains(page, `<html lang="ja">`) {
		t.Errorf("without ui_locales the switcher's choice stays:\n%s", page)
	}
}

// TestClientThemeThroughAFlow: the pages of a sign-in for a client with
// its own theme (ui.clients) use it; other clients' pages the server's.
func TestClientThemeThroughAFlow(t *testing.T) {
	load := func(css string) *web.Theme {
		th, err := web.LoadTheme(fstest.MapFS{"theme.css": {Data: []byte(css)}})
		if err != nil {
			t.Fatal(err)
		}
		return th
	}
	f := newFixtureOn(t, backends{web: func(o *web.Options) {
		o.Theme = load(":root{--accent:#000}")
		o.ClientThemes = map[string]*web.Theme{"acme": load(":root{--accent:#8a2be2}")}
	}})
	f.addUser(aliceRecord, alicePassword)
	f.addClient(storage.Client{ID: "acme", Name: "Acme", RedirectURIs: []string{appCB}}, appSecret)
	f.addClient(storage.Client{ID: "app", Name: "The App", RedirectURIs: []string{appCB}}, appSecret)
	for client, css := range map[string]string{"acme": "/theme/c0/theme.css", "app": "/theme/theme.css"} {
		b := f.browser()
		conf := f.rp(client, appSecret, appCB, "openid")
		resp, page := b.get(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if resp.StatusCode != 200 || !strings.Contains(page, `<link rel="stylesheet" href="`+css+`">`) {
			t.Errorf("%s: login page without %s:\n%s", client, css, page)
		}
		resp, body := b.get(f.issuer + css)
		if resp.StatusCode != 200 || !strings.Contains(body, "--accent") {
			t.Errorf("%s: %d %q", css, resp.StatusCode, body)
		}
	}
}
