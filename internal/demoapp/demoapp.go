package demoapp

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Options configure the demo app.
type Options struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	// BaseURL is where the browser reaches the app; the redirect URI is
	// BaseURL + "/callback".
	BaseURL string
	Scopes  []string
	Logger  *slog.Logger
	// HTTPClient talks to the issuer (nil: a client with a 10 s timeout).
	HTTPClient *http.Client
}

// App is the demo relying party's http.Handler.
type App struct {
	o    Options
	log  *slog.Logger
	http *http.Client
	mux  *http.ServeMux

	mu       sync.Mutex
	provider *oidc.Provider
	sessions map[string]signedIn
}

type signedIn struct {
	IDTokenClaims map[string]any
	UserInfo      map[string]any
	AccessToken   string
	RefreshToken  bool
	At            time.Time
}

// pending is kept in a short-lived cookie between /login and /callback.
type pending struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
}

// New returns the demo app.
func New(o Options) *App {
	if len(o.Scopes) == 0 {
		o.Scopes = []string{oidc.ScopeOpenID, "profile", "email", "groups"}
	}
	a := &App{o: o, log: o.Logger, http: o.HTTPClient, sessions: map[string]signedIn{}}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.http == nil {
		a.http = &http.Client{Timeout: 10 * time.Second}
	}
	a.mux = http.NewServeMux()
	a.mux.HandleFunc("GET /{$}", a.home)
	a.mux.HandleFunc("GET /login", a.login)
	a.mux.HandleFunc("GET /callback", a.callback)
	a.mux.HandleFunc("POST /logout", a.logout)
	return a
}

func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	a.mux.ServeHTTP(w, r)
}

// oidcProvider discovers the issuer on first use (Latchkey may start after
// the demo app).
func (a *App) oidcProvider(ctx context.Context) (*oidc.Provider, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.provider != nil {
		return a.provider, nil
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, a.http), a.o.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", a.o.Issuer, err)
	}
	a.provider = p
	return p, nil
}

func (a *App) oauthConfig(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{
		ClientID: a.o.ClientID, ClientSecret: a.o.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: strings.TrimSuffix(a.o.BaseURL, "/") + "/callback", Scopes: a.o.Scopes,
	}
}

