package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/latchkeyid/latchkey/api"
	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/providers/local"
	"github.com/latchkeyid/latchkey/storage"
)

// lockedBuffer collects the server's log lines from many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// adminFixture is the admin API of a real app (config file, migrated
// store, key manager, broker) behind httptest, with a fake clock, and a
// client that validates every request and response against openapi.yaml.
type adminFixture struct {
	t     *testing.T
	a     *app
	clock *clock.Fake
	srv   *httptest.Server
	spec  *openapi3.T
	logs  *lockedBuffer
	// bodies are every response body after the secrets' creation.
	bodies []string
}

const adminTestConfig = `issuer: http://localhost:5556
keys:
  encryptionKeys: [{id: k1, key: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=}]
logging: {level: debug, format: json}
admin:
  enabled: true
  listen: 127.0.0.1:0
  rateLimit: {limit: %d, window: 1m}
clients:
  - client_id: from-config
    client_secret: config-secret-value
    redirect_uris: [https://app.example/cb]
connectors:
  - id: gh-config
    type: github
    config: {clientID: abc, clientSecret: config-conn-secret}
%s`

func newAdminFixture(t *testing.T, backend string, limit int) *adminFixture {
	t.Helper()
	dir := t.TempDir()
	store := fmt.Sprintf("storage: {sqlite: {path: %s}}\n", filepath.Join(dir, "lk.db"))
	if backend == "postgres" {
		store = fmt.Sprintf("storage: {postgres: {dsn: %q}}\n", testenv.Postgres(t))
	}
	path := filepath.Join(dir, "latchkey.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(adminTestConfig, limit, store)), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	c := &cli{stdin: strings.NewReader(""), stdout: io.Discard, stderr: logs, configPath: path,
		env: func(string) (string, bool) { return "", false }, now: time.Now}
	ctx := t.Context()
	a, err := c.openApp(ctx, schemaMigrate, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.close)
	fake := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	a.clock = fake
	if err := syncConfig(ctx, a.db, a.cfg, a.keyring, fake.Now()); err != nil {
		t.Fatal(err)
	}
	km, err := a.keyManager(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hasher := local.NewHasher(local.Params{Memory: 64, Iterations: 1}, 0, 0, nil)
	brk, err := a.newBroker(km, hasher, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := a.adminHandler(km, brk, hasher)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	spec, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	return &adminFixture{t: t, a: a, clock: fake, srv: srv, spec: spec, logs: logs}
}

// key creates an API key with scopes (expiry in d; 0: never).
func (f *adminFixture) key(d time.Duration, scopes ...string) string {
	f.t.Helper()
	var exp time.Time
	if d > 0 {
		exp = f.clock.Now().Add(d)
	}
	token, _, err := api.Keys{Store: f.a.db, Clock: f.clock}.Create(f.t.Context(), "test", scopes, exp, "cli")
	if err != nil {
		f.t.Fatal(err)
	}
	return token
}

// route finds the document's operation for a request path.
func (f *adminFixture) route(method, path string) (*routers.Route, map[string]string) {
	rel, ok := strings.CutPrefix(path, api.BasePath)
	if !ok {
		return nil, nil
	}
	segs := strings.Split(rel, "/")
	for tmpl, item := range f.spec.Paths.Map() {
		ts := strings.Split(tmpl, "/")
		if len(ts) != len(segs) {
			continue
		}
		params := map[string]string{}
		match := true
		for i := range ts {
			if strings.HasPrefix(ts[i], "{") {
				params[strings.Trim(ts[i], "{}")] = segs[i]
			} else if ts[i] != segs[i] {
				match = false
				break
			}
		}
		if op := item.GetOperation(method); match && op != nil {
			return &routers.Route{Spec: f.spec, Path: tmpl, PathItem: item, Method: method, Operation: op}, params
		}
	}
	return nil, nil
}

type apiResponse struct {
	status int
	header http.Header
	body   []byte
}

func (r apiResponse) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

// do sends a request; a request the document describes is validated
// against it (valid reports whether it must pass), and so is every
// response to such a request.
func (f *adminFixture) do(key, method, path string, body any, validRequest bool) apiResponse {
	f.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			f.t.Fatal(err)
		}
	}
	req, err := http.NewRequestWithContext(f.t.Context(), method, f.srv.URL+path, bytes.NewReader(raw))
	if err != nil {
		f.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	rt, params := f.route(method, req.URL.Path)
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: rt, Options: opts}
	if rt != nil && validRequest {
		vreq := req.Clone(f.t.Context())
		vreq.Body = io.NopCloser(bytes.NewReader(raw))
		in.Request = vreq
		if err := openapi3filter.ValidateRequest(f.t.Context(), in); err != nil {
			f.t.Fatalf("%s %s: the request does not match openapi.yaml: %v", method, path, err)
		}
		in.Request = req
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	f.bodies = append(f.bodies, string(out))
	if resp.StatusCode >= 500 {
		f.t.Fatalf("%s %s: %d: %s", method, path, resp.StatusCode, out)
	}
	if rt != nil {
		err := openapi3filter.ValidateResponse(f.t.Context(), &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
			Body: io.NopCloser(bytes.NewReader(out)), Options: opts,
		})
		if err != nil {
			f.t.Fatalf("%s %s: the %d response does not match openapi.yaml: %v\n%s", method, path, resp.StatusCode, err, out)
		}
	}
	return apiResponse{status: resp.StatusCode, header: resp.Header, body: out}
}

