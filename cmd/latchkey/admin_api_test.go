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
	h, err := a.adminHandler(ctx, km, brk, hasher, "http://127.0.0.1:5557")
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
		if strings.Join(ids, ",") != "from-config,latchkey-admin,shop" {
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

		r = f.do(rw, "POST", "/api/v1/connectors/gh/disable", nil, true)
		if want(t, "disable", r, http.StatusOK); r.json(t)["disabled"] != true {
			t.Fatalf("disable: %s", r.body)
		}
		enabled, err := enabledConnectors{f.a.db}.ListConnectors(ctx)
		if err != nil || slices.ContainsFunc(enabled, func(c storage.Connector) bool { return c.ID == "gh" }) || len(enabled) != 1 {
			t.Fatalf("the login still lists the disabled connector: %v %v", enabled, err)
		}
		want(t, "replace a disabled connector", f.do(rw, "PUT", "/api/v1/connectors/gh", map[string]any{"type": "github",
			"config": map[string]any{"clientID": "id2", "clientSecret": api.SealedPlaceholder}}, true), http.StatusOK)
		if c, _ := f.a.db.GetConnector(ctx, "gh"); !c.Disabled {
			t.Fatal("a PUT enabled the connector")
		}
		want(t, "enable", f.do(rw, "POST", "/api/v1/connectors/gh/enable", nil, true), http.StatusOK)
		if c, _ := f.a.db.GetConnector(ctx, "gh"); c.Disabled {
			t.Fatal("still disabled")
		}
		wantProblem(t, "disable a config connector", f.do(rw, "POST", "/api/v1/connectors/gh-config/disable", nil, true), http.StatusConflict, "read-only")
		if ev, _ := f.a.db.ListEvents(ctx, storage.EventFilter{Type: "connector.disabled"}); len(ev) != 1 || ev[0].ConnectorID != "gh" {
			t.Fatalf("disable events %+v", ev)
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

// TestAdminAPIUsers: create, validation, patch, disable (ends sessions),
// enable, MFA reset, identities, sessions, delete.
func TestAdminAPIUsers(t *testing.T) {
	adminBackends(t, func(t *testing.T, backend string) {
		f := newAdminFixture(t, backend, 1000)
		ctx := t.Context()
		rw := f.key(0, "users:*")

		r := f.do(rw, "POST", "/api/v1/users", map[string]any{"username": " bad", "email": "nope", "groups": []string{""}, "colour": "red", "disabled": "yes"}, false)
		wantProblem(t, "invalid", r, http.StatusUnprocessableEntity, "validation",
			"colour: unknown field", "disabled: wrong type: a boolean is expected", "email: not an email address",
			"groups[0]: must be a non-empty name without surrounding spaces", "username: no surrounding spaces or control characters")
		wantProblem(t, "no username", f.do(rw, "POST", "/api/v1/users", map[string]any{"email": "a@example.com"}, false),
			http.StatusUnprocessableEntity, "validation", "username: required")

		r = f.do(rw, "POST", "/api/v1/users", map[string]any{"username": "alice", "email": "alice@example.com", "email_verified": true,
			"name": "Alice", "groups": []string{"admins"}, "password": "correct horse battery"}, true)
		want(t, "create", r, http.StatusCreated)
		u := r.json(t)
		id, _ := u["id"].(string)
		if u["has_password"] != true || u["username"] != "alice" || len(id) != 32 {
			t.Fatalf("created %s", r.body)
		}
		if strings.Contains(string(r.body), "argon2") || strings.Contains(string(r.body), "correct horse") {
			t.Fatal("the response shows the password or its hash")
		}
		wantProblem(t, "duplicate username", f.do(rw, "POST", "/api/v1/users", map[string]any{"username": "alice"}, true), http.StatusConflict, "conflict")

		r = f.do(rw, "GET", "/api/v1/users?username=alice", nil, true)
		want(t, "find", r, http.StatusOK)
		if !strings.Contains(string(r.body), id) {
			t.Fatalf("find by username: %s", r.body)
		}
		r = f.do(rw, "PATCH", "/api/v1/users/"+id, map[string]any{"name": "Alice A.", "groups": []string{}}, true)
		want(t, "patch", r, http.StatusOK)
		stored, _ := f.a.db.GetUser(ctx, id)
		if stored.Name != "Alice A." || stored.Groups != nil || stored.Email != "alice@example.com" || stored.PasswordHash == "" {
			t.Fatalf("after patch %+v", stored)
		}

		sessions := f.a.sessionStore()
		if _, _, err := sessions.Create(ctx, id, "local", []string{"pwd"}); err != nil {
			t.Fatal(err)
		}
		_, s2, err := sessions.Create(ctx, id, "local", []string{"pwd"})
		if err != nil {
			t.Fatal(err)
		}
		r = f.do(rw, "GET", "/api/v1/users/"+id+"/sessions", nil, true)
		want(t, "sessions", r, http.StatusOK)
		if got, _ := r.json(t)["sessions"].([]any); len(got) != 2 {
			t.Fatalf("sessions %s", r.body)
		}
		want(t, "revoke one", f.do(rw, "DELETE", "/api/v1/users/"+id+"/sessions/"+s2.SID, nil, true), http.StatusNoContent)
		wantProblem(t, "revoke it again", f.do(rw, "DELETE", "/api/v1/users/"+id+"/sessions/"+s2.SID, nil, true), http.StatusNotFound, "not-found")
		r = f.do(rw, "POST", "/api/v1/users/"+id+"/disable", nil, true)
		want(t, "disable", r, http.StatusOK)
		if left, _ := sessions.ListByUser(ctx, id); len(left) != 0 || r.json(t)["disabled"] != true {
			t.Fatalf("disable left %d sessions: %s", len(left), r.body)
		}
		want(t, "enable", f.do(rw, "POST", "/api/v1/users/"+id+"/enable", nil, true), http.StatusOK)
		if _, _, err := sessions.Create(ctx, id, "local", []string{"pwd"}); err != nil {
			t.Fatal(err)
		}
		r = f.do(rw, "DELETE", "/api/v1/users/"+id+"/sessions", nil, true)
		if want(t, "revoke all", r, http.StatusOK); r.json(t)["ended"] != float64(1) {
			t.Fatalf("revoke all: %s", r.body)
		}

		if err := f.a.db.CreateMFACredential(ctx, storage.MFACredential{ID: "m1", UserID: id, Type: "totp", Data: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
		r = f.do(rw, "POST", "/api/v1/users/"+id+"/mfa/reset", nil, true)
		if want(t, "mfa reset", r, http.StatusOK); r.json(t)["removed"] != float64(1) {
			t.Fatalf("mfa reset: %s", r.body)
		}

		if err := f.a.db.CreateIdentity(ctx, storage.Identity{ConnectorID: "gh-config", Subject: "1234", UserID: id, Email: "alice@example.com",
			ConnectorData: []byte("upstream-refresh-token")}); err != nil {
			t.Fatal(err)
		}
		r = f.do(rw, "GET", "/api/v1/users/"+id+"/identities", nil, true)
		want(t, "identities", r, http.StatusOK)
		if !strings.Contains(string(r.body), `"subject":"1234"`) || strings.Contains(string(r.body), "connector_data") {
			t.Fatalf("identities %s", r.body)
		}
		wantProblem(t, "unlink unknown", f.do(rw, "DELETE", "/api/v1/users/"+id+"/identities/gh-config/999", nil, true), http.StatusNotFound, "not-found")
		want(t, "unlink", f.do(rw, "DELETE", "/api/v1/users/"+id+"/identities/gh-config/1234", nil, true), http.StatusNoContent)

		want(t, "delete", f.do(rw, "DELETE", "/api/v1/users/"+id, nil, true), http.StatusNoContent)
		for _, p := range []string{"", "/sessions", "/identities"} {
			wantProblem(t, "deleted user "+p, f.do(rw, "GET", "/api/v1/users/"+id+p, nil, true), http.StatusNotFound, "not-found")
		}
		if strings.Contains(f.logs.String(), "correct horse") {
			t.Fatal("the password reached the log")
		}
	})
}

// TestAdminAPIKeysAndAudit: signing keys list and rotate; audit events
// filtered and paged by cursor, each page in the document's shape.
func TestAdminAPIKeysAndAudit(t *testing.T) {
	adminBackends(t, func(t *testing.T, backend string) {
		f := newAdminFixture(t, backend, 1000)
		ctx := t.Context()
		k := f.key(0, "keys:*", "audit:read")
		r := f.do(k, "GET", "/api/v1/keys", nil, true)
		want(t, "list keys", r, http.StatusOK)
		before := string(r.body)
		r = f.do(k, "POST", "/api/v1/keys/rotate", nil, true)
		want(t, "rotate", r, http.StatusOK)
		if string(r.body) == before || strings.Contains(string(r.body), "PRIVATE") || strings.Contains(string(r.body), `"d"`) {
			t.Fatalf("rotate: %s", r.body)
		}
		if ev, _ := f.a.db.ListEvents(ctx, storage.EventFilter{Type: "keys.rotated"}); len(ev) == 0 {
			t.Fatal("no keys.rotated event")
		}

		for i := range 5 {
			if err := f.a.db.AppendEvent(ctx, storage.Event{Type: "user.login.failed", UserID: fmt.Sprint("u", i%2), Time: f.clock.Now()}); err != nil {
				t.Fatal(err)
			}
		}
		var seen []string
		path := "/api/v1/audit/events?type=user.login.failed&limit=2"
		for range 5 {
			r = f.do(k, "GET", path, nil, true)
			want(t, "page", r, http.StatusOK)
			var page struct {
				Events []storage.Event
				Next   string
			}
			_ = json.Unmarshal(r.body, &page)
			for _, e := range page.Events {
				if e.Type != "user.login.failed" || slices.Contains(seen, e.ID) {
					t.Fatalf("page has %+v", e)
				}
				seen = append(seen, e.ID)
			}
			if page.Next == "" {
				break
			}
			path = page.Next
		}
		if len(seen) != 5 {
			t.Fatalf("paged through %d events, want 5", len(seen))
		}
		r = f.do(k, "GET", "/api/v1/audit/events?user_id=u1&type=user.login.failed", nil, true)
		if got, _ := r.json(t)["events"].([]any); len(got) != 2 {
			t.Fatalf("user filter: %s", r.body)
		}
		r = f.do(k, "GET", "/api/v1/audit/events?limit=0&since=yesterday", nil, false)
		wantProblem(t, "bad query", r, http.StatusBadRequest, "invalid-request",
			"since: want an RFC 3339 time (2026-01-02T15:04:05Z)", "limit: want a whole number from 1 to 1000")
	})
}

// TestAdminAPIAuth: no key, a malformed, unknown, wrong, expired, revoked
// or rotated-out key is 401; a key without the route's scope is 403; the
// per-key limit answers 429; uses are audited with the prefix, never the
// key, and last use is recorded.
func TestAdminAPIAuth(t *testing.T) {
	adminBackends(t, func(t *testing.T, backend string) {
		f := newAdminFixture(t, backend, 5)
		ctx := t.Context()
		keys := api.Keys{Store: f.a.db, Clock: f.clock}
		read := f.key(time.Hour, "clients:read")
		prefix := read[:13]

		wantProblem(t, "no key", f.do("", "GET", "/api/v1/clients", nil, true), http.StatusUnauthorized, "unauthorized")
		r := f.do("lk_nothing", "GET", "/api/v1/clients", nil, true)
		wantProblem(t, "malformed", r, http.StatusUnauthorized, "unauthorized")
		if r.header.Get("WWW-Authenticate") == "" {
			t.Fatal("no WWW-Authenticate")
		}
		wrong := read[:len(read)-4] + "AAAA"
		if wrong == read {
			wrong = read[:len(read)-4] + "BBBB"
		}
		wantProblem(t, "wrong secret", f.do(wrong, "GET", "/api/v1/clients", nil, true), http.StatusUnauthorized, "unauthorized")
		wantProblem(t, "unknown", f.do("lk_0000000000_"+read[14:], "GET", "/api/v1/clients", nil, true), http.StatusUnauthorized, "unauthorized")

		want(t, "read", f.do(read, "GET", "/api/v1/clients", nil, true), http.StatusOK)
		rec, _ := f.a.db.GetAPIKey(ctx, prefix)
		if !rec.LastUsedAt.Equal(f.clock.Now()) {
			t.Fatalf("last used %v", rec.LastUsedAt)
		}
		wantProblem(t, "write with a read key", f.do(read, "POST", "/api/v1/clients", map[string]any{"client_id": "x", "redirect_uris": []string{"https://x.example/cb"}}, true),
			http.StatusForbidden, "forbidden")
		wantProblem(t, "other resource", f.do(read, "GET", "/api/v1/users", nil, true), http.StatusForbidden, "forbidden")
		if _, err := f.a.db.GetClient(ctx, "x"); err == nil {
			t.Fatal("a read key created a client")
		}

		// Per-key limit 5 per minute; refused requests (scope) do not
		// count, so this key has used 1.
		for range 4 {
			f.do(read, "GET", "/api/v1/clients", nil, true)
		}
		r = f.do(read, "GET", "/api/v1/clients", nil, true)
		wantProblem(t, "over the limit", r, http.StatusTooManyRequests, "rate-limited")
		if r.header.Get("Retry-After") == "" {
			t.Fatal("no Retry-After")
		}
		other := f.key(0, "clients:read")
		want(t, "another key is not limited", f.do(other, "GET", "/api/v1/clients", nil, true), http.StatusOK)

		f.clock.Advance(2 * time.Hour)
		wantProblem(t, "expired", f.do(read, "GET", "/api/v1/clients", nil, true), http.StatusUnauthorized, "unauthorized")

		if err := keys.Revoke(ctx, other[:13], "cli"); err != nil {
			t.Fatal(err)
		}
		wantProblem(t, "revoked", f.do(other, "GET", "/api/v1/clients", nil, true), http.StatusUnauthorized, "unauthorized")

		old := f.key(0, "clients:read")
		fresh, _, err := keys.Rotate(ctx, old[:13], 10*time.Minute, "cli")
		if err != nil {
			t.Fatal(err)
		}
		want(t, "old key in the overlap", f.do(old, "GET", "/api/v1/clients", nil, true), http.StatusOK)
		want(t, "new key", f.do(fresh, "GET", "/api/v1/clients", nil, true), http.StatusOK)
		if _, _, err := keys.Rotate(ctx, old[:13], time.Minute, "cli"); err == nil {
			t.Fatal("a rotated key rotated again")
		}
		f.clock.Advance(11 * time.Minute)
		wantProblem(t, "old key after the overlap", f.do(old, "GET", "/api/v1/clients", nil, true), http.StatusUnauthorized, "unauthorized")
		want(t, "new key after the overlap", f.do(fresh, "GET", "/api/v1/clients", nil, true), http.StatusOK)

		used, _ := f.a.db.ListEvents(ctx, storage.EventFilter{Type: "admin.api.request"})
		denied, _ := f.a.db.ListEvents(ctx, storage.EventFilter{Type: "admin.api.denied"})
		if len(used) < 8 || len(denied) < 5 {
			t.Fatalf("%d use and %d denied events", len(used), len(denied))
		}
		if used[0].Actor != "admin:"+prefix || used[0].Data["route"] != "GET /clients" || used[0].Data["status"] != float64(200) {
			t.Fatalf("use event %+v", used[0])
		}
		all, _ := f.a.db.ListEvents(ctx, storage.EventFilter{})
		raw, _ := json.Marshal(all)
		for _, secret := range []string{read, other, old, fresh} {
			if strings.Contains(f.logs.String(), secret) || strings.Contains(string(raw), secret) {
				t.Fatal("an API key reached the log or the audit table")
			}
			for _, b := range f.bodies {
				if strings.Contains(b, secret) || strings.Contains(b, secret[14:]) {
					t.Fatalf("an API key appeared in a response: %s", b)
				}
			}
		}
	})
}

// TestAdminAPIBadInput: no bad request gets a 500 (do fails on any) and
// every answer is a problem with the right status.
func TestAdminAPIBadInput(t *testing.T) {
	f := newAdminFixture(t, "sqlite", 1000)
	k := f.key(0, "clients:*", "connectors:*", "users:*")
	tests := []struct {
		name, method, path, ctype, body string
		status                          int
		kind                            string
	}{
		{"not json", "POST", "/api/v1/clients", "application/json", "{", 400, "invalid-request"},
		{"an array", "POST", "/api/v1/users", "application/json", "[1]", 400, "invalid-request"},
		{"null", "POST", "/api/v1/connectors", "application/json", "null", 400, "invalid-request"},
		{"form", "POST", "/api/v1/clients", "application/x-www-form-urlencoded", "client_id=x", 415, "unsupported-type"},
		{"no type", "PATCH", "/api/v1/users/x", "", "{}", 415, "unsupported-type"},
		{"too large", "POST", "/api/v1/clients", "application/json", `{"client_name":"` + strings.Repeat("a", 2<<20) + `"}`, 413, "too-large"},
		{"wrong types", "POST", "/api/v1/clients", "application/json", `{"client_id":5,"redirect_uris":"x"}`, 422, "validation"},
		{"connector config not an object", "POST", "/api/v1/connectors", "application/json", `{"id":"a","type":"github","config":[1]}`, 422, "validation"},
		{"unknown user", "PATCH", "/api/v1/users/nobody", "application/json", `{"name":"x"}`, 404, "not-found"},
		{"unknown path", "GET", "/api/v1/nothing", "", "", 404, "not-found"},
		{"wrong method", "PATCH", "/api/v1/clients", "application/json", "{}", 405, "method"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), tc.method, f.srv.URL+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+k)
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			wantProblem(t, tc.name, apiResponse{status: resp.StatusCode, header: resp.Header, body: b}, tc.status, tc.kind, problemFields(b)...)
		})
	}
}

// problemFields returns a problem's field problems as wantProblem lists
// them (the bad-input table checks status and type only).
func problemFields(b []byte) []string {
	var p api.Problem
	_ = json.Unmarshal(b, &p)
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field+": "+e.Message)
	}
	return out
}
