package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

const (
	// EnvPostgres holds a PostgreSQL URL whose user may CREATE DATABASE,
	// e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
	EnvPostgres = "LATCHKEY_TEST_POSTGRES"
	// EnvRedis holds host:port of a Redis server (comma-separated for a
	// cluster).
	EnvRedis = "LATCHKEY_TEST_REDIS"
	// EnvRequire turns every skip for a missing service into a failure.
	EnvRequire = "LATCHKEY_TEST_REQUIRE_SERVICES"
)

// Required reports whether missing services fail tests instead of skipping.
func Required() bool { return os.Getenv(EnvRequire) == "1" }

// Missing skips t (or fails it when services are required) with a message
// naming what is missing.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required() {
		t.Fatalf("required test dependency missing (%s=1): %s", EnvRequire, msg)
	}
	t.Skipf("skipping: %s", msg)
}

// Program returns the path of an external program, or skips/fails.
func Program(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "program %q not found in PATH", name)
	}
	return p
}

// RandomSuffix returns n random bytes as lowercase hex.
func RandomSuffix(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random: %v", err)
	}
	return hex.EncodeToString(b)
}

// Postgres creates a fresh database on the server named by
// LATCHKEY_TEST_POSTGRES and returns a URL for it. The database is dropped
// when the test ends.
func Postgres(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvPostgres)
	if base == "" {
		Missing(t, "%s is not set", EnvPostgres)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		Missing(t, "connect to PostgreSQL at %s: %v", redactURL(base), err)
	}
	defer admin.Close(context.Background())
	name := "lk_test_" + RandomSuffix(t, 6)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Logf("drop database %s: connect: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvPostgres, err)
	}
	u.Path = "/" + name
	return u.String()
}

// Redis returns the addresses of the Redis server named by
// LATCHKEY_TEST_REDIS and a key prefix unique to this test. Keys under the
// prefix are deleted when the test ends.
func Redis(t testing.TB) (addrs []string, prefix string) {
	t.Helper()
	raw := os.Getenv(EnvRedis)
	if raw == "" {
		Missing(t, "%s is not set", EnvRedis)
	}
	addrs = strings.Split(raw, ",")
	c := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: addrs})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		Missing(t, "ping Redis at %s: %v", raw, err)
	}
	prefix = "lktest:" + RandomSuffix(t, 6) + ":"
	t.Cleanup(func() {
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, prefix+"*", 500).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
	})
	return addrs, prefix
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
