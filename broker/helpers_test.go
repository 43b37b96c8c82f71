package broker_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/broker/keys"
	"github.com/latchkeyid/latchkey/broker/oauth2"
	"github.com/latchkeyid/latchkey/broker/token"
	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/internal/secretbox"
	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/providers/local"
	"github.com/latchkeyid/latchkey/session"
	"github.com/latchkeyid/latchkey/storage"
	"github.com/latchkeyid/latchkey/storage/sqlstore"
)

const testIssuer = "https://id.example.com"

// signer is one keys manager for the whole test binary: generating RSA
// keys is the slowest part of a fixture. Tokens need not live in the
// database the broker uses.
var signer *keys.Manager

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "broker-test-keys")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, sqlstore.Options{Dialect: sqlstore.DialectSQLite, DSN: filepath.Join(dir, "keys.db")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ring, err := secretbox.NewKeyring([]secretbox.Key{{ID: "k1", Secret: make([]byte, 32)}}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	signer, err = keys.New(ctx, db, keys.Options{Algorithms: []string{"RS256", "ES256", "EdDSA"}, RetireAfter: 48 * time.Hour, Keyring: ring})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

var dialects = []string{sqlstore.DialectSQLite, sqlstore.DialectPostgres}

// databases returns a function making a DSN of a new, empty database per
// call: a file for SQLite; for PostgreSQL a new schema in one database
// made for t (CREATE DATABASE takes long).
func databases(t testing.TB, dialect string) func(t testing.TB) string {
	t.Helper()
	if dialect == sqlstore.DialectSQLite {
		return func(t testing.TB) string { return filepath.Join(t.TempDir(), "latchkey.db") }
	}
	base := testenv.Postgres(t)
	return func(t testing.TB) string {
		t.Helper()
		schema := "s_" + testenv.RandomSuffix(t, 6)
		conn, err := pgx.Connect(t.Context(), base)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(t.Context(), "CREATE SCHEMA "+schema); err != nil {
			t.Fatalf("create schema: %v", err)
		}
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		q.Set("synchronous_commit", "off")
		u.RawQuery = q.Encode()
		return u.String()
	}
}

// forDialects runs fn once per SQL dialect, each sub-test with a
// function that makes fixtures on that dialect.
func forDialects(t *testing.T, fn func(t *testing.T, dsn func(t testing.TB) string, dialect string)) {
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) { fn(t, databases(t, d), d) })
	}
}

// fixture is a broker over a real SQL store, real keys and a real token
// issuer, on a fake clock.
type fixture struct {
	t      testing.TB
	db     *sqlstore.Store
	eph    storage.Ephemeral
	clock  *clock.Fake
	tokens *token.Issuer
	b      *broker.Broker
	hasher *local.Hasher
	logs   *lockedBuffer
}

// lockedBuffer collects the broker's logs.
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

// noSecretsLogged fails if any of the values appears in the logs.
func (f *fixture) noSecretsLogged(secrets ...string) {
	f.t.Helper()
	logs := f.logs.String()
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			f.t.Fatalf("a token or secret appears in the logs:\n%s", logs)
		}
	}
}

// options changes the broker options of a fixture.
type options func(o *broker.Options)

func withGrace(d time.Duration) options { return func(o *broker.Options) { o.RefreshGraceWindow = d } }

func withHTTPClient(c *http.Client) options { return func(o *broker.Options) { o.HTTPClient = c } }

var testHashParams = local.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// start is the fake clock's start; whole seconds, like JWT times.
func start() time.Time { return time.Now().UTC().Truncate(time.Second) }