// want checks the status, and for a problem its type and field problems.
func want(t *testing.T, what string, r apiResponse, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d: %s", what, r.status, status, r.body)
	}
}

func wantProblem(t *testing.T, what string, r apiResponse, status int, kind string, fields ...string) {
	t.Helper()
	want(t, what, r, status)
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("%s: Content-Type %q, want application/problem+json", what, ct)
	}
	var p api.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Type != "https://latchkey.dev/problems/"+kind || p.Status != status {
		t.Fatalf("%s: problem %+v, want type %s", what, p, kind)
	}
	var got []string
	for _, e := range p.Errors {
		got = append(got, e.Field+": "+e.Message)
	}
	if strings.Join(got, "\n") != strings.Join(fields, "\n") {
		t.Fatalf("%s: field problems:\n%s\nwant:\n%s", what, strings.Join(got, "\n"), strings.Join(fields, "\n"))
	}
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func adminBackends(t *testing.T, fn func(t *testing.T, backend string)) {
	for _, b := range []string{"sqlite", "postgres"} {
		t.Run(b, func(t *testing.T) { fn(t, b) })
	}
}

// TestAdminAPIClients: CRUD, secret rotation, every validation problem at
// once, config-managed clients read-only.
func TestAdminAPIClients(t *testing.T) {
	adminBackends(t, func(t *testing.T, backend string) {
		f := newAdminFixture(t, backend, 1000)
		ctx := t.Context()
		rw := f.key(0, "clients:*")

		r := f.do(rw, "POST", "/api/v1/clients", map[string]any{
			"client_id": "shop", "client_name": "Shop", "redirect_uris": []string{"https://shop.example/cb"},
			"client_uri": "https://shop.example"}, true)
		want(t, "create", r, http.StatusCreated)
		secret, _ := r.json(t)["client_secret"].(string)
		if len(secret) != 43 || r.header.Get("Location") != "/api/v1/clients/shop" {
			t.Fatalf("create: secret %q, Location %q", secret, r.header.Get("Location"))
		}
		stored, err := f.a.db.GetClient(ctx, "shop")
		if err != nil || stored.SecretHash != sha(secret) || stored.Extra["client_uri"] != "https://shop.example" || stored.ConfigManaged {
			t.Fatalf("stored client %+v, %v", stored, err)
		}
		if strings.Contains(string(r.body), stored.SecretHash) {
			t.Fatal("the response shows the secret hash")
		}

		r = f.do(rw, "POST", "/api/v1/clients", map[string]any{
			"client_id": "bad", "client_secret": "mine", "redirect_uris": []string{"not a url", "https://ok.example/cb#frag"},
			"grant_types": []string{"password"}}, true)
		wantProblem(t, "invalid client", r, http.StatusUnprocessableEntity, "validation",
			"client_secret: not accepted: the server generates secrets (POST /clients/{id}/secret rotates it)",
			`grant_types[0]: "password" is not one of authorization_code, refresh_token, client_credentials`,
			`redirect_uris[0]: "not a url" is not an absolute URL`,
			`redirect_uris[1]: "https://ok.example/cb#frag" must not have a fragment`)

		r = f.do(rw, "POST", "/api/v1/clients", map[string]any{"client_id": "shop", "redirect_uris": []string{"https://shop.example/cb"}}, true)
		wantProblem(t, "duplicate", r, http.StatusConflict, "conflict")

		r = f.do(rw, "GET", "/api/v1/clients", nil, true)
		want(t, "list", r, http.StatusOK)
		var list struct{ Clients []storage.Client }
		_ = json.Unmarshal(r.body, &list)
		var ids []string
		for _, c := range list.Clients {
			ids = append(ids, c.ID)
		}
		slices.Sort(ids)
		if strings.Join(ids, ",") != "from-config,shop" {
			t.Fatalf("listed %v", ids)
		}

		r = f.do(rw, "PUT", "/api/v1/clients/shop", map[string]any{"client_name": "Shop 2", "redirect_uris": []string{"https://shop.example/cb2"}}, true)
		want(t, "replace", r, http.StatusOK)
		if _, ok := r.json(t)["client_secret"]; ok {
			t.Fatal("replace showed a secret although the client kept its own")
		}
		stored, _ = f.a.db.GetClient(ctx, "shop")
		if stored.Name != "Shop 2" || stored.RedirectURIs[0] != "https://shop.example/cb2" || stored.SecretHash != sha(secret) {
			t.Fatalf("after replace %+v", stored)
		}
		r = f.do(rw, "PUT", "/api/v1/clients/shop", map[string]any{"client_id": "other", "redirect_uris": []string{"https://shop.example/cb"}}, true)
		wantProblem(t, "replace with another id", r, http.StatusUnprocessableEntity, "validation", "client_id: must equal the client_id in the path")

		r = f.do(rw, "POST", "/api/v1/clients/shop/secret", nil, true)
		want(t, "rotate secret", r, http.StatusOK)
		secret2, _ := r.json(t)["client_secret"].(string)
		stored, _ = f.a.db.GetClient(ctx, "shop")
		if secret2 == secret || stored.SecretHash != sha(secret2) {
			t.Fatal("the secret did not change")
		}

		r = f.do(rw, "POST", "/api/v1/clients", map[string]any{"client_id": "spa", "public": true, "redirect_uris": []string{"https://spa.example/cb"}}, true)
		want(t, "create public", r, http.StatusCreated)
		if _, ok := r.json(t)["client_secret"]; ok {
			t.Fatal("a public client got a secret")
		}
		r = f.do(rw, "POST", "/api/v1/clients/spa/secret", nil, true)
		wantProblem(t, "rotate a public client's secret", r, http.StatusConflict, "conflict")

		for _, m := range []string{"PUT", "DELETE"} {
			var body any
			if m == "PUT" {
				body = map[string]any{"redirect_uris": []string{"https://x.example/cb"}}
			}
			r = f.do(rw, m, "/api/v1/clients/from-config", body, true)
			wantProblem(t, m+" config client", r, http.StatusConflict, "read-only")
		}
		r = f.do(rw, "POST", "/api/v1/clients/from-config/secret", nil, true)
		wantProblem(t, "rotate config client", r, http.StatusConflict, "read-only")

		want(t, "delete", f.do(rw, "DELETE", "/api/v1/clients/shop", nil, true), http.StatusNoContent)
		wantProblem(t, "get deleted", f.do(rw, "GET", "/api/v1/clients/shop", nil, true), http.StatusNotFound, "not-found")
		wantProblem(t, "delete deleted", f.do(rw, "DELETE", "/api/v1/clients/shop", nil, true), http.StatusNotFound, "not-found")

		events, _ := f.a.db.ListEvents(ctx, storage.EventFilter{Type: "client.secret.rotated"})
		if len(events) != 1 || events[0].ClientID != "shop" || !strings.HasPrefix(events[0].Actor, "admin:lk_") {
			t.Fatalf("rotation events %+v", events)
		}
		for _, s := range []string{secret, secret2, rw, "config-secret-value"} {
			if strings.Contains(f.logs.String(), s) {
				t.Fatalf("a secret reached the log")
			}
		}
	})
}

