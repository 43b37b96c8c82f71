package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/latchkeyid/latchkey/api"
	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/storage"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// ACRMFA is the acr the console asks for unless RequireMFA is off
// (CONTRACTS.md "acr and amr").
const ACRMFA = "urn:latchkey:acr:mfa"

// acrRank orders the acr values the broker issues.
var acrRank = map[string]int{"urn:latchkey:acr:pwd": 1, ACRMFA: 2, "urn:latchkey:acr:phr": 3}

// Options configure the console.
type Options struct {
	// API runs the console's reads and changes (api.Server.Call).
	API *api.Server
	// Store is read for the dashboard's counts and charts.
	Store storage.Durable
	// Sessions counts active sessions for the dashboard.
	Sessions interface {
		CountActive(ctx context.Context) (int, error)
	}
	// Ephemeral keeps pending sign-ins and console sessions.
	Ephemeral storage.Ephemeral
	// Issuer is Latchkey's issuer; ClientID the built-in admin client;
	// RedirectURL its redirect URI (…/admin/callback on this listener).
	Issuer, ClientID, RedirectURL string
	// AdminGroup is the group an admin must be in.
	AdminGroup string
	// RequireMFA asks for and checks acr urn:latchkey:acr:mfa.
	RequireMFA bool
	// HTTPClient reaches the issuer (discovery, token, JWKS).
	HTTPClient *http.Client
	// ConnectorTypes are the connector types offered in the form, each
	// with its fields (FieldsOf the type's config struct).
	ConnectorTypes map[string][]Field
	// SecureCookies marks the console's cookies Secure (https).
	SecureCookies bool
	// SessionTTL is how long a console session lasts (default 8h).
	SessionTTL time.Duration
	Clock      clock.Clock
	Logger     *slog.Logger
}

// Console is the admin console handler.
type Console struct {
	o     Options
	pages map[string]*template.Template
	mux   *http.ServeMux

	mu       sync.Mutex
	provider *oidc.Provider
}

const (
	sessionCookie = "lk_console"
	loginCookie   = "lk_console_login"
	loginTTL      = 10 * time.Minute
)

// New returns the console.
func New(o Options) (*Console, error) {
	if o.API == nil || o.Store == nil || o.Ephemeral == nil || o.Issuer == "" || o.ClientID == "" || o.RedirectURL == "" || o.AdminGroup == "" {
		return nil, errors.New("console: API, Store, Ephemeral, Issuer, ClientID, RedirectURL and AdminGroup are required")
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 8 * time.Hour
	}
	c := &Console{o: o, pages: map[string]*template.Template{}, mux: http.NewServeMux()}
	funcs := template.FuncMap{
		"join": strings.Join,
		"fmtTime": func(t time.Time) string {
			if t.IsZero() {
				return "–"
			}
			return t.UTC().Format("2006-01-02 15:04 UTC")
		},
	}
	for _, p := range []string{"error", "dashboard", "clients", "connectors", "users", "user", "keys", "audit"} {
		t, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+p+".html")
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", p, err)
		}
		c.pages[p] = t
	}
	static, _ := fs.Sub(staticFS, "static")
	c.mux.Handle("GET /admin/static/", http.StripPrefix("/admin/static/", http.FileServerFS(static)))
	c.mux.HandleFunc("GET /admin", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/admin/", http.StatusSeeOther) })
	c.mux.HandleFunc("GET /admin/login", c.login)
	c.mux.HandleFunc("GET /admin/callback", c.callback)
	c.mux.Handle("POST /admin/logout", c.auth(c.logout))
	for pattern, h := range map[string]func(http.ResponseWriter, *http.Request, admin){
		"GET /admin/{$}":                         c.dashboard,
		"GET /admin/clients":                     c.clients,
		"POST /admin/clients":                    c.createClient,
		"POST /admin/clients/{id}/secret":        c.clientSecret,
		"POST /admin/clients/{id}/delete":        c.deleteClient,
		"GET /admin/connectors":                  c.connectors,
		"POST /admin/connectors":                 c.createConnector,
		"POST /admin/connectors/{id}/test":       c.testConnector,
		"POST /admin/connectors/{id}/delete":     c.deleteConnector,
		"POST /admin/connectors/{id}/disable":    c.connectorAction("disable", "disabled: it leaves the login page within seconds"),
		"POST /admin/connectors/{id}/enable":     c.connectorAction("enable", "enabled: it shows on the login page within seconds"),
		"GET /admin/users":                       c.users,
		"GET /admin/users/{id}":                  c.user,
		"POST /admin/users/{id}/disable":         c.userAction("disable", "disabled"),
		"POST /admin/users/{id}/enable":          c.userAction("enable", "enabled"),
		"POST /admin/users/{id}/mfa-reset":       c.userAction("mfa/reset", "second factors reset"),
		"POST /admin/users/{id}/sessions/revoke": c.revokeSessions,
		"GET /admin/keys":                        c.keys,
		"POST /admin/keys/rotate":                c.rotateKeys,
		"GET /admin/audit":                       c.audit,
	} {
		c.mux.Handle(pattern, c.auth(h))
	}
	c.mux.HandleFunc("/admin/", func(w http.ResponseWriter, r *http.Request) {
		c.errorPage(w, r, http.StatusNotFound, "There is no such page.")
	})
	return c, nil
}

