//go:build unix

package web_test

// The in-process HTTP benchmarks of issue 17 (docs/performance.md): the
// whole public handler (middleware, routing, form parsing, the broker,
// SQLite, the JSON or HTML answer) called with httptest, without a
// network. bench/ has the broker-level ones; bench/load drives a real
// `latchkey serve`. Only web's own tests may import web, hence this file.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/broker/keys"
	"github.com/latchkeyid/latchkey/broker/token"
	"github.com/latchkeyid/latchkey/internal/ratelimit"
	"github.com/latchkeyid/latchkey/internal/secretbox"
	"github.com/latchkeyid/latchkey/providers/local"
	"github.com/latchkeyid/latchkey/session"
	"github.com/latchkeyid/latchkey/storage"
	"github.com/latchkeyid/latchkey/storage/sqlstore"
	"github.com/latchkeyid/latchkey/web"
)

const (
	benchIssuer      = "http://127.0.0.1:5556"
	benchRedirect    = "https://app.example/cb"
	benchUser        = "bench"
	benchPassword    = "correct horse battery staple"
	benchCC          = "bench-cc"
	benchCCSecret    = "cc-secret-0123456789abcdefghijklmnopqrstuv"
	benchApp         = "bench-app"
	benchAppSecret   = "app-secret-0123456789abcdefghijklmnopqrstu"
	benchCCScope     = "api:read"
	benchLoginScopes = "openid profile email offline_access"
)

// benchServer is the public handler over SQLite with RS256, ES256 and
// EdDSA keys, one user (cheap argon2id: the hash is measured on its own in
// bench/) and two clients that registered id_token_signed_response_alg
// ES256.
type benchServer struct {
	h        http.Handler
	ccAuth   string
	appAuth  string
	bindings *regexp.Regexp
	logins   int
}

const benchUsers = 64

