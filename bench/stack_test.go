package bench_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/broker/keys"
	"github.com/latchkeyid/latchkey/broker/oauth2"
	"github.com/latchkeyid/latchkey/broker/token"
	"github.com/latchkeyid/latchkey/internal/ratelimit"
	"github.com/latchkeyid/latchkey/internal/secretbox"
	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/providers/local"
	"github.com/latchkeyid/latchkey/session"
	"github.com/latchkeyid/latchkey/storage"
	"github.com/latchkeyid/latchkey/storage/redisstore"
	"github.com/latchkeyid/latchkey/storage/sqlstore"
)

const (
	issuerURL   = "http://127.0.0.1:5556"
	redirectURI = "https://app.example/cb"
	username    = "bench"
	password    = "correct horse battery staple"

	// ccClient uses client_credentials; appClient the browser flow with
	// refresh tokens. Both registered id_token_signed_response_alg ES256
	// (issue 17), so no RS256 signature is in a measured path.
	ccClient, ccSecret   = "bench-cc", "cc-secret-0123456789abcdefghijklmnopqrstuv"
	appClient, appSecret = "bench-app", "app-secret-0123456789abcdefghijklmnopqrstu"
	ccScope              = "api:read"
	appScopes            = "openid profile email offline_access"
)

// cheapHash keeps argon2id out of the measured paths; BenchmarkPasswordHash
// measures the production parameters on their own.
var cheapHash = local.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// backend names the stores of a stack.
type backend struct {
	name     string
	postgres bool // durable store on LATCHKEY_TEST_POSTGRES (else SQLite)
	redis    bool // ephemeral store on LATCHKEY_TEST_REDIS (else the SQL store)
	// hash is the argon2id parameters of the user's password; zero means
	// cheapHash.
	hash local.Params
}

var (
	sqliteBackend   = backend{name: "sqlite"}
	postgresBackend = backend{name: "postgres", postgres: true}
	// productionBackend is PostgreSQL with Redis, as in a scale-out
	// deployment.
	productionBackend = backend{name: "postgres+redis", postgres: true, redis: true}
)

// stack is the provider core in process, built as cmd/latchkey builds it.
// loginUsers is how many users the logins of a stack rotate over.
const loginUsers = 64

type stack struct {
	logins   atomic.Uint64
	db       *sqlstore.Store
	eph      storage.Ephemeral
	keys     *keys.Manager
	tokens   *token.Issuer
	sessions *session.Store
	broker   *broker.Broker
	user     storage.User
}

