package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/internal/logging"
)

type staticKeys []byte

func (k staticKeys) JWKS() []byte { return k }

func newTestServer(t *testing.T, checks []Check, logs io.Writer) *Server {
	t.Helper()
	md, err := broker.NewMetadata("http://localhost:5556", []string{"RS256", "ES256"})
	if err != nil {
		t.Fatal(err)
	}
	if logs == nil {
		logs = io.Discard
	}
	log, err := logging.New(logs, "json", "debug")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{
		Metadata: md, Keys: staticKeys(`{"keys":[]}`), Checks: checks,
		MaxBodyBytes: 16, JWKSMaxAge: 30 * time.Minute, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func assertSecurityHeaders(t *testing.T, h http.Header) {
	t.Helper()
	want := map[string]string{
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"Content-Security-Policy": DefaultCSP,
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if len(h.Get("X-Request-Id")) != 32 {
		t.Errorf("X-Request-Id = %q, want 32 hex chars", h.Get("X-Request-Id"))
	}
}

func TestRoutes(t *testing.T) {
	s := newTestServer(t, nil, nil)
	tests := []struct {
		name, method, path string
		wantStatus         int
		wantType           string
		wantCache          string
		wantBody           string
		wantAllow          string
	}{
		{"healthz", "GET", "/healthz", 200, "text/plain; charset=utf-8", "no-store", "ok\n", ""},
		{"jwks", "GET", "/keys", 200, "application/jwk-set+json", "public, max-age=1800", `{"keys":[]}`, ""},
		{"discovery oidc", "GET", "/.well-known/openid-configuration", 200, "application/json", "public, max-age=3600", "", ""},
		{"discovery rfc8414", "GET", "/.well-known/oauth-authorization-server", 200, "application/json", "public, max-age=3600", "", ""},
		{"unknown path", "GET", "/nope", 404, "text/plain; charset=utf-8", "", "404 page not found\n", ""},
		{"wrong method", "POST", "/keys", 405, "text/plain; charset=utf-8", "", "", "GET, HEAD"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			if rec.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d", rec.Code, tc.wantStatus)
			}
			if got := rec.Header().Get("Content-Type"); got != tc.wantType {
				t.Errorf("Content-Type = %q, want %q", got, tc.wantType)
			}
			if got := rec.Header().Get("Cache-Control"); got != tc.wantCache {
				t.Errorf("Cache-Control = %q, want %q", got, tc.wantCache)
			}
			if tc.wantBody != "" && rec.Body.String() != tc.wantBody {
				t.Errorf("body = %q, want %q", rec.Body.String(), tc.wantBody)
			}
			if got := rec.Header().Get("Allow"); got != tc.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tc.wantAllow)
			}
			assertSecurityHeaders(t, rec.Header())
		})
	}
}

func TestDiscoveryListsOnlyImplemented(t *testing.T) {
	s := newTestServer(t, nil, nil)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/.well-known/openid-configuration", nil))
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got["issuer"] != "http://localhost:5556" || got["jwks_uri"] != "http://localhost:5556/keys" {
		t.Errorf("issuer/jwks_uri = %v / %v", got["issuer"], got["jwks_uri"])
	}
	for _, absent := range []string{"authorization_endpoint", "token_endpoint", "userinfo_endpoint"} {
		if _, ok := got[absent]; ok {
			t.Errorf("%s listed but not implemented", absent)
		}
	}
	if got["request_parameter_supported"] != false {
		t.Errorf("request_parameter_supported = %v, want false", got["request_parameter_supported"])
	}
}

func TestReadyzNamesFailingStore(t *testing.T) {
	secretErr := errors.New("dial tcp: connect to postgres://user:hunter2@db refused")
	var logs bytes.Buffer
	s := newTestServer(t, []Check{
		{Name: "durable", Ping: func(context.Context) error { return nil }},
		{Name: "ephemeral", Ping: func(context.Context) error { return secretErr }},
	}, &logs)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503", rec.Code)
	}
	want := `{"status":"unavailable","checks":{"durable":"ok","ephemeral":"unavailable"}}`
	if rec.Body.String() != want {
		t.Errorf("body = %s, want %s", rec.Body.String(), want)
	}
	if strings.Contains(rec.Body.String(), "hunter2") {
		t.Error("readiness body leaks the cause")
	}
	if !strings.Contains(logs.String(), `"check":"ephemeral"`) {
		t.Errorf("failing check not logged: %s", logs.String())
	}

	ok := newTestServer(t, []Check{{Name: "durable", Ping: func(context.Context) error { return nil }}}, nil)
	rec = httptest.NewRecorder()
	ok.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 200 || rec.Body.String() != `{"status":"ok","checks":{"durable":"ok"}}` {
		t.Errorf("ready: %d %s", rec.Code, rec.Body.String())
	}
}

func TestPanicBecomes500WithRequestID(t *testing.T) {
	var logs bytes.Buffer
	s := newTestServer(t, nil, &logs)
	h := s.chain(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	if rec.Code != 500 {
		t.Fatalf("status = %d, want 500", rec.Code)
	}
	id := rec.Header().Get("X-Request-Id")
	want := `{"error":"server_error","error_description":"internal error; request id ` + id + `"}`
	if rec.Body.String() != want {
		t.Errorf("body = %s, want %s", rec.Body.String(), want)
	}
	assertSecurityHeaders(t, rec.Header())
	if !strings.Contains(logs.String(), `"request_id":"`+id+`"`) || !strings.Contains(logs.String(), "panic serving request") {
		t.Errorf("panic not logged with request id: %s", logs.String())
	}
}

func TestBodyLimit(t *testing.T) {
	s := newTestServer(t, nil, nil)
	var readErr error
	h := s.chain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, readErr = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusRequestEntityTooLarge)
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/x", strings.NewReader(strings.Repeat("a", 17))))
	var mbe *http.MaxBytesError
	if !errors.As(readErr, &mbe) || mbe.Limit != 16 {
		t.Fatalf("read error = %v, want MaxBytesError with limit 16", readErr)
	}
}

func TestHSTSOnlyOverHTTPS(t *testing.T) {
	s := newTestServer(t, nil, nil)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Header().Get("Strict-Transport-Security") != "" {
		t.Error("HSTS sent over plain http")
	}
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "https://localhost/healthz", nil))
	if got := rec.Header().Get("Strict-Transport-Security"); got != "max-age=63072000; includeSubDomains" {
		t.Errorf("HSTS = %q", got)
	}
}
