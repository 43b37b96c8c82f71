package broker

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/latchkeyid/latchkey/storage"
)

// maxQueuedEvents bounds the events waiting to be written; beyond it a
// request writes its event itself (back-pressure instead of memory).
const maxQueuedEvents = 4096

// eventQueue writes the audit events that describe no state change to
// commit with (token.issued: the tokens are signed values, nothing is
// stored) in the background, a batch per transaction, when
// Options.BatchTokenEvents is on. One writer goroutine runs while events
// are waiting and ends when the queue is empty; WaitEvents waits for it.
// Events still queued when the process is killed (not stopped) are lost:
// those that arrived since the running batch's commit began, at most
// maxQueuedEvents (docs/decisions.md).
type eventQueue struct {
	on      bool
	mu      sync.Mutex
	pending []storage.Event
	spare   []storage.Event
	running bool
	done    sync.WaitGroup
}

// auditBatched writes e through the event queue when batching is on, and
// like audit otherwise.
func (b *Broker) auditBatched(ctx context.Context, e storage.Event) {
	q := b.events
	if !q.on {
		b.audit(ctx, e)
		return
	}
	if e.Time.IsZero() {
		e.Time = b.now()
	}
	q.mu.Lock()
	if len(q.pending) >= maxQueuedEvents {
		q.mu.Unlock()
		b.audit(ctx, e)
		return
	}
	q.pending = append(q.pending, e)
	start := !q.running
	if start {
		q.running = true
		q.done.Add(1)
	}
	q.mu.Unlock()
	if start {
		go b.writeQueuedEvents(context.WithoutCancel(ctx))
	}
}

// writeQueuedEvents writes batches until the queue is empty.
func (b *Broker) writeQueuedEvents(ctx context.Context) {
	q := b.events
	defer q.done.Done()
	for {
		q.mu.Lock()
		batch := q.pending
		q.pending, q.spare = q.spare[:0], nil
		if len(batch) == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()
		b.writeEvents(ctx, batch)
		clear(batch)
		q.mu.Lock()
		if q.spare == nil {
			q.spare = batch[:0]
		}
		q.mu.Unlock()
	}
}

// writeEvents appends a batch in one transaction; if that fails, one by
// one, so one bad event does not lose the others (each failure is logged).
func (b *Broker) writeEvents(ctx context.Context, batch []storage.Event) {
	if len(batch) > 1 {
		err := b.store.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
			for _, e := range batch {
				if err := tx.AppendEvent(ctx, e); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil {
			return
		}
		b.log.WarnContext(ctx, "write audit events in one transaction; writing them one by one",
			slog.Int("events", len(batch)), slog.Any("error", err))
	}
	for _, e := range batch {
		b.audit(ctx, e)
	}
}

// WaitEvents waits until the queued audit events are written, or ctx
// ends. Call it once no grant is running any more (serve: after draining
// requests, before closing the store).
func (b *Broker) WaitEvents(ctx context.Context) error {
	if err := waitGroup(ctx, &b.events.done); err != nil {
		return fmt.Errorf("wait for queued audit events: %w", err)
	}
	return nil
}
