package sqlstore

import (
	"context"
	"database/sql"
	"sync"
)

// maxCachedStmts bounds a stmtCache. The store's statements are constants
// (ListEvents has a few shapes); anything beyond runs unprepared.
const maxCachedStmts = 256

// stmtCache keeps the prepared statements of one SQLite *sql.DB, keyed by
// query text. SQLite compiles a statement every time it is prepared, and
// database/sql prepares every unprepared query anew: on the token paths
// that parse cost as much as running the statements (pprof of the refresh
// grant: 18% of the CPU in sqlite3_prepare_v2). modernc.org/sqlite keeps
// the compiled statement of a prepared *sql.Stmt, and database/sql keeps
// one per connection. PostgreSQL needs no cache here: pgx prepares and
// caches statements per connection itself.
type stmtCache struct {
	db     *sql.DB
	mu     sync.RWMutex
	m      map[string]*sql.Stmt // nil value: being prepared
	closed bool
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, m: map[string]*sql.Stmt{}}
}

// get returns the prepared statement for query, or nil when the caller
// should run query unprepared this time. Inside a transaction on the
// SQLite writer (inTx) it never waits to prepare: the writer's only
// connection belongs to that transaction, so the statement is prepared in
// the background once the connection is free, for the next caller.
func (c *stmtCache) get(ctx context.Context, query string, inTx bool) *sql.Stmt {
	c.mu.RLock()
	st, ok := c.m[query]
	c.mu.RUnlock()
	if ok {
		return st
	}
	c.mu.Lock()
	if st, ok := c.m[query]; ok || c.closed || len(c.m) >= maxCachedStmts {
		c.mu.Unlock()
		return st
	}
	c.m[query] = nil
	c.mu.Unlock()
	if inTx {
		go c.prepare(context.WithoutCancel(ctx), query)
		return nil
	}
	return c.prepare(ctx, query)
}

func (c *stmtCache) prepare(ctx context.Context, query string) *sql.Stmt {
	st, err := c.db.PrepareContext(ctx, query)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil || c.closed {
		// An error (a table not migrated yet, a closed database) is the
		// unprepared query's to report; a later call tries again.
		delete(c.m, query)
		if st != nil {
			_ = st.Close()
		}
		return nil
	}
	c.m[query] = st
	return st
}

// close closes every cached statement; later calls run unprepared.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for q, st := range c.m {
		if st != nil {
			_ = st.Close()
		}
		delete(c.m, q)
	}
}

// cachedQuerier runs queries through a stmtCache: on the *sql.DB, or
// inside tx with the transaction's copy of the cached statement (which
// database/sql takes from the connection the statement was prepared on:
// the writer's only one). Uncached queries go to direct.
type cachedQuerier struct {
	cache  *stmtCache
	tx     *sql.Tx
	direct querier
}

func (q cachedQuerier) stmt(ctx context.Context, query string) *sql.Stmt {
	st := q.cache.get(ctx, query, q.tx != nil)
	if st == nil || q.tx == nil {
		return st
	}
	return q.tx.StmtContext(ctx, st)
}

func (q cachedQuerier) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := q.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return q.direct.ExecContext(ctx, query, args...)
}

func (q cachedQuerier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := q.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return q.direct.QueryContext(ctx, query, args...)
}

func (q cachedQuerier) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := q.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return q.direct.QueryRowContext(ctx, query, args...)
}
