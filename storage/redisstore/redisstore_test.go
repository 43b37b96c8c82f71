package redisstore_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/storage"
	"github.com/latchkeyid/latchkey/storage/conformance"
	"github.com/latchkeyid/latchkey/storage/redisstore"
)

func openRedis(t *testing.T, o redisstore.Options) *redisstore.Store {
	t.Helper()
	s, err := redisstore.Open(t.Context(), o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestEphemeral(t *testing.T) {
	conformance.RunEphemeral(t, func(t *testing.T) storage.Ephemeral {
		addrs, prefix := testenv.Redis(t)
		return openRedis(t, redisstore.Options{Addrs: addrs, Prefix: prefix})
	})
}

const testPassword = "pa55-w0rd-that-must-not-leak"

func TestOpenUnreachable(t *testing.T) {
	tests := []struct {
		name    string
		opts    redisstore.Options
		timeout time.Duration // 0: no deadline on ctx (Open's own 5s bound)
		wantPre string
		maxTime time.Duration
	}{
		{"standalone", redisstore.Options{Addrs: []string{"127.0.0.1:1"}}, 0,
			"redisstore: ping Redis (standalone) at 127.0.0.1:1: ", 2 * time.Second},
		{"cluster", redisstore.Options{Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}}, 0,
			"redisstore: ping Redis (cluster) at 127.0.0.1:1,127.0.0.1:2: ", 2 * time.Second},
		// Sentinel nests the sentinel's retries inside the master's, so
		// a dead sentinel takes longer; Open honours the caller's deadline.
		{"sentinel", redisstore.Options{Addrs: []string{"127.0.0.1:1"}, MasterName: "mymaster"}, time.Second,
			"redisstore: ping Redis (sentinel) at 127.0.0.1:1: ", 2 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			tc.opts.Username = "latchkey"
			tc.opts.Password = testPassword
			tc.opts.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			ctx := t.Context()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			start := time.Now()
			s, err := redisstore.Open(ctx, tc.opts)
			elapsed := time.Since(start)
			if err == nil {
				_ = s.Close()
				t.Fatal("Open of an unreachable address succeeded")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, tc.wantPre) {
				t.Errorf("error = %q, want prefix %q", msg, tc.wantPre)
			}
			if strings.Contains(msg, testPassword) || strings.Contains(logs.String(), testPassword) {
				t.Errorf("password leaked: error %q, logs %q", msg, logs.String())
			}
			if elapsed > tc.maxTime {
				t.Errorf("Open took %s, want under %s", elapsed, tc.maxTime)
			}
			t.Logf("error after %s: %v", elapsed.Round(time.Millisecond), err)
		})
	}
}