func newFixture(t testing.TB, dialect, dsn string, opts ...options) *fixture {
	t.Helper()
	ctx := context.Background()
	clk := clock.NewFake(start())
	db, err := sqlstore.Open(ctx, sqlstore.Options{Dialect: dialect, DSN: dsn, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	tokens, err := token.New(token.Options{Issuer: testIssuer, Signer: signer, IDTokenTTL: time.Hour, AccessTokenTTL: 10 * time.Minute, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, db: db, eph: db.Ephemeral(), clock: clk, tokens: tokens,
		hasher: local.NewHasher(testHashParams, 4, 5*time.Second, nil), logs: &lockedBuffer{}}
	log := slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o := broker.Options{
		Issuer: testIssuer, Store: db, Ephemeral: f.eph,
		Sessions:           session.NewStore(f.eph, session.Options{Clock: clk}),
		Tokens:             tokens,
		Password:           local.New(accounts{db}, f.hasher, log),
		AccessTokenTTL:     10 * time.Minute,
		RefreshKey:         []byte("0123456789abcdef0123456789abcdef"),
		RefreshGraceWindow: 2 * time.Second,
		RefreshIdleTTL:     24 * time.Hour,
		RefreshAbsoluteTTL: 72 * time.Hour,
		Clock:              clk,
		Logger:             log,
	}
	for _, fn := range opts {
		fn(&o)
	}
	f.b, err = broker.New(o)
	if err != nil {
		t.Fatal(err)
	}
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

const testPassword = "correct horse"

// addUser creates user "u-<name>" with username name and testPassword.
func (f *fixture) addUser(name string) storage.User {
	f.t.Helper()
	h, err := f.hasher.Hash(context.Background(), testPassword)
	if err != nil {
		f.t.Fatal(err)
	}
	u := storage.User{ID: "u-" + name, Username: name, Email: name + "@example.com", EmailVerified: true, Name: strings.ToUpper(name), PasswordHash: h}
	if err := f.db.CreateUser(context.Background(), u); err != nil {
		f.t.Fatal(err)
	}
	return u
}

const redirectURI = "https://app.example/cb"

// addClient registers c; a non-empty secret makes it confidential.
func (f *fixture) addClient(c storage.Client, secret string) storage.Client {
	f.t.Helper()
	if secret != "" {
		c.SecretHash = sha256Hex(secret)
	}
	if len(c.RedirectURIs) == 0 {
		c.RedirectURIs = []string{redirectURI}
	}
	if err := f.db.CreateClient(context.Background(), c); err != nil {
		f.t.Fatal(err)
	}
	return c
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// basic authenticates as id with secret (client_secret_basic).
func basic(id, secret string) broker.ClientCredentials {
	return broker.ClientCredentials{Basic: true, BasicID: id, BasicSecret: secret}
}

// public is a public client's client_id.
func public(id string) broker.ClientCredentials { return broker.ClientCredentials{FormID: id} }

func form(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			v.Set(kv[i], kv[i+1])
		}
	}
	return v
}

var meta = broker.RequestMeta{IP: "192.0.2.1", UserAgent: "test", RequestID: "req-1"}

// code signs user in through /authorize and the password form and returns
// the code and its PKCE verifier.
func (f *fixture) code(clientID, username, scope string) (string, string) {
	f.t.Helper()
	ctx := context.Background()
	verifier := strings.Repeat("v", 50)
	sum := sha256.Sum256([]byte(verifier))
	params := map[string]string{
		"client_id": clientID, "redirect_uri": redirectURI, "response_type": "code", "scope": scope,
		"state": "st", "nonce": "n0nce", "code_challenge": base64.RawURLEncoding.EncodeToString(sum[:]), "code_challenge_method": "S256",
	}
	res := f.b.Authorize(ctx, params, nil, "", broker.BrowserSessions{})
	if res.Next != broker.StepLogin || res.Binding == "" {
		f.t.Fatalf("authorize: %+v (page %+v, redirect %+v)", res, res.Page, res.Redirect)
	}
	res2, _, err := f.b.PasswordLogin(ctx, res.RequestID, res.Binding, broker.CSRFToken(res.Binding, res.RequestID), broker.BrowserSessions{}, username, testPassword, meta)
	if err != nil || res2.Redirect == nil || res2.Redirect.Params.Get("code") == "" {
		f.t.Fatalf("password login: %v %+v (page %+v, redirect %+v)", err, res2, res2.Page, res2.Redirect)
	}
	return res2.Redirect.Params.Get("code"), verifier
}

// exchange redeems a code for client cc.
func (f *fixture) exchange(cc broker.ClientCredentials, code, verifier string) *oauth2.TokenResponse {
	f.t.Helper()
	resp, oerr := f.b.Token(context.Background(), form("grant_type", "authorization_code", "code", code, "redirect_uri", redirectURI, "code_verifier", verifier), cc, meta)
	if oerr != nil {
		f.t.Fatalf("exchange: %v", oerr)
	}
	return resp
}

// login runs the code flow for username and returns the token response.
func (f *fixture) login(clientID string, cc broker.ClientCredentials, username, scope string) *oauth2.TokenResponse {
	f.t.Helper()
	code, verifier := f.code(clientID, username, scope)
	return f.exchange(cc, code, verifier)
}

// refresh runs grant_type=refresh_token.
func (f *fixture) refresh(cc broker.ClientCredentials, rt string, kv ...string) (*oauth2.TokenResponse, *oauth2.Error) {
	return f.b.Token(context.Background(), form(append([]string{"grant_type", "refresh_token", "refresh_token", rt}, kv...)...), cc, meta)
}

// seedRefresh stores a refresh token for rec (its Hash is set from the
// returned token) and returns the token.
func (f *fixture) seedRefresh(rec storage.RefreshToken) string {
	f.t.Helper()
	tok := "seeded-" + testenv.RandomSuffix(f.t, 16)
	rec.Hash = sha256Hex(tok)
	if rec.FamilyID == "" {
		rec.FamilyID = "fam-" + testenv.RandomSuffix(f.t, 8)
	}
	if rec.IssuedAt.IsZero() {
		rec.IssuedAt = f.clock.Now()
	}
	if rec.FamilyCreatedAt.IsZero() {
		rec.FamilyCreatedAt = rec.IssuedAt
	}
	if rec.Scopes == nil {
		rec.Scopes = []string{"openid", "offline_access"}
	}
	if err := f.db.CreateRefreshToken(context.Background(), rec); err != nil {
		f.t.Fatal(err)
	}
	return tok
}

// claims returns the verified payload of a token we signed.
func claims(t *testing.T, jws string) map[string]any {
	t.Helper()
	payload, _, err := signer.Verify(jws)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// wantOAuthError fails unless e has exactly code, description and status.
func wantOAuthError(t *testing.T, what string, e *oauth2.Error, code, desc string, status int) {
	t.Helper()
	switch {
	case e == nil:
		t.Fatalf("%s: no error, want %s (%q)", what, code, desc)
	case e.Code != code || e.Description != desc || e.Status != status:
		t.Fatalf("%s: error %s %q (status %d), want %s %q (status %d); cause: %v", what, e.Code, e.Description, e.Status, code, desc, status, e.Cause)
	}
}

// events returns the audit events of type typ.
func (f *fixture) events(typ string) []storage.Event {
	f.t.Helper()
	es, err := f.db.ListEvents(context.Background(), storage.EventFilter{Type: typ})
	if err != nil {
		f.t.Fatal(err)
	}
	return es
}

func (f *fixture) getRefresh(tok string) storage.RefreshToken {
	f.t.Helper()
	r, err := f.db.GetRefreshToken(context.Background(), sha256Hex(tok))
	if err != nil {
		f.t.Fatalf("get refresh token: %v", err)
	}
	return r
}

func scopesOf(s string) []string { return slices.Sorted(slices.Values(strings.Fields(s))) }
