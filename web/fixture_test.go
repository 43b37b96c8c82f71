package web_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/broker/keys"
	"github.com/latchkeyid/latchkey/broker/token"
	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/internal/httpclient"
	"github.com/latchkeyid/latchkey/internal/logging"
	"github.com/latchkeyid/latchkey/internal/secretbox"
	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/apple"
	"github.com/latchkeyid/latchkey/providers/local"
	oidcconn "github.com/latchkeyid/latchkey/providers/oidc"
	samlconn "github.com/latchkeyid/latchkey/providers/saml"
	"github.com/latchkeyid/latchkey/session"
	"github.com/latchkeyid/latchkey/storage"
	"github.com/latchkeyid/latchkey/storage/redisstore"
	"github.com/latchkeyid/latchkey/storage/sqlstore"
	"github.com/latchkeyid/latchkey/web"
)

// fixture is the whole provider (real SQLite store, real keys, real
// broker) behind an httptest server on 127.0.0.1.
type fixture struct {
	t      *testing.T
	srv    *httptest.Server
	issuer string
	db     *sqlstore.Store
	keys   *keys.Manager
	broker *broker.Broker
	eph    storage.Ephemeral
	hasher *local.Hasher
	conns  *broker.Connectors
	logs   *lockedBuffer
	// clock is the one clock of every component (store expiry, keys,
	// tokens, sessions, broker): tests move it to age sessions, codes and
	// requests. It starts at a whole second so iat and auth_time are exact.
	clock *clock.Fake

	providerOnce sync.Once
	oidcProvider *oidc.Provider
}

type lockedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

// testHashParams keep argon2id cheap in tests.
var testHashParams = local.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureOn(t, backends{})
}

// backends chooses the stores of a fixture: SQLite for both by default;
// PostgreSQL (LATCHKEY_TEST_POSTGRES) for the durable store and Redis
// (LATCHKEY_TEST_REDIS) for the ephemeral one, as in production. Redis
// expires keys on its own clock, so tests on it must not rely on moving
// the fixture's clock past a TTL.
// https serves the pages as behind a TLS proxy (web.Options.HTTPS:
// __Host- cookies, Secure, HSTS) although the test server speaks http.
// localhost names the issuer http://localhost:PORT (the server still
// listens on 127.0.0.1), so that a relying party on 127.0.0.1 is another
// site for a browser.
// webauthn registers the WebAuthn factor (RP ID the issuer's host; use
// with localhost).
type backends struct {
	postgres, redis, https, localhost, webauthn bool
	// prefix is a path for the issuer ("/auth"): the server is reached
	// at srv.URL+prefix, as behind a proxy that keeps the path.
	prefix string
	// options changes the broker's options before it is built (extra
	// factors, account e-mail).
	options func(*broker.Options)
	// web changes the web options (themes) before the server is built.
	web func(*web.Options)
}

