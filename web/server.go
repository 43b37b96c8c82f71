package web

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/latchkeyid/latchkey/internal/clientip"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/web/i18n"
)

// JWKSource gives the prepared JWKS document (broker/keys.Manager).
type JWKSource interface {
	JWKS() []byte
}

// Check is one readiness probe: a store or dependency that must answer.
type Check struct {
	Name string
	Ping func(ctx context.Context) error
}

// Options configure the public handler.
type Options struct {
	Metadata broker.Metadata
	Keys     JWKSource
	// Broker serves the OIDC endpoints and login pages; nil serves only
	// health, discovery and keys.
	Broker       *broker.Broker
	Checks       []Check
	MaxBodyBytes int64         // default 1 MiB
	JWKSMaxAge   time.Duration // Cache-Control max-age of /keys; default 1h
	CheckTimeout time.Duration // per readiness check; default 2s
	HTTPS        bool          // served over https (behind a proxy): send HSTS
	// TrustedProxies may set X-Forwarded-For (http.trustedProxies); the
	// client IP in audit events and rate limits is resolved with them.
	TrustedProxies []netip.Prefix
	Logger         *slog.Logger
	Clock          clock.Clock
	Rand           io.Reader
	// Theme is the hosted pages' theme (config ui.theme, LoadTheme); nil
	// is the default theme. ClientThemes (ui.clients) are the themes of
	// some clients by client id, for the pages of their sign-ins.
	Theme        *Theme
	ClientThemes map[string]*Theme
}

// Server is the public http.Handler.
type Server struct {
	// base is the issuer's path ("" or "/auth"): basepath.go.
	base string
	// boundPages are the page templates bound to a language and theme
	// (pageKey -> *template.Template): pages.go boundPage.
	boundPages   sync.Map
	log          *slog.Logger
	clock        clock.Clock
	rand         io.Reader
	keys         JWKSource
	checks       []Check
	maxBody      int64
	jwksMaxAge   time.Duration
	checkTimeout time.Duration
	https        bool
	discovery    []byte
	broker       *broker.Broker
	pages        *pages
	mfaPages     *mfaPages
	linkPages    *linkPages
	waPages      *webauthnPages
	otpPage      *template.Template // otp.go
	accountPages *accountPages      // account.go
	registerPage *template.Template // register.go
	i18n         *i18n.Catalog      // locale.go
	theme        *Theme             // theme.go
	clientThemes clientThemes       // theme.go
	outage       outageState
	ips          clientip.Resolver
	handler      http.Handler
	factorPages  *accountFactorPages
}

