package ratelimit_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/internal/ratelimit"
	"github.com/latchkeyid/latchkey/storage"
)

// adderCounter counts the writes that reach the store.
type adderCounter struct {
	storage.Ephemeral
	mu     sync.Mutex
	writes int
}

func (a *adderCounter) Incr(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	a.mu.Lock()
	a.writes++
	a.mu.Unlock()
	return a.Ephemeral.Incr(ctx, key, ttl)
}

func (a *adderCounter) IncrBy(ctx context.Context, key string, n int64, ttl time.Duration) (int64, error) {
	a.mu.Lock()
	a.writes++
	a.mu.Unlock()
	return a.Ephemeral.(storage.CounterAdder).IncrBy(ctx, key, n, ttl)
}

// TestBatchedMatchesExact: one Limiter batching a fail-open rule decides
// exactly as one that writes every event (same Allowed, Remaining and
// RetryAfter, across windows and at the limit), with far fewer writes.
func TestBatchedMatchesExact(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	exactStore := &adderCounter{Ephemeral: openSQLite(t, clk)}
	batchStore := &adderCounter{Ephemeral: openSQLite(t, clk)}
	exact := ratelimit.New(exactStore, ratelimit.Options{Clock: clk})
	batched := ratelimit.New(batchStore, ratelimit.Options{Clock: clk, Batch: 8, BatchInterval: 500 * time.Millisecond})
	rule := ratelimit.Rule{Name: "t.batch", Limit: 60, Window: 10 * time.Second, FailOpen: true}
	const calls = 400
	refused := 0
	for i := range calls {
		// Bursts at one instant, pauses past the batch interval, and
		// window boundaries.
		clk.Advance(time.Duration(i%9) * 37 * time.Millisecond)
		if i%50 == 49 {
			clk.Advance(900 * time.Millisecond)
		}
		want, err1 := exact.Allow(t.Context(), rule, "k")
		got, err2 := batched.Allow(t.Context(), rule, "k")
		if err1 != nil || err2 != nil || got != want {
			t.Fatalf("call %d at %s: batched %+v %v, exact %+v %v", i, clk.Now().Format("05.000"), got, err2, want, err1)
		}
		if !got.Allowed {
			refused++
		}
	}
	if refused == 0 || refused == calls {
		t.Fatalf("%d of %d refused: want some refused and some allowed", refused, calls)
	}
	t.Logf("%d refused; writes: exact %d, batched %d", refused, exactStore.writes, batchStore.writes)
	if exactStore.writes != calls || batchStore.writes*2 > calls {
		t.Fatalf("writes: exact %d, batched %d; want %d and under half", exactStore.writes, batchStore.writes, calls)
	}
}

// TestBatchedReplicas: two Limiters (replicas) batching on one store let
// at most (replicas−1)·(Batch−1) events past the limit, and a rule that
// fails closed is never batched.
func TestBatchedReplicas(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	store := &adderCounter{Ephemeral: openSQLite(t, clk)}
	const batch = 5
	a := ratelimit.New(store, ratelimit.Options{Clock: clk, Batch: batch})
	b := ratelimit.New(store, ratelimit.Options{Clock: clk, Batch: batch})
	rule := ratelimit.Rule{Name: "t.replicas", Limit: 50, Window: time.Minute, FailOpen: true}
	allowed := 0
	for range 100 {
		for _, l := range []*ratelimit.Limiter{a, b} {
			d, err := l.Allow(t.Context(), rule, "k")
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed {
				allowed++
			}
		}
	}
	if allowed < rule.Limit || allowed > rule.Limit+(batch-1) {
		t.Fatalf("allowed %d of 200 with limit %d, want %d..%d", allowed, rule.Limit, rule.Limit, rule.Limit+batch-1)
	}

	closed := ratelimit.Rule{Name: "t.closed", Limit: 1000, Window: time.Minute}
	before := store.writes
	for range 10 {
		if _, err := a.Allow(t.Context(), closed, "k"); err != nil {
			t.Fatal(err)
		}
	}
	if store.writes-before != 10 {
		t.Fatalf("fail-closed rule: %d writes for 10 events, want 10", store.writes-before)
	}
}