func newFixtureOn(t *testing.T, be backends) *fixture {
	t.Helper()
	ctx := context.Background()
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	so := sqlstore.Options{Dialect: sqlstore.DialectSQLite, DSN: filepath.Join(t.TempDir(), "latchkey.db"), Clock: clk}
	if be.postgres {
		so = sqlstore.Options{Dialect: sqlstore.DialectPostgres, DSN: testenv.Postgres(t), Clock: clk}
	}
	db, err := sqlstore.Open(ctx, so)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	ring, err := secretbox.NewKeyring([]secretbox.Key{{ID: "k1", Secret: make([]byte, 32)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	log, err := logging.New(io.MultiWriter(logs), "json", "debug")
	if err != nil {
		t.Fatal(err)
	}
	km, err := keys.New(ctx, db, keys.Options{Algorithms: []string{"RS256", "ES256", "EdDSA"}, RetireAfter: 2 * time.Hour, Keyring: ring, Logger: log, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, db: db, keys: km, logs: logs, clock: clk}
	f.hasher = local.NewHasher(testHashParams, 2, time.Second, nil)

	// The issuer is the server's own URL, known only once it listens.
	var handler *web.Server
	f.srv = httptest.NewUnstartedServer(nil)
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	f.issuer = f.srv.URL
	if be.localhost {
		f.issuer = strings.Replace(f.srv.URL, "://127.0.0.1:", "://localhost:", 1)
	}
	f.issuer += be.prefix

	issuer, err := token.New(token.Options{Issuer: f.issuer, Signer: km, IDTokenTTL: time.Hour, AccessTokenTTL: time.Hour, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	var eph storage.Ephemeral = db.Ephemeral()
	if be.redis {
		addrs, prefix := testenv.Redis(t)
		rs, err := redisstore.Open(ctx, redisstore.Options{Addrs: addrs, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rs.Close() })
		eph = rs
	}
	f.eph = eph
	// Upstream connectors (federation_test.go syncs them in): the oidc
	// type over the hardened client allowed to reach loopback.
	f.conns = broker.NewConnectors(providers.Registry{"oidc": oidcconn.Type{}, "pwtest": pwTestType{}, "apple": apple.Type{},
		samlconn.TypeName: samlconn.Type{BaseURL: f.issuer, Replay: broker.NewSAMLReplayCache(eph, clk)}}, providers.Deps{
		HTTPClient: httpclient.New(httpclient.Options{Logger: log, AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}),
		Clock:      clk, Logger: log, Sealer: ring,
	}, nil, log)
	bo := broker.Options{
		Federation: broker.Federation{Connectors: f.conns, Store: db},
		Issuer:     f.issuer, Store: db, Ephemeral: eph,
		Sessions: session.NewStore(eph, session.Options{Clock: clk}),
		Tokens:   issuer,
		Password: local.New(accounts{db}, f.hasher, log),
		// The hardened client, allowed to reach the test receivers on
		// loopback (CONTRACTS.md outbound.allowedNetworks).
		HTTPClient: httpclient.New(httpclient.Options{Logger: log,
			AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}),
		BackchannelBackoff: 20 * time.Millisecond,
		// Second factors as cmd wires them; only the factor limit is on
		// (web/mfa_test.go).
		MFA:    withWebAuthn(t, testMFA(t, db, ring, clk), be.webauthn, f.issuer, clk), // webauthn_test.go
		Limits: testFactorLimits(eph, clk),
		Logger: log,
		Clock:  clk,
	}
	if be.options != nil {
		be.options(&bo)
	}
	b, err := broker.New(bo)
	if err != nil {
		t.Fatal(err)
	}
	md, err := broker.NewMetadata(f.issuer, km.Algorithms())
	if err != nil {
		t.Fatal(err)
	}
	f.broker = b
	wo := web.Options{Metadata: md.WithCodeFlow().WithLogout(), Keys: km, Broker: b, Logger: log, Clock: clk,
		HTTPS:  be.https,
		Checks: []web.Check{{Name: "durable", Ping: db.Ping}, {Name: "ephemeral", Ping: eph.Ping}}}
	if be.web != nil {
		be.web(&wo)
	}
	handler, err = web.New(wo)
	if err != nil {
		t.Fatal(err)
	}
	f.srv.Config.Handler = handler
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server logs:\n%s", logs.String())
		}
	})
	return f
}

// accounts adapts the store for the local connector (as cmd does).
type accounts struct{ db storage.Durable }

func (a accounts) AccountByUsername(ctx context.Context, username string) (local.Account, error) {
	u, err := a.db.GetUserByUsername(ctx, username)
	if err != nil {
		return local.Account{}, local.ErrNoAccount
	}
	return local.Account{ID: u.ID, Username: u.Username, Email: u.Email, EmailVerified: u.EmailVerified,
		Name: u.Name, Groups: u.Groups, PasswordHash: u.PasswordHash, Disabled: u.Disabled}, nil
}

// addUser creates a local user with a password.
func (f *fixture) addUser(u storage.User, password string) storage.User {
	f.t.Helper()
	h, err := f.hasher.Hash(context.Background(), password)
	if err != nil {
		f.t.Fatal(err)
	}
	u.PasswordHash = h
	if u.ID == "" {
		u.ID = "u-" + u.Username
	}
	u.CreatedAt, u.UpdatedAt = time.Now().UTC(), time.Now().UTC()
	if err := f.db.CreateUser(context.Background(), u); err != nil {
		f.t.Fatal(err)
	}
	return u
}

// addClient registers a client; secret "" makes it public.
func (f *fixture) addClient(c storage.Client, secret string) storage.Client {
	f.t.Helper()
	if secret != "" {
		sum := sha256.Sum256([]byte(secret))
		c.SecretHash = hex.EncodeToString(sum[:])
	} else {
		c.Public = true
	}
	c.CreatedAt, c.UpdatedAt = time.Now().UTC(), time.Now().UTC()
	if err := f.db.CreateClient(context.Background(), c); err != nil {
		f.t.Fatal(err)
	}
	return c
}

// provider is go-oidc's view of the fixture (discovery fetched once).
func (f *fixture) provider() *oidc.Provider {
	f.t.Helper()
	f.providerOnce.Do(func() {
		p, err := oidc.NewProvider(context.Background(), f.issuer)
		if err != nil {
			f.t.Fatalf("discovery: %v", err)
		}
		f.oidcProvider = p
	})
	if f.oidcProvider == nil {
		f.t.Fatal("no provider")
	}
	return f.oidcProvider
}

// rp is an x/oauth2 relying party for a client of the fixture.
func (f *fixture) rp(clientID, secret, redirectURI string, scopes ...string) *oauth2.Config {
	f.t.Helper()
	return &oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: f.provider().Endpoint(),
		RedirectURL: redirectURI, Scopes: scopes}
}

// verifier is go-oidc's ID token verifier for a client; now is the
// fixture's clock.
func (f *fixture) verifier(clientID string) *oidc.IDTokenVerifier {
	return f.provider().Verifier(&oidc.Config{ClientID: clientID, Now: f.clock.Now})
}

// setDisabled disables or enables a user in the store.
func (f *fixture) setDisabled(userID string, disabled bool) {
	f.t.Helper()
	err := f.db.UpdateUser(context.Background(), userID, func(u storage.User) (storage.User, error) {
		u.Disabled = disabled
		return u, nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

// doRequest sends req with a plain client (no cookies, no redirects) and
// returns the response with its body read.
func doRequest(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode >= 500 {
		t.Errorf("%s %s answered %d:\n%s", req.Method, req.URL.Path, resp.StatusCode, body)
	}
	return resp, string(body)
}

// assertHeaders checks header values exactly.
func assertHeaders(t *testing.T, h http.Header, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := h.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
}

// pageCSP is the policy of our HTML pages (web/pages.go).
const pageCSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"

// assertHTMLHeaders checks the headers every HTML page of ours carries.
func assertHTMLHeaders(t *testing.T, h http.Header) {
	t.Helper()
	assertHeaders(t, h, map[string]string{
		"Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": pageCSP,
		"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
		"X-Frame-Options": "DENY",
	})
}

var (
	pageTitleRE   = regexp.MustCompile(`<h1>([^<]*)</h1>`)
	pageMessageRE = regexp.MustCompile(`<h1>[^<]*</h1>\s*<p>([^<]*)</p>`)
)

// assertErrorPage checks an error page: status, headers, no redirect,
// the exact title and message.
func assertErrorPage(t *testing.T, resp *http.Response, page string, status int, title, message string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status %d, want %d", resp.StatusCode, status)
	}
	if loc := resp.Header.Get("Location"); loc != "" {
		t.Errorf("error page redirects to %q", loc)
	}
	assertHTMLHeaders(t, resp.Header)
	if m := pageTitleRE.FindStringSubmatch(page); m == nil || html.UnescapeString(m[1]) != title {
		t.Errorf("page title = %v, want %q\n%s", m, title, page)
	}
	if m := pageMessageRE.FindStringSubmatch(page); m == nil || html.UnescapeString(m[1]) != message {
		t.Errorf("page message = %v, want %q", m, message)
	}
}

// bearerGet calls a resource with a bearer token.
func bearerGet(t *testing.T, u, token string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return doRequest(t, req)
}

// assertBearerError checks an RFC 6750 error answer.
func assertBearerError(t *testing.T, resp *http.Response, body string, status int, code, desc string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status %d, want %d", resp.StatusCode, status)
	}
	assertHeaders(t, resp.Header, map[string]string{
		"WWW-Authenticate": `Bearer realm="latchkey", error="` + code + `", error_description="` + desc + `"`,
		"Cache-Control":    "no-store", "Content-Type": "application/json",
		"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
	})
	assertJSONError(t, body, code, desc)
}

// assertJSONError checks an RFC 6749 §5.2 body exactly.
func assertJSONError(t *testing.T, body, code, desc string) {
	t.Helper()
	var got map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	want := map[string]any{"error": code}
	if desc != "" {
		want["error_description"] = desc
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("error body = %v, want %v", got, want)
	}
}
