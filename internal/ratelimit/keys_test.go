package ratelimit_test

import (
	"context"
	"database/sql"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/internal/ratelimit"
	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/storage"
	"github.com/latchkeyid/latchkey/storage/redisstore"
	"github.com/latchkeyid/latchkey/storage/sqlstore"
)

const (
	plainAccount = "alice.liddell@example.com"
	plainIP      = "198.51.100.77"
)

// useEveryKind writes one value of every kind the package stores.
func useEveryKind(t *testing.T, store storage.Ephemeral) {
	t.Helper()
	clk := clock.NewFake(t0)
	lim := ratelimit.New(store, ratelimit.Options{Clock: clk})
	rules := ratelimit.DefaultRules()
	ipKey := ratelimit.IPKey(netip.MustParseAddr(plainIP))
	for _, c := range []struct {
		rule ratelimit.Rule
		key  string
	}{
		{rules.LoginIP, ipKey},
		{rules.LoginAccount, plainAccount},
		{rules.FactorAccount, plainAccount},
		{rules.TokenClient, "client-" + plainAccount},
	} {
		if _, err := lim.Allow(t.Context(), c.rule, c.key); err != nil {
			t.Fatalf("Allow %s: %v", c.rule.Name, err)
		}
	}
	lo, err := ratelimit.NewLockout(store, ratelimit.DefaultLockoutPolicy(), ratelimit.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lo.Fail(t.Context(), plainAccount); err != nil {
		t.Fatalf("Fail: %v", err)
	}
}

var storedKey = regexp.MustCompile(`^(rl:(login\.ip|login\.account|factor\.account|token\.client):[0-9a-f]{32}:[0-9]+|lockout:[0-9a-f]{32})$`)

func checkStoredKeys(t *testing.T, keys []string) {
	t.Helper()
	if len(keys) != 5 {
		t.Fatalf("stored keys %q, want 5", keys)
	}
	for _, k := range keys {
		if !storedKey.MatchString(k) {
			t.Errorf("stored key %q does not match %s", k, storedKey)
		}
		for _, plain := range []string{"alice", "example", plainIP, "198.51"} {
			if strings.Contains(k, plain) {
				t.Errorf("stored key %q contains %q", k, plain)
			}
		}
	}
}

func TestStoredKeysRevealNothingRedis(t *testing.T) {
	addrs, prefix := testenv.Redis(t)
	c := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: addrs})
	t.Cleanup(func() { _ = c.Close() })
	useEveryKind(t, redisstore.New(c, prefix))

	var keys []string
	iter := c.Scan(t.Context(), 0, prefix+"*", 100).Iterator()
	for iter.Next(t.Context()) {
		keys = append(keys, strings.TrimPrefix(iter.Val(), prefix))
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("scan: %v", err)
	}
	slices.Sort(keys)
	checkStoredKeys(t, keys)
}

func TestStoredKeysRevealNothingSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latchkey.db")
	useEveryKind(t, openSQL(t, clock.NewFake(t0), sqlstore.DialectSQLite, path))

	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	keys, err := queryStrings(t.Context(), db, `SELECT key FROM ephemeral ORDER BY key`)
	if err != nil {
		t.Fatalf("list keys: %v", err)
	}
	checkStoredKeys(t, keys)
}

func queryStrings(ctx context.Context, db *sql.DB, q string) ([]string, error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
