package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/bits"
	"strconv"
	"sync"
	"time"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/storage"
)

// ErrUnavailable is wrapped by errors that come from the store being
// unreachable or failing: the caller answers 503, not 429.
var ErrUnavailable = errors.New("rate limit store unavailable")

// Options configure a Limiter or a Lockout.
type Options struct {
	// Clock decides the current window and lock expiry. Nil is the
	// system clock. (Expiry of the stored values is the store's: the SQL
	// store's own clock, Redis's real time.)
	Clock clock.Clock
	// Logger receives store failures of fail-open rules. Nil discards.
	Logger *slog.Logger
	// Batch, when above 1, lets fail-open rules count up to Batch events
	// of a key in process before adding them to the store at once, and
	// BatchInterval (default 100ms) bounds how long they wait (batch.go
	// says how far that lets replicas exceed a limit). It takes effect
	// when the store implements storage.CounterAdder.
	Batch         int
	BatchInterval time.Duration
}

func (o Options) clock() clock.Clock {
	if o.Clock == nil {
		return clock.Real{}
	}
	return o.Clock
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

// Limiter applies Rules over an ephemeral store. It is safe for concurrent
// use, and replicas sharing the store share the limits.
type Limiter struct {
	store storage.Ephemeral
	clock clock.Clock
	log   *slog.Logger

	// closed remembers counts of windows that have ended (see
	// previousCount), by windowKey.
	mu     sync.Mutex
	closed map[string]int64

	// batching of fail-open rules (batch.go)
	adder         storage.CounterAdder
	batch         int
	batchInterval time.Duration
	batches       map[string]*batchEntry
}

// New returns a Limiter keeping its counters in store.
func New(store storage.Ephemeral, o Options) *Limiter {
	l := &Limiter{store: store, clock: o.clock(), log: o.logger(), closed: map[string]int64{}}
	if a, ok := store.(storage.CounterAdder); ok && o.Batch > 1 {
		l.adder, l.batch, l.batchInterval, l.batches = a, o.Batch, o.BatchInterval, map[string]*batchEntry{}
		if l.batchInterval <= 0 {
			l.batchInterval = 100 * time.Millisecond
		}
	}
	return l
}

// maxClosedCounts bounds the remembered counts of ended windows; when full
// the memory is emptied (and counts are read from the store again).
const maxClosedCounts = 4096

// settleTime is how long into a window the previous window's count may
// still grow: calls that computed their window just before the boundary,
// and replicas whose clocks lag. After it the count is final and kept in
// process, so a busy key costs one store round trip per call (the Incr),
// not two.
func settleTime(w int64) int64 { return min(w/4, int64(2*time.Second)) }

// Decision is Allow's answer.
type Decision struct {
	// Allowed is whether the event is within the limit.
	Allowed bool
	// RetryAfter is, when not allowed, how long until an attempt would be
	// allowed if none is made meanwhile; 0 when allowed.
	RetryAfter time.Duration
	// Remaining is how many more events the limit allows right now; -1
	// when the event was not counted (rule disabled, or failed open).
	Remaining int
	// FailedOpen is set when the store failed and the rule allowed the
	// event anyway.
	FailedOpen bool
}

// RetryAfterSeconds is RetryAfter for a Retry-After header: whole seconds,
// rounded up, at least 1 when the event was refused, 0 when it was allowed.
func (d Decision) RetryAfterSeconds() int {
	if d.Allowed {
		return 0
	}
	s := int((d.RetryAfter + time.Second - 1) / time.Second)
	return max(s, 1)
}

// Allow counts one event for key under rule and says whether it is within
// the limit. key must not be empty; it is hashed before it reaches the
// store. An invalid rule or empty key is an error whatever the rule's
// FailOpen says; a store failure is an error wrapping ErrUnavailable
// unless the rule fails open, in which case the event is allowed
// (Decision.FailedOpen) and the failure logged. A refusal is not an error.
func (l *Limiter) Allow(ctx context.Context, rule Rule, key string) (Decision, error) {
	if err := rule.Validate(); err != nil {
		return Decision{}, fmt.Errorf("rate limit: invalid rule: %w", err)
	}
	if key == "" {
		return Decision{}, fmt.Errorf("rate limit %s: empty key", rule.Name)
	}
	if rule.Limit == 0 {
		return Decision{Allowed: true, Remaining: -1}, nil
	}
	w := rule.Window.Nanoseconds()
	t := l.clock.Now().UnixNano()
	idx := floorDiv(t, w)
	e := t - idx*w // elapsed in the current window, 0 <= e < w
	hashed := hashKey(key)
	if rule.FailOpen && l.adder != nil {
		return l.allowBatched(ctx, l.adder, rule, hashed, w, t, idx, e)
	}

	// The counter of window idx is read as "previous" during window
	// idx+1, so it lives until that window ends.
	n, err := l.store.Incr(ctx, windowKey(rule.Name, hashed, idx), time.Duration(2*w-e))
	if err != nil {
		return l.storeFailed(ctx, rule, fmt.Errorf("count: %w", err))
	}
	return l.decide(ctx, rule, hashed, n, w, idx, e)
}

// decide answers for an event that made window idx's count n, at elapsed
// e into the window, weighing in the previous window's count.
func (l *Limiter) decide(ctx context.Context, rule Rule, hashed string, n, w, idx, e int64) (Decision, error) {
	limit := int64(rule.Limit)
	if n > limit {
		return Decision{RetryAfter: retryNextWindow(n, limit, w, e)}, nil
	}
	p, err := l.previousCount(ctx, windowKey(rule.Name, hashed, idx-1), e >= settleTime(w))
	if err != nil {
		return l.storeFailed(ctx, rule, fmt.Errorf("read previous window: %w", err))
	}
	// n <= limit here. Allowed iff p·(w−e)/w + n <= limit.
	if !mulLess(uint64(limit-n), uint64(w), uint64(p), uint64(w-e)) {
		carried := ceilMulDiv(uint64(p), uint64(w-e), uint64(w))
		return Decision{Allowed: true, Remaining: int(limit - n - int64(carried))}, nil
	}
	return Decision{RetryAfter: retryAfter(n, p, limit, w, e)}, nil
}

// previousCount is the count of an ended window: read from the store, or,
// once the window has settled, from the process's memory of an earlier
// read (no call can add to an ended window after that).
func (l *Limiter) previousCount(ctx context.Context, key string, settled bool) (int64, error) {
	if settled {
		l.mu.Lock()
		p, ok := l.closed[key]
		l.mu.Unlock()
		if ok {
			return p, nil
		}
	}
	p, err := l.count(ctx, key)
	if err != nil || !settled {
		return p, err
	}
	l.mu.Lock()
	if len(l.closed) >= maxClosedCounts {
		clear(l.closed)
	}
	l.closed[key] = p
	l.mu.Unlock()
	return p, nil
}

// count reads a window counter; a missing one is 0.
func (l *Limiter) count(ctx context.Context, key string) (int64, error) {
	b, err := l.store.Get(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stored counter is not a number: %w", err)
	}
	return max(n, 0), nil
}

func (l *Limiter) storeFailed(ctx context.Context, rule Rule, err error) (Decision, error) {
	if ctx.Err() != nil {
		// The caller gave up; that is not an outage to paper over.
		return Decision{}, fmt.Errorf("rate limit %s: %w", rule.Name, err)
	}
	if rule.FailOpen {
		l.log.WarnContext(ctx, "rate limit store failed; allowing because the rule fails open",
			"rule", rule.Name, "error", err)
		return Decision{Allowed: true, Remaining: -1, FailedOpen: true}, nil
	}
	return Decision{}, fmt.Errorf("rate limit %s: %w: %w", rule.Name, ErrUnavailable, err)
}

// retryAfter is the wait, from elapsed e in window k where the count is n
// (<= limit) and the previous window's count p refused the event, until
// one more event would be allowed.
func retryAfter(n, p, limit, w, e int64) time.Duration {
	// Still in window k, the next event has count n+1 and is allowed once
	// p·(w−e₁) <= (limit−n−1)·w, i.e. e₁ >= w − ⌊(limit−n−1)·w/p⌋.
	// (The refusal means p > limit−n−1, so the quotient is below w.)
	if a := limit - n - 1; a >= 0 && p > 0 {
		if q := int64(floorMulDiv(uint64(a), uint64(w), uint64(p))); q > 0 {
			return time.Duration(w - q - e)
		}
	}
	return retryNextWindow(n, limit, w, e)
}

// retryNextWindow is the wait until an event in window k+1 is allowed,
// when window k ends with count n: there the event has count 1 and the
// previous count n, so it passes once n·(w−e₂) <= (limit−1)·w.
func retryNextWindow(n, limit, w, e int64) time.Duration {
	wait := w - e
	if limit-1 < n {
		wait += w - int64(floorMulDiv(uint64(limit-1), uint64(w), uint64(n)))
	}
	return time.Duration(wait)
}

// floorDiv is ⌊a/b⌋ for b > 0, also for negative a.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// mulLess reports a·b < c·d exactly.
func mulLess(a, b, c, d uint64) bool {
	h1, l1 := bits.Mul64(a, b)
	h2, l2 := bits.Mul64(c, d)
	return h1 < h2 || h1 == h2 && l1 < l2
}

// floorMulDiv is ⌊a·b/c⌋ (c > 0), saturating at MaxUint64.
func floorMulDiv(a, b, c uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return math.MaxUint64
	}
	q, _ := bits.Div64(hi, lo, c)
	return q
}

// ceilMulDiv is ⌈a·b/c⌉ (c > 0, a·b/c < 2^64).
func ceilMulDiv(a, b, c uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	q, r := bits.Div64(hi, lo, c)
	if r != 0 {
		q++
	}
	return q
}
