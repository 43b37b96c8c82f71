package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"

	"github.com/latchkeyid/latchkey/broker/keys"
	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/internal/ratelimit"
	"github.com/latchkeyid/latchkey/session"
	"github.com/latchkeyid/latchkey/storage"
)

// SigningKeys is what the API needs of the signing key manager.
type SigningKeys interface {
	List(ctx context.Context) ([]keys.KeyInfo, error)
	Rotate(ctx context.Context, force bool) (bool, error)
}

// Sessions lists and ends SSO sessions (the broker ends them, so clients
// are notified and session-bound refresh tokens revoked).
type Sessions interface {
	ListByUser(ctx context.Context, userID string) ([]session.Session, error)
	GetBySID(ctx context.Context, sid string) (session.Session, error)
	EndSession(ctx context.Context, sid, actor string) (bool, error)
	EndSessions(ctx context.Context, userID, actor string) (int, error)
}

// Clients validates client registration documents.
type Clients interface {
	// ParseClient validates doc (RFC 7591 metadata as JSON) exactly as a
	// client in the config file, with its defaults applied. It returns
	// the problems (paths are the document's keys) or the client
	// (ConfigManaged false, no secret).
	ParseClient(doc []byte) (storage.Client, []FieldProblem)
}

// Connectors validates, seals and tries connectors.
type Connectors interface {
	// ParseConnector validates doc ({id, type, name, config}) by the
	// connector's type, exactly as a `connectors:` entry of the config
	// file.
	ParseConnector(doc []byte) (storage.Connector, []FieldProblem)
	// InConfigFile reports whether the config file names the connector:
	// it is read-only here even before serve has synced it.
	InConfigFile(id string) bool
	// Seal encrypts the secrets in the connector's config.
	Seal(c storage.Connector) (storage.Connector, error)
	// Test opens the connector as the broker would (discovery, a bind):
	// nil when it works.
	Test(ctx context.Context, c storage.Connector) error
	// SecretKeys are the config keys that hold secrets: never shown.
	SecretKeys() []string
}

// Options configure the admin API.
type Options struct {
	Store      storage.Durable
	Clients    Clients
	Connectors Connectors
	Keys       SigningKeys
	Sessions   Sessions
	// HashPassword hashes a local user's password (argon2id).
	HashPassword func(ctx context.Context, password string) (string, error)
	// Limiter and RateLimit limit requests per API key; a nil Limiter
	// does not limit.
	Limiter   *ratelimit.Limiter
	RateLimit ratelimit.Rule
	// MaxBodyBytes bounds request bodies (default 1 MiB).
	MaxBodyBytes int64
	Clock        clock.Clock
	Logger       *slog.Logger
}

// Server is the admin API handler.
type Server struct {
	o     Options
	keys  Keys
	log   *slog.Logger
	clock clock.Clock
	mux   *http.ServeMux
}

// BasePath is where the API lives on the admin listener.
const BasePath = "/api/v1"

// New returns the admin API.
func New(o Options) (*Server, error) {
	if o.Store == nil || o.Clients == nil || o.Connectors == nil || o.Keys == nil || o.Sessions == nil || o.HashPassword == nil {
		return nil, errors.New("admin api: Store, Clients, Connectors, Keys, Sessions and HashPassword are required")
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	if o.Limiter != nil {
		if err := o.RateLimit.Validate(); err != nil {
			return nil, fmt.Errorf("admin api rate limit: %w", err)
		}
	}
	s := &Server{o: o, keys: Keys{Store: o.Store, Clock: o.Clock}, log: o.Logger, clock: o.Clock, mux: http.NewServeMux()}
	for _, rt := range s.routes() {
		s.mux.Handle(rt.Method+" "+BasePath+rt.Path, s.guard(rt))
	}
	s.mux.HandleFunc("GET "+BasePath+"/openapi.yaml", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(OpenAPI)
	})
	s.mux.HandleFunc(BasePath+"/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, newProblem(http.StatusNotFound, "not-found", "no such endpoint: see "+BasePath+"/openapi.yaml"))
	})
	return s, nil
}

// ServeHTTP serves the API; a method the path does not have is a 405
// problem with Allow.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	if _, pattern := s.mux.Handler(r); pattern == BasePath+"/" {
		var allow []string
		for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, p := s.mux.Handler(probe); p != BasePath+"/" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeProblem(w, r, newProblem(http.StatusMethodNotAllowed, "method", r.Method+" is not allowed here"))
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// caller is the authenticated key of a request.
type caller struct {
	key       storage.APIKey
	actorName string // set for in-process calls
}

func (c caller) actor() string {
	if c.actorName != "" {
		return c.actorName
	}
	return "admin:" + c.key.Prefix
}

// internalCall marks a request the console makes in process (Call).
type internalCall struct{ actor string }

type internalKey struct{}