// ServeHTTP serves the console with its security headers.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	c.mux.ServeHTTP(w, r)
}

// admin is a console session.
type admin struct {
	UserID string `json:"user_id"`
	Name   string `json:"name"`
	CSRF   string `json:"csrf"`
}

type adminKey struct{}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashed(prefix, v string) string {
	sum := sha256.Sum256([]byte(v))
	return prefix + hex.EncodeToString(sum[:])
}

func (c *Console) cookie(name, value, path string, maxAge time.Duration) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: path, HttpOnly: true, Secure: c.o.SecureCookies,
		SameSite: http.SameSiteLaxMode, MaxAge: int(maxAge / time.Second)}
}

// auth loads the console session (else: sign in) and, for a POST, checks
// the CSRF token.
func (c *Console) auth(next func(http.ResponseWriter, *http.Request, admin)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(sessionCookie)
		var a admin
		if err == nil {
			raw, gerr := c.o.Ephemeral.Get(r.Context(), hashed("console:session:", ck.Value))
			if gerr == nil && json.Unmarshal(raw, &a) == nil {
				err = nil
			} else {
				err = errors.New("no session")
			}
		}
		if err != nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/admin/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			c.errorPage(w, r, http.StatusForbidden, "Your console session has ended. Sign in again.")
			return
		}
		if r.Method == http.MethodPost {
			if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(a.CSRF)) != 1 {
				c.errorPage(w, r, http.StatusForbidden, "The form is stale or did not come from this console (CSRF check failed). Reload the page and try again.")
				return
			}
		}
		next(w, r, a)
	})
}

// page is what every template gets.
type page struct {
	Title, Active, Admin, CSRF, Flash, Error string
	Problems                                 []api.FieldProblem
	Data                                     any
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	var b strings.Builder
	if err := c.pages[name].ExecuteTemplate(&b, "layout", p); err != nil {
		c.o.Logger.ErrorContext(r.Context(), "console template", slog.String("page", name), slog.Any("error", err))
		http.Error(w, "the page could not be rendered; the server log has the cause", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

func (c *Console) errorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	c.render(w, r, status, "error", page{Title: http.StatusText(status), Data: msg})
}

// call runs an API request for the admin and decodes a 2xx answer into
// out; otherwise it returns the problem.
func (c *Console) call(ctx context.Context, a admin, method, path string, body any, out any) (*api.Problem, error) {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return nil, err
		}
	}
	status, resp := c.o.API.Call(ctx, "user:"+a.UserID, method, path, raw)
	if status >= 300 {
		var p api.Problem
		if err := json.Unmarshal(resp, &p); err != nil {
			return nil, fmt.Errorf("%s %s: %d", method, path, status)
		}
		if status >= 500 {
			return nil, fmt.Errorf("%s %s: %s", method, path, p.Detail)
		}
		return &p, nil
	}
	if out != nil && len(resp) > 0 {
		if err := json.Unmarshal(resp, out); err != nil {
			return nil, fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	return nil, nil
}

// fail renders the error page for an unexpected error.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	c.o.Logger.ErrorContext(r.Context(), "console", slog.String("path", r.URL.Path), slog.Any("error", err))
	c.errorPage(w, r, http.StatusInternalServerError, "Something failed on our side; the server log has the cause.")
}

func esc(s string) string { return url.PathEscape(s) }

func contains(list []string, v string) bool { return slices.Contains(list, v) }
