package ratelimit_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/storage"
	"github.com/latchkeyid/latchkey/storage/redisstore"
	"github.com/latchkeyid/latchkey/storage/sqlstore"
)

// t0 is where fake clocks start: a Unix-epoch multiple of every window the
// tests use, so window boundaries fall on round offsets from it.
var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// backend is a real ephemeral store. storeClock says whether its expiry
// follows the clock passed to open (the SQL stores) or real time (Redis).
type backend struct {
	name       string
	storeClock bool
	open       func(t testing.TB, clk clock.Clock) storage.Ephemeral
}

var backends = []backend{
	{name: "redis", open: openRedis},
	{name: "sqlite", storeClock: true, open: openSQLite},
	{name: "postgres", storeClock: true, open: openPostgres},
}

// forEachBackend runs f on a fresh store of every backend.
func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

// openRedis returns a store on the test Redis under a prefix unique to t
// (testenv deletes its keys afterwards). Its expiry is real time.
func openRedis(t testing.TB, _ clock.Clock) storage.Ephemeral {
	t.Helper()
	addrs, prefix := testenv.Redis(t)
	c := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: addrs})
	t.Cleanup(func() { _ = c.Close() })
	return redisstore.New(c, prefix)
}

func openSQL(t testing.TB, clk clock.Clock, dialect, dsn string) storage.Ephemeral {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := sqlstore.Open(ctx, sqlstore.Options{Dialect: dialect, DSN: dsn, Clock: clk})
	if err != nil {
		t.Fatalf("open %s: %v", dialect, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate %s: %v", dialect, err)
	}
	return s.Ephemeral()
}

func openSQLite(t testing.TB, clk clock.Clock) storage.Ephemeral {
	t.Helper()
	return openSQL(t, clk, sqlstore.DialectSQLite, filepath.Join(t.TempDir(), "latchkey.db"))
}

func openPostgres(t testing.TB, clk clock.Clock) storage.Ephemeral {
	t.Helper()
	return openSQL(t, clk, sqlstore.DialectPostgres, testenv.Postgres(t))
}

// brokenStores are real stores that fail every call: a closed SQLite
// store and a Redis client for a port nothing listens on.
func brokenStores(t *testing.T) map[string]storage.Ephemeral {
	t.Helper()
	ctx := t.Context()
	s, err := sqlstore.Open(ctx, sqlstore.Options{Dialect: sqlstore.DialectSQLite, DSN: filepath.Join(t.TempDir(), "closed.db")})
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second, DialerRetries: 1, DialerRetryTimeout: time.Millisecond})
	t.Cleanup(func() { _ = c.Close() })
	return map[string]storage.Ephemeral{
		"closed sqlite":     s.Ephemeral(),
		"unreachable redis": redisstore.New(c, "unused:"),
	}
}