func random() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (a *App) login(w http.ResponseWriter, r *http.Request) {
	p, err := a.oidcProvider(r.Context())
	if err != nil {
		a.page(w, http.StatusBadGateway, view{Error: "Latchkey is not reachable at " + a.o.Issuer + ". Is `latchkey serve` running?"})
		a.log.Warn("discovery failed", slog.Any("error", err))
		return
	}
	pd := pending{State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier()}
	b, _ := json.Marshal(pd)
	http.SetCookie(w, &http.Cookie{Name: "demo_login", Value: base64.RawURLEncoding.EncodeToString(b), Path: "/",
		MaxAge: 600, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	u := a.oauthConfig(p).AuthCodeURL(pd.State, oauth2.S256ChallengeOption(pd.Verifier), oidc.Nonce(pd.Nonce))
	http.Redirect(w, r, u, http.StatusFound)
}

func (a *App) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		a.page(w, http.StatusBadRequest, view{Error: "Latchkey answered " + e + ": " + q.Get("error_description")})
		return
	}
	c, err := r.Cookie("demo_login")
	var pd pending
	if err == nil {
		if b, derr := base64.RawURLEncoding.DecodeString(c.Value); derr == nil {
			err = json.Unmarshal(b, &pd)
		} else {
			err = derr
		}
	}
	if err != nil || pd.State == "" || q.Get("state") != pd.State {
		a.page(w, http.StatusBadRequest, view{Error: "This sign-in was not started here (state mismatch). Start again."})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: "demo_login", Path: "/", MaxAge: -1})
	p, err := a.oidcProvider(r.Context())
	if err != nil {
		a.page(w, http.StatusBadGateway, view{Error: "Latchkey is not reachable."})
		return
	}
	if iss := q.Get("iss"); iss != "" && iss != a.o.Issuer {
		a.page(w, http.StatusBadRequest, view{Error: "The response came from another issuer."})
		return
	}
	ctx := oidc.ClientContext(r.Context(), a.http)
	tok, err := a.oauthConfig(p).Exchange(ctx, q.Get("code"), oauth2.VerifierOption(pd.Verifier))
	if err != nil {
		a.log.Warn("code exchange failed", slog.Any("error", err))
		a.page(w, http.StatusBadGateway, view{Error: "The code exchange failed; see the demo app's log."})
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.Verifier(&oidc.Config{ClientID: a.o.ClientID}).Verify(ctx, raw)
	if err != nil || idt.Nonce != pd.Nonce {
		a.log.Warn("ID token rejected", slog.Any("error", err))
		a.page(w, http.StatusBadGateway, view{Error: "The ID token did not verify."})
		return
	}
	var claims map[string]any
	_ = idt.Claims(&claims)
	var uiClaims map[string]any
	if ui, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil {
		_ = ui.Claims(&uiClaims)
	} else {
		uiClaims = map[string]any{"error": err.Error()}
	}
	sid := random()
	a.mu.Lock()
	a.sessions[sid] = signedIn{IDTokenClaims: claims, UserInfo: uiClaims, AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken != "", At: time.Now()}
	a.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: "demo_session", Value: sid, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (a *App) current(r *http.Request) (signedIn, bool) {
	c, err := r.Cookie("demo_session")
	if err != nil {
		return signedIn{}, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.sessions[c.Value]
	return s, ok
}

func (a *App) home(w http.ResponseWriter, r *http.Request) {
	s, ok := a.current(r)
	if !ok {
		a.page(w, http.StatusOK, view{Issuer: a.o.Issuer})
		return
	}
	idj, _ := json.MarshalIndent(s.IDTokenClaims, "", "  ")
	uij, _ := json.MarshalIndent(s.UserInfo, "", "  ")
	name, _ := s.IDTokenClaims["preferred_username"].(string)
	a.page(w, http.StatusOK, view{Issuer: a.o.Issuer, SignedIn: true, Name: name, IDToken: string(idj), UserInfo: string(uij)})
}

func (a *App) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie("demo_session"); err == nil {
		a.mu.Lock()
		delete(a.sessions, c.Value)
		a.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: "demo_session", Path: "/", MaxAge: -1})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

type view struct {
	Issuer, Name, IDToken, UserInfo, Error string
	SignedIn                               bool
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Latchkey demo app</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#1b1f24}
pre{background:#f4f6f9;padding:1rem;border-radius:8px;overflow:auto}
a.button,button{display:inline-block;padding:.6rem 1.2rem;border-radius:8px;border:0;background:#2456d6;color:#fff;font:inherit;font-weight:600;text-decoration:none;cursor:pointer}
.error{color:#b3261e;font-weight:600}
</style></head><body>
<h1>Latchkey demo app</h1>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p><p><a href="/">Back</a></p>
{{else if .SignedIn}}<p>Signed in as <strong>{{.Name}}</strong>.</p>
<h2>ID token claims</h2><pre id="id-token">{{.IDToken}}</pre>
<h2>Userinfo</h2><pre id="userinfo">{{.UserInfo}}</pre>
<form method="post" action="/logout"><button type="submit">Sign out</button></form>
{{else}}<p>A relying party that signs you in through Latchkey at <code>{{.Issuer}}</code> with the authorization code flow and PKCE.</p>
<p><a class="button" href="/login">Sign in with Latchkey</a></p>{{end}}
</body></html>`))

func (a *App) page(w http.ResponseWriter, status int, v view) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := pageTmpl.Execute(w, v); err != nil {
		a.log.Error("render", slog.Any("error", err))
	}
}