// New builds the handler.
func New(o Options) (*Server, error) {
	if o.Keys == nil {
		return nil, errors.New("web: Options.Keys is required")
	}
	s := &Server{
		log: o.Logger, clock: o.Clock, rand: o.Rand, keys: o.Keys, checks: o.Checks,
		broker: o.Broker, ips: clientip.Resolver{Trusted: o.TrustedProxies}, maxBody: o.MaxBodyBytes, jwksMaxAge: o.JWKSMaxAge, checkTimeout: o.CheckTimeout, https: o.HTTPS,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.clock == nil {
		s.clock = clock.Real{}
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.maxBody <= 0 {
		s.maxBody = 1 << 20
	}
	if s.jwksMaxAge <= 0 {
		s.jwksMaxAge = time.Hour
	}
	if s.checkTimeout <= 0 {
		s.checkTimeout = 2 * time.Second
	}
	s.base = issuerBase(o.Metadata.Issuer)
	d, err := o.Metadata.JSON()
	if err != nil {
		return nil, err
	}
	s.discovery = d

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET "+broker.PathDiscoveryOIDC, s.serveDiscovery)
	mux.HandleFunc("GET "+broker.PathDiscoveryAS, s.serveDiscovery)
	mux.HandleFunc("GET "+broker.PathJWKS, s.serveJWKS)
	if s.broker != nil {
		s.theme = o.Theme // theme.go; its templates override ours
		p, err := s.parsePages()
		if err != nil {
			return nil, fmt.Errorf("web: parse templates: %w", err)
		}
		s.pages = p
		if s.i18n, err = i18n.New(); err != nil {
			return nil, fmt.Errorf("web: %w", err)
		}
		mux.HandleFunc("GET /language", s.switchLanguage) // locale.go
		if s.clientThemes, err = newClientThemes(o.ClientThemes); err != nil {
			return nil, fmt.Errorf("web: %w", err)
		}
		mux.HandleFunc("GET /theme/{name}", s.serveTheme) // theme.go
		mux.HandleFunc("GET /theme/{client}/{name}", s.serveClientTheme)
		mux.HandleFunc("GET "+broker.PathAuthorize, s.authorize)
		mux.HandleFunc("POST "+broker.PathAuthorize, s.authorize)
		mux.HandleFunc("GET /login", s.loginChooser) // federation.go
		mux.HandleFunc("POST /login/upstream", s.upstreamStart)
		mux.HandleFunc("GET "+broker.PathCallbackPrefix+"{connector}", s.upstreamCallback)
		mux.HandleFunc("POST "+broker.PathCallbackPrefix+"{connector}", s.upstreamCallbackPost)
		mux.HandleFunc("POST /login", s.loginSubmit)
		mux.HandleFunc("GET /consent", s.consentPage)
		mux.HandleFunc("POST /consent", s.consentSubmit)
		mux.HandleFunc("GET /select-account", s.selectAccountPage)
		mux.HandleFunc("POST /select-account", s.selectAccountSubmit)
		// web/saml.go: /saml/{connector}/metadata, acs and slo.
		s.registerSAML(mux)
		if err := s.registerMFA(mux); err != nil { // web/mfa.go
			return nil, fmt.Errorf("web: mfa pages: %w", err)
		}
		if err := s.registerLink(mux); err != nil { // web/link.go
			return nil, fmt.Errorf("web: link page: %w", err)
		}
		if err := s.registerWebAuthn(mux); err != nil { // web/webauthn.go
			return nil, fmt.Errorf("web: webauthn pages: %w", err)
		}
		if err := s.registerOTP(mux); err != nil { // web/otp.go
			return nil, fmt.Errorf("web: one-time code pages: %w", err)
		}
		if err := s.registerAccount(mux); err != nil { // web/account.go
			return nil, fmt.Errorf("web: account pages: %w", err)
		}
		mux.HandleFunc("GET "+broker.PathEndSession, s.logout)
		mux.HandleFunc("POST "+broker.PathEndSession, s.logout)
		mux.HandleFunc("POST "+broker.PathEndSession+"/confirm", s.logoutConfirm)
		mux.HandleFunc(broker.PathToken, s.token)
		mux.HandleFunc(broker.PathIntrospect, s.introspect)
		mux.HandleFunc(broker.PathRevoke, s.revoke)
		mux.HandleFunc("GET "+broker.PathUserinfo, s.userinfo)
		mux.HandleFunc("POST "+broker.PathUserinfo, s.userinfo)
		mux.Handle("GET /static/", http.FileServerFS(staticFS))
	}
	s.handler = s.withBase(s.chain(mux)) // basepath.go
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	io.WriteString(w, "ok\n")
}

// readyz pings every check concurrently. The answer names each check as
// "ok" or "unavailable"; the cause goes to the log only (it may hold a
// host name or driver detail).
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	type result struct {
		name string
		err  error
	}
	results := make([]result, len(s.checks))
	var wg sync.WaitGroup
	for i, c := range s.checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(r.Context(), s.checkTimeout)
			defer cancel()
			results[i] = result{c.Name, c.Ping(ctx)}
		}()
	}
	wg.Wait()
	body := struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}{Status: "ok", Checks: map[string]string{}}
	code := http.StatusOK
	for _, res := range results {
		if res.err != nil {
			s.log.WarnContext(r.Context(), "readiness check failed", slog.String("check", res.name), slog.Any("error", res.err))
			body.Checks[res.name] = "unavailable"
			body.Status = "unavailable"
			code = http.StatusServiceUnavailable
		} else {
			body.Checks[res.name] = "ok"
		}
	}
	writeJSON(w, code, body, "no-store")
}

func (s *Server) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=3600")
	w.Write(s.discovery)
}

func (s *Server) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/jwk-set+json")
	h.Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(s.jwksMaxAge.Seconds())))
	w.Write(s.keys.JWKS())
}

func writeJSON(w http.ResponseWriter, code int, v any, cacheControl string) {
	b, err := json.Marshal(v)
	if err != nil {
		writeServerError(w, "")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if cacheControl != "" {
		h.Set("Cache-Control", cacheControl)
	}
	w.WriteHeader(code)
	w.Write(b)
}