// TestAdminAPIConnectors: validation by the type, secrets sealed and never
// shown, "(sealed)" keeps a secret, test connection, config-managed
// connectors read-only.
func TestAdminAPIConnectors(t *testing.T) {
	adminBackends(t, func(t *testing.T, backend string) {
		f := newAdminFixture(t, backend, 1000)
		ctx := t.Context()
		rw := f.key(0, "connectors:read", "connectors:write")

		r := f.do(rw, "POST", "/api/v1/connectors", map[string]any{"id": "gh", "type": "github", "config": map[string]any{"orgs": "x"}}, true)
		wantProblem(t, "invalid", r, http.StatusUnprocessableEntity, "validation",
			"config.clientID: required", "config.clientSecret: required", "config.orgs: must be a list")
		r = f.do(rw, "POST", "/api/v1/connectors", map[string]any{"id": "Bad Id", "type": "nope"}, true)
		if r.status != http.StatusUnprocessableEntity {
			t.Fatalf("unknown type: %d %s", r.status, r.body)
		}

		r = f.do(rw, "POST", "/api/v1/connectors", map[string]any{"id": "gh", "type": "github", "name": "GitHub",
			"config": map[string]any{"clientID": "id1", "clientSecret": "gh-secret-123"}}, true)
		want(t, "create", r, http.StatusCreated)
		cfg, _ := r.json(t)["config"].(map[string]any)
		if cfg["clientSecret"] != api.SealedPlaceholder || cfg["clientID"] != "id1" {
			t.Fatalf("created config %v", cfg)
		}
		stored, err := f.a.db.GetConnector(ctx, "gh")
		if err != nil || !strings.Contains(string(stored.Config), `"clientSecret":"sealed:`) || strings.Contains(string(stored.Config), "gh-secret-123") {
			t.Fatalf("stored %s %v", stored.Config, err)
		}

		r = f.do(rw, "PUT", "/api/v1/connectors/gh", map[string]any{"type": "github", "name": "GitHub 2",
			"config": map[string]any{"clientID": "id2", "clientSecret": api.SealedPlaceholder}}, true)
		want(t, "replace keeping the secret", r, http.StatusOK)
		after, _ := f.a.db.GetConnector(ctx, "gh")
		plain, err := unsealConnectorSecrets(f.a.keyring, after)
		if err != nil || !strings.Contains(string(plain), `"clientSecret":"gh-secret-123"`) || !strings.Contains(string(plain), `"clientID":"id2"`) || after.Name != "GitHub 2" {
			t.Fatalf("after replace %s %v", plain, err)
		}

		r = f.do(rw, "POST", "/api/v1/connectors/gh/test", nil, true)
		want(t, "test", r, http.StatusOK)
		if r.json(t)["ok"] != true {
			t.Fatalf("test: %s", r.body)
		}
		// An OIDC connector whose issuer does not answer: the test says so.
		dead := httptest.NewServer(http.NotFoundHandler())
		dead.Close()
		r = f.do(rw, "POST", "/api/v1/connectors", map[string]any{"id": "corp", "type": "oidc",
			"config": map[string]any{"issuer": dead.URL, "clientID": "c", "clientSecret": "corp-secret-456"}}, true)
		want(t, "create oidc", r, http.StatusCreated)
		r = f.do(rw, "POST", "/api/v1/connectors/corp/test", nil, true)
		want(t, "test oidc", r, http.StatusOK)
		if m := r.json(t); m["ok"] != false || m["error"] == "" {
			t.Fatalf("test of a dead issuer: %s", r.body)
		}

		r = f.do(rw, "GET", "/api/v1/connectors", nil, true)
		want(t, "list", r, http.StatusOK)
		for _, s := range []string{"gh-secret-123", "corp-secret-456", "config-conn-secret", "sealed:"} {
			if strings.Contains(string(r.body), s) {
				t.Fatalf("the list shows %q: %s", s, r.body)
			}
		}
		wantProblem(t, "create config-named", f.do(rw, "POST", "/api/v1/connectors", map[string]any{"id": "gh-config", "type": "github",
			"config": map[string]any{"clientID": "a", "clientSecret": "b"}}, true), http.StatusConflict, "read-only")
		wantProblem(t, "delete config", f.do(rw, "DELETE", "/api/v1/connectors/gh-config", nil, true), http.StatusConflict, "read-only")
		want(t, "delete", f.do(rw, "DELETE", "/api/v1/connectors/gh", nil, true), http.StatusNoContent)
		wantProblem(t, "test deleted", f.do(rw, "POST", "/api/v1/connectors/gh/test", nil, true), http.StatusNotFound, "not-found")
	})
}