// benchLimits are the rate limits and lockout of `latchkey serve`, with
// the login and token limits raised beyond anything a benchmark reaches:
// the counters still cost what they cost in production.
func benchLimits(b *testing.B, eph storage.Ephemeral) broker.Limits {
	b.Helper()
	rules := ratelimit.DefaultRules()
	rules.LoginIP.Limit, rules.LoginAccount.Limit, rules.TokenClient.Limit = 1e9, 1e9, 1e9
	lockout, err := ratelimit.NewLockout(eph, ratelimit.LockoutPolicy{Threshold: 5, Base: 30 * time.Second,
		Max: 15 * time.Minute, QuietPeriod: time.Hour}, ratelimit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return broker.Limits{Limiter: ratelimit.New(eph, ratelimit.Options{Batch: 32}), Lockout: lockout, Rules: rules} // Batch as serve
}

type benchAccounts struct{ db storage.Durable }

func (a benchAccounts) AccountByUsername(ctx context.Context, name string) (local.Account, error) {
	u, err := a.db.GetUserByUsername(ctx, name)
	if err != nil {
		return local.Account{}, local.ErrNoAccount
	}
	return local.Account{ID: u.ID, Username: u.Username, Email: u.Email, EmailVerified: u.EmailVerified,
		Name: u.Name, Groups: u.Groups, PasswordHash: u.PasswordHash, Disabled: u.Disabled}, nil
}

func newBenchServer(b *testing.B) *benchServer {
	b.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, sqlstore.Options{Dialect: sqlstore.DialectSQLite, DSN: filepath.Join(b.TempDir(), "latchkey.db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	kek := sha256.Sum256([]byte("bench kek"))
	ring, err := secretbox.NewKeyring([]secretbox.Key{{ID: "k1", Secret: kek[:]}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	km, err := keys.New(ctx, db, keys.Options{Algorithms: []string{keys.RS256, keys.ES256, keys.EdDSA}, RetireAfter: 2 * time.Hour, Keyring: ring})
	if err != nil {
		b.Fatal(err)
	}
	tokens, err := token.New(token.Options{Issuer: benchIssuer, Signer: km, AccessTokenTTL: 10 * time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	eph := db.Ephemeral()
	hasher := local.NewHasher(local.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}, 0, 0, nil)
	refreshKey, err := broker.DeriveRefreshKey(kek[:])
	if err != nil {
		b.Fatal(err)
	}
	brk, err := broker.New(broker.Options{
		Issuer: benchIssuer, Store: db, Ephemeral: eph, Sessions: session.NewStore(eph, session.Options{}), Tokens: tokens,
		Password: local.New(benchAccounts{db}, hasher, nil), RefreshKey: refreshKey, RefreshGraceWindow: 2 * time.Second,
		Limits: benchLimits(b, eph), ClientCacheTTL: broker.DefaultClientCacheTTL, BatchTokenEvents: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = brk.WaitEvents(context.WithoutCancel(ctx)) }) // before the store closes
	md, err := broker.NewMetadata(benchIssuer, km.Algorithms())
	if err != nil {
		b.Fatal(err)
	}
	h, err := web.New(web.Options{Metadata: md.WithCodeFlow(), Keys: km, Broker: brk,
		Checks: []web.Check{{Name: "durable", Ping: db.Ping}}})
	if err != nil {
		b.Fatal(err)
	}
	hash, err := hasher.Hash(ctx, benchPassword)
	if err != nil {
		b.Fatal(err)
	}
	// Logins rotate over many users, as on a real server (the session
	// store indexes each user's sessions in one value).
	for i := range benchUsers {
		name := benchUser + strconv.Itoa(i)
		if err := db.CreateUser(ctx, storage.User{ID: "u-" + name, Username: name, Email: name + "@example.com",
			EmailVerified: true, Name: "Bench User", PasswordHash: hash}); err != nil {
			b.Fatal(err)
		}
	}
	secretHash := func(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) }
	for _, c := range []storage.Client{
		{ID: benchCC, SecretHash: secretHash(benchCCSecret), GrantTypes: []string{broker.GrantTypeClientCredentials},
			Scope: benchCCScope, IDTokenSignedAlg: token.ES256, RedirectURIs: []string{}},
		{ID: benchApp, SecretHash: secretHash(benchAppSecret), RedirectURIs: []string{benchRedirect},
			GrantTypes: []string{"authorization_code", "refresh_token"}, IDTokenSignedAlg: token.ES256},
	} {
		if err := db.CreateClient(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	basic := func(id, secret string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
	}
	return &benchServer{h: h, ccAuth: basic(benchCC, benchCCSecret), appAuth: basic(benchApp, benchAppSecret),
		bindings: regexp.MustCompile(`name="(req|csrf)" value="([^"]*)"`)}
}

// do serves one request; cookies are sent as given.
func (s *benchServer) do(b *testing.B, method, target, auth, form string, cookies []*http.Cookie, want int) *httptest.ResponseRecorder {
	var req *http.Request
	if form != "" {
		req = httptest.NewRequest(method, benchIssuer+target, strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, benchIssuer+target, nil)
	}
	req.RemoteAddr = "127.0.0.1:40000"
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, req)
	if rec.Code != want {
		b.Fatalf("%s %s: status %d, want %d: %s", method, target, rec.Code, want, rec.Body.String())
	}
	return rec
}

var benchTokenForm = url.Values{"grant_type": {"client_credentials"}, "scope": {benchCCScope}}.Encode()

// login runs the browser side of a login (authorize, login page,
// password) and returns the code and its PKCE verifier.
func (s *benchServer) login(b *testing.B) (code, verifier string) {
	vb := make([]byte, 32)
	_, _ = rand.Read(vb)
	verifier = base64.RawURLEncoding.EncodeToString(vb)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {benchApp}, "redirect_uri": {benchRedirect},
		"scope": {benchLoginScopes}, "state": {"st"}, "nonce": {"n"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	rec := s.do(b, "GET", "/authorize?"+q.Encode(), "", "", nil, http.StatusSeeOther)
	cookies := rec.Result().Cookies()
	loginURL := rec.Header().Get("Location")
	rec = s.do(b, "GET", strings.TrimPrefix(loginURL, benchIssuer), "", "", cookies, http.StatusOK)
	s.logins++
	form := url.Values{"username": {benchUser + strconv.Itoa(s.logins%benchUsers)}, "password": {benchPassword}}
	for _, m := range s.bindings.FindAllStringSubmatch(rec.Body.String(), -1) {
		form.Set(m[1], m[2])
	}
	rec = s.do(b, "POST", "/login", "", form.Encode(), cookies, http.StatusSeeOther)
	cb, err := url.Parse(rec.Header().Get("Location"))
	if err != nil || cb.Query().Get("code") == "" {
		b.Fatalf("login: no code in %q", rec.Header().Get("Location"))
	}
	return cb.Query().Get("code"), verifier
}

func (s *benchServer) exchange(b *testing.B, code, verifier string) map[string]any {
	rec := s.do(b, "POST", "/token", s.appAuth, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {benchRedirect}, "code_verifier": {verifier}}.Encode(), nil, http.StatusOK)
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		b.Fatal(err)
	}
	return out
}

// BenchmarkHTTP is each endpoint through the whole handler.
func BenchmarkHTTP(b *testing.B) {
	s := newBenchServer(b)
	run := func(name string, op func(b *testing.B)) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			stop := benchCPU(b)
			for b.Loop() {
				op(b)
			}
			stop()
		})
	}
	run("discovery", func(b *testing.B) {
		s.do(b, "GET", "/.well-known/openid-configuration", "", "", nil, http.StatusOK)
	})
	run("jwks", func(b *testing.B) { s.do(b, "GET", "/keys", "", "", nil, http.StatusOK) })
	run("token_client_credentials", func(b *testing.B) {
		s.do(b, "POST", "/token", s.ccAuth, benchTokenForm, nil, http.StatusOK)
	})

	at := s.do(b, "POST", "/token", s.ccAuth, benchTokenForm, nil, http.StatusOK)
	var cc struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(at.Body.Bytes(), &cc); err != nil {
		b.Fatal(err)
	}
	introspect := url.Values{"token": {cc.AccessToken}}.Encode()
	run("introspect_access_token", func(b *testing.B) {
		rec := s.do(b, "POST", "/introspect", s.ccAuth, introspect, nil, http.StatusOK)
		if !strings.Contains(rec.Body.String(), `"active":true`) {
			b.Fatalf("inactive: %s", rec.Body)
		}
	})

	code, verifier := s.login(b)
	rt, _ := s.exchange(b, code, verifier)["refresh_token"].(string)
	run("token_refresh", func(b *testing.B) {
		rec := s.do(b, "POST", "/token", s.appAuth, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}.Encode(), nil, http.StatusOK)
		var out struct {
			RefreshToken string `json:"refresh_token"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.RefreshToken == "" {
			b.Fatalf("refresh: %v %s", err, rec.Body)
		}
		rt = out.RefreshToken
	})

	b.Run("token_authorization_code", func(b *testing.B) {
		type pair struct{ code, verifier string }
		codes := make([]pair, b.N)
		for i := range codes {
			codes[i].code, codes[i].verifier = s.login(b)
		}
		b.ReportAllocs()
		b.ResetTimer()
		stop := benchCPU(b)
		for i := 0; i < b.N; i++ {
			s.exchange(b, codes[i].code, codes[i].verifier)
		}
		stop()
	})

	// The login page alone (GET /login of one sign-in request): the
	// hosted pages' render path, translated and themed.
	{
		vb := make([]byte, 32)
		_, _ = rand.Read(vb)
		sum := sha256.Sum256(vb)
		q := url.Values{"response_type": {"code"}, "client_id": {benchApp}, "redirect_uri": {benchRedirect},
			"scope": {benchLoginScopes}, "state": {"st"},
			"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
		rec := s.do(b, "GET", "/authorize?"+q.Encode(), "", "", nil, http.StatusSeeOther)
		cookies, loginPath := rec.Result().Cookies(), strings.TrimPrefix(rec.Header().Get("Location"), benchIssuer)
		run("login_page", func(b *testing.B) { s.do(b, "GET", loginPath, "", "", cookies, http.StatusOK) })
	}

	// The whole browser login: GET /authorize, GET /login, POST /login
	// (argon2id at 64 KiB), then the app's code exchange.
	run("login_flow", func(b *testing.B) {
		code, verifier := s.login(b)
		out := s.exchange(b, code, verifier)
		if out["id_token"] == nil || out["refresh_token"] == nil {
			b.Fatalf("login: %v", out)
		}
	})
}

// benchCPU reports the CPU this process spent per op (cpu-ns/op): on a
// shared machine ns/op grows with everyone's load, CPU per op hardly.
func benchCPU(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	t0 := cpu()
	return func() { b.ReportMetric(float64(cpu()-t0)/float64(b.N), "cpu-ns/op") }
}