// Call runs one API request in process for actor (the console's signed-in
// admin, "user:<id>"): the same handlers, validation and audit events as
// over HTTP, without an API key. It returns the status and the body.
func (s *Server) Call(ctx context.Context, actor, method, path string, body []byte) (int, []byte) {
	req, err := http.NewRequestWithContext(context.WithValue(ctx, internalKey{}, internalCall{actor: actor}), method, BasePath+path, bytes.NewReader(body))
	if err != nil {
		p, _ := json.Marshal(newProblem(http.StatusBadRequest, "invalid-request", "not a valid path"))
		return http.StatusBadRequest, p
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

type callerKey struct{}

func callerOf(ctx context.Context) caller {
	c, _ := ctx.Value(callerKey{}).(caller)
	return c
}

// guard authenticates the key, checks the route's scope and the rate
// limit, runs the handler and writes the audit event of the use.
func (s *Server) guard(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if in, ok := ctx.Value(internalKey{}).(internalCall); ok {
			// The console, in process, for an admin it signed in.
			r.Body = http.MaxBytesReader(w, r.Body, s.o.MaxBodyBytes)
			rec := &statusRecorder{ResponseWriter: w}
			rt.Handler(rec, r.WithContext(context.WithValue(ctx, callerKey{}, caller{actorName: in.actor})))
			return
		}
		token, ok := bearer(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey-admin"`)
			writeProblem(w, r, newProblem(http.StatusUnauthorized, "unauthorized", "send an API key: Authorization: Bearer lk_..."))
			return
		}
		key, prefix, reason, err := s.keys.authenticate(ctx, token)
		if errors.Is(err, errBadKey) {
			if prefix != "" {
				s.audit(ctx, r, storage.Event{Type: "admin.api.denied", Actor: "admin:" + prefix,
					Data: map[string]any{"route": rt.Method + " " + rt.Path, "reason": reason}})
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey-admin", error="invalid_token"`)
			writeProblem(w, r, newProblem(http.StatusUnauthorized, "unauthorized", "the API key is not valid (unknown, expired or revoked)"))
			return
		}
		if err != nil {
			s.unavailable(w, r, err)
			return
		}
		if !scopeAllows(key.Scopes, rt.Scope) {
			s.audit(ctx, r, storage.Event{Type: "admin.api.denied", Actor: "admin:" + key.Prefix,
				Data: map[string]any{"route": rt.Method + " " + rt.Path, "reason": "scope", "needs": rt.Scope}})
			writeProblem(w, r, newProblem(http.StatusForbidden, "forbidden", "this API key lacks the scope "+rt.Scope))
			return
		}
		if s.o.Limiter != nil {
			d, err := s.o.Limiter.Allow(ctx, s.o.RateLimit, "apikey:"+key.Prefix)
			if err != nil {
				s.unavailable(w, r, err)
				return
			}
			if !d.Allowed {
				w.Header().Set("Retry-After", strconv.Itoa(d.RetryAfterSeconds()))
				writeProblem(w, r, newProblem(http.StatusTooManyRequests, "rate-limited", "too many requests with this API key; retry later"))
				return
			}
		}
		now := s.clock.Now()
		if err := s.o.Store.TouchAPIKey(ctx, key.Prefix, now); err != nil {
			s.log.WarnContext(ctx, "record api key use", slog.String("prefix", key.Prefix), slog.Any("error", err))
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.o.MaxBodyBytes)
		rec := &statusRecorder{ResponseWriter: w}
		rt.Handler(rec, r.WithContext(context.WithValue(ctx, callerKey{}, caller{key: key})))
		s.audit(ctx, r, storage.Event{Type: "admin.api.request", Actor: "admin:" + key.Prefix,
			Data: map[string]any{"route": rt.Method + " " + rt.Path, "status": rec.status}})
	})
}

func (s *Server) audit(ctx context.Context, r *http.Request, e storage.Event) {
	e.UserAgent = r.UserAgent()
	if err := s.o.Store.AppendEvent(context.WithoutCancel(ctx), e); err != nil {
		s.log.WarnContext(ctx, "admin api audit event", slog.String("type", e.Type), slog.Any("error", err))
	}
}

func (s *Server) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	s.log.ErrorContext(r.Context(), "admin api: store unavailable", slog.Any("error", err))
	w.Header().Set("Retry-After", "5")
	writeProblem(w, r, newProblem(http.StatusServiceUnavailable, "unavailable", "a store is unavailable; retry later"))
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// readBody reads a JSON request body. It answers the problem itself and
// returns false when the body is not JSON, too large or not an object.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (ct != "application/json" && !strings.HasSuffix(ct, "+json")) {
		writeProblem(w, r, newProblem(http.StatusUnsupportedMediaType, "unsupported-type", "send the body as application/json"))
		return nil, false
	}
	b, err := io.ReadAll(r.Body)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		writeProblem(w, r, newProblem(http.StatusRequestEntityTooLarge, "too-large", fmt.Sprintf("the body is larger than %d bytes", tooLarge.Limit)))
		return nil, false
	}
	if err != nil {
		writeProblem(w, r, newProblem(http.StatusBadRequest, "invalid-request", "could not read the body"))
		return nil, false
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil || obj == nil {
		writeProblem(w, r, newProblem(http.StatusBadRequest, "invalid-request", "the body is not a JSON object"))
		return nil, false
	}
	return b, true
}

// invalid answers 422 with every field problem.
func invalid(w http.ResponseWriter, r *http.Request, probs []FieldProblem) {
	p := newProblem(http.StatusUnprocessableEntity, "validation", fmt.Sprintf("%d problem(s) with the request body", len(probs)))
	p.Errors = probs
	writeProblem(w, r, p)
}

// storeError answers the problem for a storage error: 404, 409, 409
// read-only, else 500.
func (s *Server) storeError(w http.ResponseWriter, r *http.Request, what string, err error) {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		writeProblem(w, r, newProblem(http.StatusNotFound, "not-found", "no "+what))
	case errors.Is(err, storage.ErrReadOnly):
		writeProblem(w, r, newProblem(http.StatusConflict, "read-only", what+" is managed by the config file: change it there"))
	case errors.Is(err, storage.ErrConflict):
		writeProblem(w, r, newProblem(http.StatusConflict, "conflict", what+" already exists"))
	default:
		s.serverError(w, r, err)
	}
}

func (s *Server) now() time.Time { return s.clock.Now() }
