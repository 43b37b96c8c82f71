package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"sync"
)

// maxWriteBatch bounds the writes one group commit runs.
const maxWriteBatch = 128

// writeFunc is one write that would otherwise be its own transaction:
// one statement (or a statement and the read that explains it), run
// through q. It keeps its results in its own variables and returns only
// database errors; an outcome such as "no row" is a result, not an
// error. It may run twice if the group it ran in failed (the failed
// group's changes are rolled back first).
type writeFunc func(ctx context.Context, q querier) error

// writeBatcher is group commit on the SQLite writer for the single
// statements that run outside a transaction: audit events, and the
// ephemeral store's Put, Create, Take, CompareAndSwap, Delete and Incr
// (auth requests, codes, sessions, rate-limit counters). Each of those was
// its own transaction on the single writer, and its commit (WAL frames for
// the table and each index) cost more than the statement: pprof of the
// client_credentials grant put 43% of its CPU in the audit event alone,
// half of it in the commit's pwrite calls, and the token endpoint's rate
// limit counter then added another such commit. Writes that arrive while a
// commit runs queue up, and the next commit runs all of them in one
// transaction, in arrival order. Every call still returns only after its
// own write has committed, with its own result; a database error in a
// group rolls the group back and runs its writes one transaction each, so
// one bad write cannot fail the others.
//
// There is no goroutine of its own: the caller that finds no commit
// running leads one, and hands the lead to the first waiting caller when
// it is done, so no caller runs more than one group.
type writeBatcher struct {
	db    *sql.DB
	stmts *stmtCache

	mu    sync.Mutex
	busy  bool // a caller is leading a commit
	queue []*pendingWrite
}

type pendingWrite struct {
	fn  writeFunc
	err error
	// wake receives true when this caller is to lead the next commit,
	// false when its write has committed (or failed: err).
	wake chan bool
}

func newWriteBatcher(db *sql.DB, stmts *stmtCache) *writeBatcher {
	return &writeBatcher{db: db, stmts: stmts}
}

// run runs fn in a group commit and returns its error.
func (b *writeBatcher) run(ctx context.Context, fn writeFunc) error {
	p := &pendingWrite{fn: fn, wake: make(chan bool, 1)}
	b.mu.Lock()
	b.queue = append(b.queue, p)
	if b.busy {
		b.mu.Unlock()
		if lead := <-p.wake; !lead {
			return p.err
		}
		b.mu.Lock()
	} else {
		// Lead the next commit, but first let the goroutines that are
		// ready to run (other requests on their way to their own write)
		// join it: with one P (a server on one core) nothing else would
		// run until this commit is done, and every group would be one
		// write. Without such goroutines this returns at once.
		b.busy = true
		b.mu.Unlock()
		runtime.Gosched()
		b.mu.Lock()
	}
	n := min(len(b.queue), maxWriteBatch)
	batch := b.queue[:n:n]
	b.queue = b.queue[n:]
	b.mu.Unlock()

	// The leader runs the others' writes too: its own cancellation must
	// not fail them.
	b.commit(context.WithoutCancel(ctx), batch)

	for _, q := range batch {
		if q != p {
			q.wake <- false
		}
	}
	b.mu.Lock()
	if len(b.queue) > 0 {
		next := b.queue[0]
		b.mu.Unlock()
		next.wake <- true
	} else {
		b.busy = false
		b.mu.Unlock()
	}
	return p.err
}

// commit runs batch, setting each write's err.
func (b *writeBatcher) commit(ctx context.Context, batch []*pendingWrite) {
	direct := cachedQuerier{cache: b.stmts, direct: b.db}
	if len(batch) == 1 {
		batch[0].err = batch[0].fn(ctx, direct)
		return
	}
	if err := b.commitTx(ctx, batch); err == nil {
		return
	}
	// Nothing was written: one transaction per write, each with its own
	// error.
	for _, p := range batch {
		p.err = p.fn(ctx, direct)
	}
}

// commitTx runs every write of batch in one transaction. The first error
// stops it (the next statements must not run, in case SQLite rolled the
// transaction back) and rolls everything back.
func (b *writeBatcher) commitTx(ctx context.Context, batch []*pendingWrite) (err error) {
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	q := cachedQuerier{cache: b.stmts, tx: tx, direct: tx}
	for _, p := range batch {
		if err := p.fn(ctx, q); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	for _, p := range batch {
		p.err = nil
	}
	return nil
}

// write runs fn as its own write: inside the caller's transaction if ctx
// (or the Store) has one, else in a group commit on SQLite, else (on
// PostgreSQL, whose connections commit in parallel) on its own.
func (s *Store) write(ctx context.Context, fn writeFunc) error {
	if s.activeTx(ctx) == nil && s.c.writes != nil {
		return s.c.writes.run(ctx, fn)
	}
	return fn(ctx, s.writer(ctx))
}
