package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/latchkeyid/latchkey/web/i18n"
)

func TestTheme(t *testing.T) {
	if _, err := LoadTheme(fstest.MapFS{"readme.txt": {Data: []byte("x")}}); err == nil || !strings.Contains(err.Error(), "none of theme.css") {
		t.Fatalf("empty folder: %v", err)
	}
	if _, err := LoadTheme(fstest.MapFS{"theme.css": {Data: make([]byte, maxThemeFile+1)}}); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("big file: %v", err)
	}
	th, err := LoadTheme(fstest.MapFS{
		"theme.css":   {Data: []byte(":root { --accent: #8a2be2; }")},
		"logo.svg":    {Data: []byte("<svg xmlns='http://www.w3.org/2000/svg'/>")},
		"favicon.png": {Data: []byte("\x89PNG")},
		"other.js":    {Data: []byte("alert(1)")},
	})
	if err != nil {
		t.Fatal(err)
	}
	cat, err := i18n.New()
	if err != nil {
		t.Fatal(err)
	}
	p, err := (&Server{}).parsePages()
	if err != nil {
		t.Fatal(err)
	}
	render := func(s *Server) string {
		w := httptest.NewRecorder()
		s.render(w, httptest.NewRequest(http.MethodGet, "/logout", nil), http.StatusOK, p.signedOut, pageCSP, map[string]any{"Title": "Signed out", "Done": struct {
			ClientName, Redirect string
			FrontChannel         []string
		}{}})
		return w.Body.String()
	}
	themed := render(&Server{i18n: cat, theme: th})
	for _, want := range []string{
		`<link rel="stylesheet" href="/static/latchkey.css">` + "\n" + `<link rel="stylesheet" href="/theme/theme.css">`,
		`<link rel="icon" href="/theme/favicon.png">`, `<img class="logo" src="/theme/logo.svg" alt="">`,
	} {
		if !strings.Contains(themed, want) {
			t.Errorf("themed page lacks %q:\n%s", want, themed)
		}
	}
	if plain := render(&Server{i18n: cat}); strings.Contains(plain, "/theme/") {
		t.Errorf("default theme page refers to /theme/:\n%s", plain)
	}

	s := &Server{theme: th}
	for _, tc := range []struct {
		name, ctype string
		status      int
	}{
		{"theme.css", "text/css; charset=utf-8", 200},
		{"logo.svg", "image/svg+xml", 200},
		{"other.js", "", 404},
		{"logo.png", "", 404},
	} {
		r := httptest.NewRequest(http.MethodGet, "/theme/"+tc.name, nil)
		r.SetPathValue("name", tc.name)
		w := httptest.NewRecorder()
		s.serveTheme(w, r)
		if w.Code != tc.status || (tc.status == 200 && (w.Header().Get("Content-Type") != tc.ctype || !strings.Contains(w.Header().Get("Content-Security-Policy"), "sandbox"))) {
			t.Errorf("%s: status %d, headers %v", tc.name, w.Code, w.Header())
		}
	}
}

func TestThemeTemplateOverrides(t *testing.T) {
	if _, err := LoadTheme(fstest.MapFS{"templates/nope.html": {Data: []byte("x")}}); err == nil || !strings.Contains(err.Error(), "templates/nope.html replaces no template") {
		t.Fatalf("unknown template: %v", err)
	}
	th, err := LoadTheme(fstest.MapFS{"templates/error.html": {Data: []byte(`{{template "head" .}}<h1 class="brand">{{t .Title}}</h1><p>{{.Message}}</p><p>Call the Acme help desk.</p>{{template "foot" .}}`)}})
	if err != nil {
		t.Fatal(err)
	}
	cat, err := i18n.New()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{i18n: cat, theme: th}
	p, err := s.parsePages()
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/login?req=gone", nil)
	r.Header.Set("Accept-Language", "fr")
	w := httptest.NewRecorder()
	s.render(w, r, http.StatusBadRequest, p.errorPage, pageCSP, map[string]any{"Title": "Invalid request", "Message": "<b>bad</b>"})
	page := w.Body.String()
	for _, want := range []string{`<html lang="fr">`, `<h1 class="brand">Requête non valide</h1>`, "<p>&lt;b&gt;bad&lt;/b&gt;</p>", "Call the Acme help desk.", `<nav class="languages"`} {
		if !strings.Contains(page, want) {
			t.Errorf("overridden error page lacks %q:\n%s", want, page)
		}
	}
	broken, err := LoadTheme(fstest.MapFS{"templates/login.html": {Data: []byte(`{{template "head" .}}{{if}}`)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&Server{theme: broken}).parsePages(); err == nil || !strings.Contains(err.Error(), "login.html") {
		t.Errorf("broken override: %v", err)
	}
}

func TestClientThemes(t *testing.T) {
	load := func(css string) *Theme {
		th, err := LoadTheme(fstest.MapFS{"theme.css": {Data: []byte(css)}, "logo.png": {Data: []byte("\x89PNG" + css)}})
		if err != nil {
			t.Fatal(err)
		}
		return th
	}
	server, acme, beta := load("server"), load("acme"), load("beta")
	ct, err := newClientThemes(map[string]*Theme{"beta": beta, "acme": acme})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{theme: server, clientThemes: ct}
	for _, tc := range []struct {
		client string
		want   theme
	}{
		{"acme", theme{css: "/theme/c0/theme.css", logo: "/theme/c0/logo.png"}},
		{"beta", theme{css: "/theme/c1/theme.css", logo: "/theme/c1/logo.png"}},
		{"other", theme{css: "/theme/theme.css", logo: "/theme/logo.png"}},
		{"", theme{css: "/theme/theme.css", logo: "/theme/logo.png"}},
	} {
		if got := s.themeFor(tc.client); got != tc.want {
			t.Errorf("themeFor(%q) = %+v, want %+v", tc.client, got, tc.want)
		}
	}
	if got := (&Server{clientThemes: ct}).themeFor("other"); got != (theme{}) {
		t.Errorf("no server theme: %+v", got)
	}
	for _, tc := range []struct {
		client, name, body string
		status             int
	}{
		{"c0", "theme.css", "acme", 200},
		{"c1", "theme.css", "beta", 200},
		{"c2", "theme.css", "", 404},
		{"0", "theme.css", "", 404},
		{"c-1", "theme.css", "", 404},
		{"c0", "favicon.ico", "", 404},
	} {
		r := httptest.NewRequest(http.MethodGet, "/theme/"+tc.client+"/"+tc.name, nil)
		r.SetPathValue("client", tc.client)
		r.SetPathValue("name", tc.name)
		w := httptest.NewRecorder()
		s.serveClientTheme(w, r)
		if w.Code != tc.status || (tc.status == 200 && w.Body.String() != tc.body) {
			t.Errorf("%s/%s: %d %q", tc.client, tc.name, w.Code, w.Body.String())
		}
	}
	withTemplates, err := LoadTheme(fstest.MapFS{"templates/login.html": {Data: []byte("x")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newClientThemes(map[string]*Theme{"acme": withTemplates}); err == nil || !strings.Contains(err.Error(), `client "acme": template overrides`) {
		t.Errorf("client theme with templates: %v", err)
	}
}