func newStack(tb testing.TB, be backend) *stack {
	tb.Helper()
	ctx := context.Background()
	so := sqlstore.Options{Dialect: sqlstore.DialectSQLite, DSN: filepath.Join(tb.TempDir(), "latchkey.db")}
	if be.postgres {
		so = sqlstore.Options{Dialect: sqlstore.DialectPostgres, DSN: testenv.Postgres(tb)}
	}
	var eph storage.Ephemeral
	if be.redis {
		addrs, prefix := testenv.Redis(tb)
		rs, err := redisstore.Open(ctx, redisstore.Options{Addrs: addrs, Prefix: prefix})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { rs.Close() })
		eph = rs
	}
	db, err := sqlstore.Open(ctx, so)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	if eph == nil {
		eph = db.Ephemeral()
	}
	kek := sha256.Sum256([]byte("bench kek"))
	ring, err := secretbox.NewKeyring([]secretbox.Key{{ID: "k1", Secret: kek[:]}}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	km, err := keys.New(ctx, db, keys.Options{Algorithms: []string{keys.RS256, keys.ES256, keys.EdDSA}, RetireAfter: 2 * time.Hour, Keyring: ring})
	if err != nil {
		tb.Fatal(err)
	}
	tokens, err := token.New(token.Options{Issuer: issuerURL, Signer: km, AccessTokenTTL: 10 * time.Minute})
	if err != nil {
		tb.Fatal(err)
	}
	hp := be.hash
	if hp == (local.Params{}) {
		hp = cheapHash
	}
	hasher := local.NewHasher(hp, 0, 0, nil)
	sessions := session.NewStore(eph, session.Options{})
	refreshKey, err := broker.DeriveRefreshKey(kek[:])
	if err != nil {
		tb.Fatal(err)
	}
	b, err := broker.New(broker.Options{
		Issuer: issuerURL, Store: db, Ephemeral: eph, Sessions: sessions, Tokens: tokens,
		Password:   local.New(accounts{db}, hasher, nil),
		RefreshKey: refreshKey, RefreshGraceWindow: 2 * time.Second,
		Limits: benchLimits(tb, eph), ClientCacheTTL: broker.DefaultClientCacheTTL, BatchTokenEvents: true,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = b.WaitEvents(context.WithoutCancel(ctx)) }) // before the store closes
	s := &stack{db: db, eph: eph, keys: km, tokens: tokens, sessions: sessions, broker: b}

	hash, err := hasher.Hash(ctx, password)
	if err != nil {
		tb.Fatal(err)
	}
	// Logins rotate over many users, as on a real server: the session
	// store keeps one index of each user's sessions, which a save
	// rewrites whole (BenchmarkSessionsOfOneUser).
	for i := range loginUsers {
		u := storage.User{ID: "u-bench-" + strconv.Itoa(i), Username: username + "-" + strconv.Itoa(i),
			Email: "bench@example.com", EmailVerified: true, Name: "Bench User", Groups: []string{"bench"}, PasswordHash: hash}
		if err := db.CreateUser(ctx, u); err != nil {
			tb.Fatal(err)
		}
		if i == 0 {
			s.user = u
		}
	}
	for _, c := range []storage.Client{
		{ID: ccClient, SecretHash: sha256Hex(ccSecret), GrantTypes: []string{broker.GrantTypeClientCredentials},
			Scope: ccScope, IDTokenSignedAlg: token.ES256, RedirectURIs: []string{}},
		{ID: appClient, SecretHash: sha256Hex(appSecret), RedirectURIs: []string{redirectURI},
			GrantTypes: []string{oauth2.GrantTypeAuthorizationCode, oauth2.GrantTypeRefreshToken}, IDTokenSignedAlg: token.ES256},
	} {
		if err := db.CreateClient(ctx, c); err != nil {
			tb.Fatal(err)
		}
	}
	return s
}

