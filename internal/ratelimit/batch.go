package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/latchkeyid/latchkey/storage"
)

// Batching of fail-open rules (Options.Batch): such a rule protects
// capacity, not secrets (the token endpoint's clients authenticate with
// high-entropy secrets), so a busy key need not cost a store write per
// event. The Limiter counts its events in process and adds them to the
// store counter in one IncrBy when Batch have gathered, when the oldest is
// BatchInterval old, at the first event of each window, and on every event
// once the estimated count is within Batch of the limit (there it is exact
// again, as without batching). What other replicas do not see yet is at
// most Batch−1 events per replica and key for at most BatchInterval, so
// with R replicas a key can pass its limit by at most (R−1)·(Batch−1)
// events; one replica is exact at the limit. Counts not added yet are
// lost when the process stops (at most Batch−1 per key).

// maxBatchKeys bounds the keys counted in process; when full the memory is
// emptied (what was not added yet is dropped, an undercount of at most
// Batch−1 per key).
const maxBatchKeys = 4096

// batchEntry is one key's in-process count in window idx.
type batchEntry struct {
	mu      sync.Mutex
	idx     int64
	synced  bool      // stored holds the store's count of window idx
	stored  int64     // the store's count after our last IncrBy
	pending int64     // events counted here, not added to the store yet
	since   time.Time // when the oldest pending event was counted
}

func (l *Limiter) batchEntry(name string) *batchEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.batches[name]
	if !ok {
		if len(l.batches) >= maxBatchKeys {
			clear(l.batches)
		}
		b = &batchEntry{}
		l.batches[name] = b
	}
	return b
}

// allowBatched is Allow for a fail-open rule with batching on; adder is
// the store.
func (l *Limiter) allowBatched(ctx context.Context, adder storage.CounterAdder, rule Rule, hashed string, w, t, idx, e int64) (Decision, error) {
	b := l.batchEntry(rule.Name + ":" + hashed)
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Unix(0, t)
	if b.idx != idx {
		if b.pending > 0 && b.idx == idx-1 {
			// The previous window's last events still count there (its
			// counter lives until this window ends).
			ew := t - b.idx*w
			if _, err := adder.IncrBy(ctx, windowKey(rule.Name, hashed, b.idx), b.pending, time.Duration(2*w-ew)); err != nil {
				l.log.WarnContext(ctx, "rate limit store failed; dropping batched counts of the last window", "rule", rule.Name, "error", err)
			}
		}
		b.idx, b.synced, b.stored, b.pending = idx, false, 0, 0
	}
	limit := int64(rule.Limit)
	b.pending++
	if b.pending == 1 {
		b.since = now
	}
	n := b.stored + b.pending
	if !b.synced || b.pending >= int64(l.batch) || now.Sub(b.since) >= l.batchInterval || limit-n < int64(l.batch) {
		total, err := adder.IncrBy(ctx, windowKey(rule.Name, hashed, idx), b.pending, time.Duration(2*w-e))
		if err != nil {
			b.pending = min(b.pending, int64(l.batch)) // retried with the next event
			return l.storeFailed(ctx, rule, fmt.Errorf("count: %w", err))
		}
		b.stored, b.pending, b.synced = total, 0, true
		n = total
	}
	return l.decide(ctx, rule, hashed, n, w, idx, e)
}
