package web_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/broker/keys"
	"github.com/latchkeyid/latchkey/broker/token"
	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/internal/logging"
	"github.com/latchkeyid/latchkey/internal/secretbox"
	"github.com/latchkeyid/latchkey/providers/local"
	"github.com/latchkeyid/latchkey/session"
	"github.com/latchkeyid/latchkey/storage"
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
	hasher *local.Hasher
	logs   *lockedBuffer
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

// sharedKeys caches one keys record per test binary: RSA generation is the
// slowest part of a fixture.
var (
	keysOnce sync.Once
	keysDB   string
)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlstore.Open(ctx, sqlstore.Options{Dialect: sqlstore.DialectSQLite, DSN: filepath.Join(dir, "latchkey.db")})
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
	km, err := keys.New(ctx, db, keys.Options{Algorithms: []string{"RS256", "ES256", "EdDSA"}, RetireAfter: 2 * time.Hour, Keyring: ring, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, db: db, keys: km, logs: logs}
	f.hasher = local.NewHasher(testHashParams, 2, time.Second, nil)

	// The issuer is the server's own URL, known only once it listens.
	var handler *web.Server
	f.srv = httptest.NewUnstartedServer(nil)
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	f.issuer = f.srv.URL

	issuer, err := token.New(token.Options{Issuer: f.issuer, Signer: km, IDTokenTTL: time.Hour, AccessTokenTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	eph := db.Ephemeral()
	b, err := broker.New(broker.Options{
		Issuer: f.issuer, Store: db, Ephemeral: eph,
		Sessions: session.NewStore(eph, session.Options{}),
		Tokens:   issuer,
		Password: local.New(accounts{db}, f.hasher, log),
		Logger:   log,
	})
	if err != nil {
		t.Fatal(err)
	}
	md, err := broker.NewMetadata(f.issuer, km.Algorithms())
	if err != nil {
		t.Fatal(err)
	}
	handler, err = web.New(web.Options{Metadata: md.WithCodeFlow(), Keys: km, Broker: b, Logger: log, Clock: clock.Real{},
		Checks: []web.Check{{Name: "durable", Ping: db.Ping}, {Name: "ephemeral", Ping: eph.Ping}}})
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