func TestOpenInvalid(t *testing.T) {
	tests := []struct {
		name string
		opts redisstore.Options
		want string
	}{
		{"no address", redisstore.Options{},
			"redisstore: open: no Redis address configured"},
		{"cluster with db", redisstore.Options{Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}, DB: 3},
			"redisstore: open Redis Cluster at 127.0.0.1:1,127.0.0.1:2: db 3 is not supported (a cluster has only db 0)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := redisstore.Open(t.Context(), tc.opts)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Open error = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestOpenWrongPassword(t *testing.T) {
	addrs, _ := testenv.Redis(t)
	// A user that does not exist: AUTH fails with WRONGPASS whether or not
	// the server has passwords configured.
	_, err := redisstore.Open(t.Context(), redisstore.Options{Addrs: addrs, Username: "no-such-user-" + testenv.RandomSuffix(t, 4), Password: testPassword})
	if err == nil {
		t.Fatal("Open with a wrong username and password succeeded")
	}
	t.Logf("error: %v", err)
	if strings.Contains(err.Error(), testPassword) {
		t.Fatalf("error contains the password: %q", err)
	}
	if !strings.Contains(err.Error(), strings.Join(addrs, ",")) {
		t.Fatalf("error %q does not name the address %s", err, strings.Join(addrs, ","))
	}
}

func TestPrefixAndOwnership(t *testing.T) {
	addrs, prefix := testenv.Redis(t)
	ctx := t.Context()
	raw := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: addrs})
	t.Cleanup(func() { _ = raw.Close() })

	opened := openRedis(t, redisstore.Options{Addrs: addrs, Prefix: prefix + "a:"})
	wrapped := redisstore.New(raw, prefix+"b:")

	if err := opened.Put(ctx, "k", []byte("from a"), time.Minute); err != nil {
		t.Fatalf("Put a: %v", err)
	}
	if err := wrapped.Put(ctx, "k", []byte("from b"), time.Minute); err != nil {
		t.Fatalf("Put b: %v", err)
	}
	for _, tc := range []struct{ rawKey, want string }{
		{prefix + "a:k", "from a"},
		{prefix + "b:k", "from b"},
	} {
		got, err := raw.Get(ctx, tc.rawKey).Result()
		if err != nil || got != tc.want {
			t.Errorf("raw GET %s = %q, %v; want %q", tc.rawKey, got, err, tc.want)
		}
	}

	// Close of a store made by New leaves the caller's client open.
	if err := wrapped.Close(); err != nil {
		t.Fatalf("Close of wrapped store: %v", err)
	}
	if err := raw.Ping(ctx).Err(); err != nil {
		t.Fatalf("caller's client closed by Store.Close: %v", err)
	}
	// Close of a store made by Open closes its client.
	if err := opened.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := opened.Ping(ctx); err == nil {
		t.Fatal("Ping after Close succeeded")
	}
}

func TestTTLWithoutExpiry(t *testing.T) {
	addrs, prefix := testenv.Redis(t)
	ctx := t.Context()
	raw := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: addrs})
	t.Cleanup(func() { _ = raw.Close() })
	if err := raw.Set(ctx, prefix+"persistent", "v", 0).Err(); err != nil {
		t.Fatalf("raw SET: %v", err)
	}
	s := redisstore.New(raw, prefix)
	d, err := s.TTL(ctx, "persistent")
	if err == nil || err.Error() != "redisstore: ttl: key has no expiry" || errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("TTL of key without expiry = %s, %v; want error %q", d, err, "redisstore: ttl: key has no expiry")
	}
	// Incr gives a counter without expiry one, so it cannot live forever.
	if err := raw.Set(ctx, prefix+"counter", "5", 0).Err(); err != nil {
		t.Fatalf("raw SET: %v", err)
	}
	n, err := s.Incr(ctx, "counter", time.Minute)
	if err != nil || n != 6 {
		t.Fatalf("Incr = %d, %v; want 6, nil", n, err)
	}
	if d, err := s.TTL(ctx, "counter"); err != nil || d <= 30*time.Second || d > time.Minute {
		t.Fatalf("TTL after Incr = %s, %v; want in (30s, 1m]", d, err)
	}
}

func TestInvalidTTL(t *testing.T) {
	s := redisstore.New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), "")
	ctx := t.Context()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"Put 0", s.Put(ctx, "k", []byte("v"), 0), "redisstore: put: ttl must be > 0, got 0s"},
		{"Create negative", s.Create(ctx, "k", []byte("v"), -time.Second), "redisstore: create: ttl must be > 0, got -1s"},
		{"CompareAndSwap negative", s.CompareAndSwap(ctx, "k", nil, nil, -time.Second), "redisstore: compare-and-swap: ttl must be >= 0, got -1s"},
	}
	_, incrErr := s.Incr(ctx, "k", 0)
	tests = append(tests, struct {
		name string
		err  error
		want string
	}{"Incr 0", incrErr, "redisstore: incr: ttl must be > 0, got 0s"})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err == nil || tc.err.Error() != tc.want {
				t.Fatalf("error = %v, want %q", tc.err, tc.want)
			}
		})
	}
}