// benchLimits are the rate limits and lockout of `latchkey serve`, with
// the login and token limits raised beyond anything a benchmark reaches:
// the counters still cost what they cost in production.
func benchLimits(tb testing.TB, eph storage.Ephemeral) broker.Limits {
	tb.Helper()
	rules := ratelimit.DefaultRules()
	rules.LoginIP.Limit, rules.LoginAccount.Limit, rules.TokenClient.Limit = 1e9, 1e9, 1e9
	lockout, err := ratelimit.NewLockout(eph, ratelimit.LockoutPolicy{Threshold: 5, Base: 30 * time.Second,
		Max: 15 * time.Minute, QuietPeriod: time.Hour}, ratelimit.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return broker.Limits{Limiter: ratelimit.New(eph, ratelimit.Options{Batch: 32}), Lockout: lockout, Rules: rules} // Batch as serve
}

// accounts adapts the durable store to the local connector, as cmd does.
type accounts struct{ db storage.Durable }

func (a accounts) AccountByUsername(ctx context.Context, name string) (local.Account, error) {
	u, err := a.db.GetUserByUsername(ctx, name)
	if err != nil {
		return local.Account{}, local.ErrNoAccount
	}
	return local.Account{ID: u.ID, Username: u.Username, Email: u.Email, EmailVerified: u.EmailVerified,
		Name: u.Name, Groups: u.Groups, PasswordHash: u.PasswordHash, Disabled: u.Disabled}, nil
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

var meta = broker.RequestMeta{IP: "127.0.0.1", UserAgent: "latchkey-bench", RequestID: "bench"}

var (
	ccCreds  = broker.ClientCredentials{Basic: true, BasicID: ccClient, BasicSecret: ccSecret}
	appCreds = broker.ClientCredentials{Basic: true, BasicID: appClient, BasicSecret: appSecret}
)

// pkce returns a fresh verifier and its S256 challenge.
func pkce() (verifier, challenge string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// login runs /authorize and the password step at the broker and returns
// an authorization code and its PKCE verifier.
func (s *stack) login(ctx context.Context) (code, verifier string, err error) {
	verifier, challenge := pkce()
	res := s.broker.Authorize(ctx, map[string]string{
		"response_type": "code", "client_id": appClient, "redirect_uri": redirectURI, "scope": appScopes,
		"state": "st", "nonce": "n", "code_challenge": challenge, "code_challenge_method": "S256",
	}, nil, "", broker.BrowserSessions{})
	if res.Next != broker.StepLogin {
		return "", "", fmt.Errorf("authorize: want the login step, got %+v", res)
	}
	user := username + "-" + strconv.Itoa(int(s.logins.Add(1)%loginUsers))
	res2, _, err := s.broker.PasswordLogin(ctx, res.RequestID, res.Binding, broker.CSRFToken(res.Binding, res.RequestID), broker.BrowserSessions{},
		user, password, meta)
	if err != nil {
		return "", "", fmt.Errorf("password login: %w", err)
	}
	if res2.Redirect == nil || res2.Redirect.Params.Get("code") == "" {
		return "", "", fmt.Errorf("password login: no code: %+v", res2)
	}
	return res2.Redirect.Params.Get("code"), verifier, nil
}

// exchange redeems a code.
func (s *stack) exchange(ctx context.Context, code, verifier string) (*oauth2.TokenResponse, error) {
	resp, oerr := s.broker.Token(ctx, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}, "code_verifier": {verifier},
	}, appCreds, meta)
	if oerr != nil {
		return nil, fmt.Errorf("code exchange: %s: %s (%v)", oerr.Code, oerr.Description, oerr.Cause)
	}
	return resp, nil
}

// refreshToken logs in and returns the first refresh token of a new family.
func (s *stack) refreshToken(tb testing.TB) string {
	tb.Helper()
	ctx := context.Background()
	code, verifier, err := s.login(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := s.exchange(ctx, code, verifier)
	if err != nil {
		tb.Fatal(err)
	}
	if resp.RefreshToken == "" {
		tb.Fatal("no refresh token")
	}
	checkIDTokenAlg(tb, resp.IDToken, token.ES256)
	return resp.RefreshToken
}

// refresh rotates rt and returns the successor.
func (s *stack) refresh(ctx context.Context, rt string) (string, error) {
	resp, oerr := s.broker.Token(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, appCreds, meta)
	if oerr != nil {
		return "", fmt.Errorf("refresh: %s: %s (%v)", oerr.Code, oerr.Description, oerr.Cause)
	}
	return resp.RefreshToken, nil
}

// clientCredentials returns a client_credentials access token.
func (s *stack) clientCredentials(ctx context.Context) (string, error) {
	resp, oerr := s.broker.Token(ctx, url.Values{"grant_type": {"client_credentials"}, "scope": {ccScope}}, ccCreds, meta)
	if oerr != nil {
		return "", fmt.Errorf("client_credentials: %s: %s (%v)", oerr.Code, oerr.Description, oerr.Cause)
	}
	return resp.AccessToken, nil
}

// checkIDTokenAlg makes sure the benchmark measures the algorithm it says.
func checkIDTokenAlg(tb testing.TB, jwt, alg string) {
	tb.Helper()
	head, _, _ := cutDot(jwt)
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		tb.Fatalf("ID token header: %v", err)
	}
	var h struct{ Alg string }
	if err := json.Unmarshal(raw, &h); err != nil || h.Alg != alg {
		tb.Fatalf("ID token alg %q, want %s (%v)", h.Alg, alg, err)
	}
}

func cutDot(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
