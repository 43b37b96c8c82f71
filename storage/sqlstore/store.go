package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/storage"
)

// Dialect names accepted in Options.Dialect.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

// Options configure Open.
type Options struct {
	// Dialect is "sqlite" or "postgres".
	Dialect string
	// DSN is, for SQLite, the path of the database file (its directory is
	// created if missing); for PostgreSQL, a postgres:// URL or a
	// keyword/value connection string.
	DSN string
	// Logger receives migration progress. Nil discards.
	Logger *slog.Logger
	// Clock stamps records, events and expiry. Nil is the system clock.
	Clock clock.Clock
}

// Connection settings and storage formats. PostgreSQL's pool is shared by every request of a
// replica; SQLite's readers are cheap, its writer is always one connection.
const (
	pgMaxOpenConns    = 25
	pgMaxIdleConns    = 10
	sqliteBusyTimeout = 10 * time.Second
	sqliteMinReaders  = 4
	connMaxIdleTime   = 5 * time.Minute
	pgConnMaxLifetime = time.Hour
	sqliteTimeLayout  = "2006-01-02T15:04:05.000000Z"
	migrateLockSuffix = "-migrate.lock"
	savepointPrefix   = "lk_sp_"
)

// Store is the SQL durable store. A Store returned by Open is safe for
// concurrent use; the Store handed to a Tx function belongs to that
// transaction and is not.
type Store struct {
	c  *core
	tx *sql.Tx // non-nil for the Store handed to a Tx function
}

var _ storage.Durable = (*Store)(nil)

// core is what every Store of one Open shares.
type core struct {
	dialect string
	read    *sql.DB // SQLite: query_only reader pool; PostgreSQL: == write
	write   *sql.DB // SQLite: the single writer connection
	path    string  // SQLite: absolute database file path
	target  string  // where the database is, without secrets, for messages
	log     *slog.Logger
	clock   clock.Clock
	spSeq   atomic.Uint64
	// SQLite only: prepared statements of the reader pool and the writer
	// (stmtcache.go). Nil on PostgreSQL.
	readStmts, writeStmts *stmtCache
	// SQLite only: group commit of the writes outside transactions
	// (writebatch.go).
	writes *writeBatcher
}

// txKey keys the active transaction of one Open in a context.
type txKey struct{ c *core }

// Open connects to the database and checks that it answers. It does not
// migrate: call Migrate (serve and `migrate up` do), or SchemaCurrent to
// tell whether someone has.
func Open(ctx context.Context, o Options) (*Store, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	clk := o.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	var (
		c   *core
		err error
	)
	switch o.Dialect {
	case DialectSQLite:
		c, err = openSQLite(ctx, o.DSN)
	case DialectPostgres:
		c, err = openPostgres(ctx, o.DSN)
	default:
		return nil, fmt.Errorf("sqlstore: unknown dialect %q: want %q or %q", o.Dialect, DialectSQLite, DialectPostgres)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: %w", err)
	}
	c.log, c.clock = log, clk
	return &Store{c: c}, nil
}

func openSQLite(ctx context.Context, path string) (*core, error) {
	switch {
	case path == "":
		return nil, errors.New("open SQLite: the database file path is empty")
	case path == ":memory:" || strings.HasPrefix(path, "file:"):
		return nil, fmt.Errorf("open SQLite: %q is not a file path (in-memory and URI databases are not supported)", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open SQLite database %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("open SQLite database %s: create its directory: %w", abs, err)
	}
	common := url.Values{
		"_busy_timeout": {strconv.FormatInt(sqliteBusyTimeout.Milliseconds(), 10)},
		"_synchronous":  {"NORMAL"},
		"_foreign_keys": {"1"},
	}
	wq := cloneValues(common)
	wq.Set("_journal_mode", "WAL")
	wq.Set("_txlock", "immediate")
	rq := cloneValues(common)
	rq.Set("_query_only", "1")

	write, err := sql.Open("sqlite", sqliteURI(abs, wq))
	if err != nil {
		return nil, fmt.Errorf("open SQLite database %s: %w", abs, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	// The writer connects first: it switches the file to WAL, which the
	// readers then find.
	if err := write.PingContext(ctx); err != nil {
		_ = write.Close()
		return nil, fmt.Errorf("open SQLite database %s: %w", abs, err)
	}
	read, err := sql.Open("sqlite", sqliteURI(abs, rq))
	if err != nil {
		_ = write.Close()
		return nil, fmt.Errorf("open SQLite database %s: %w", abs, err)
	}
	n := max(sqliteMinReaders, runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	read.SetConnMaxIdleTime(connMaxIdleTime)
	if err := read.PingContext(ctx); err != nil {
		_ = write.Close()
		_ = read.Close()
		return nil, fmt.Errorf("open SQLite database %s: %w", abs, err)
	}
	c := &core{dialect: DialectSQLite, read: read, write: write, path: abs, target: "SQLite database " + abs,
		readStmts: newStmtCache(read), writeStmts: newStmtCache(write)}
	c.writes = newWriteBatcher(write, c.writeStmts)
	return c, nil
}

// sqliteURI makes a file: URI, so that any character in the path (a '?',
// a '#') stays part of the path.
func sqliteURI(abs string, q url.Values) string {
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // Windows: file:///C:/dir/file
	}
	u := url.URL{Scheme: "file", Path: p, RawQuery: q.Encode()}
	return u.String()
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

func openPostgres(ctx context.Context, dsn string) (*core, error) {
	if dsn == "" {
		return nil, errors.New("open PostgreSQL: the DSN is empty")
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// The parser's message may quote the connection string, password
		// and all; say only that it is malformed.
		return nil, errors.New("open PostgreSQL: the DSN is not a valid postgres:// URL or keyword/value connection string")
	}
	target := describePostgres(cfg)
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(pgMaxOpenConns)
	db.SetMaxIdleConns(pgMaxIdleConns)
	db.SetConnMaxIdleTime(connMaxIdleTime)
	db.SetConnMaxLifetime(pgConnMaxLifetime)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("connect to %s: %w", target, err)
	}
	return &core{dialect: DialectPostgres, read: db, write: db, target: target}, nil
}

// describePostgres names the server and database without the password.
func describePostgres(cfg *pgx.ConnConfig) string {
	u := url.URL{Scheme: "postgres", Host: net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), Path: "/" + cfg.Database}
	if cfg.User != "" {
		u.User = url.User(cfg.User)
	}
	return "PostgreSQL at " + u.String()
}

// Dialect returns "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.c.dialect }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.c.write.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", s.c.target, err)
	}
	if s.c.read != s.c.write {
		if err := s.c.read.PingContext(ctx); err != nil {
			return fmt.Errorf("ping %s (readers): %w", s.c.target, err)
		}
	}
	return nil
}

// Close closes every connection. Closing the Store handed to a Tx function
// does nothing.
func (s *Store) Close() error {
	if s.tx != nil {
		return nil
	}
	if s.c.readStmts != nil {
		s.c.readStmts.close()
		s.c.writeStmts.close()
	}
	err := s.c.write.Close()
	if s.c.read != s.c.write {
		err = errors.Join(err, s.c.read.Close())
	}
	if err != nil {
		return fmt.Errorf("close %s: %w", s.c.target, err)
	}
	return nil
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// activeTx is the transaction this call belongs to: the Store's own, or
// the one ctx carries from an enclosing Tx.
func (s *Store) activeTx(ctx context.Context) *sql.Tx {
	if s.tx != nil {
		return s.tx
	}
	tx, _ := ctx.Value(txKey{s.c}).(*sql.Tx)
	return tx
}

// reader is where a read goes.
func (s *Store) reader(ctx context.Context) querier {
	if tx := s.activeTx(ctx); tx != nil {
		return s.inTxQuerier(tx)
	}
	if s.c.readStmts != nil {
		return cachedQuerier{cache: s.c.readStmts, direct: s.c.read}
	}
	return s.c.read
}

// writer is where a single-statement write goes.
func (s *Store) writer(ctx context.Context) querier {
	if tx := s.activeTx(ctx); tx != nil {
		return s.inTxQuerier(tx)
	}
	if s.c.writeStmts != nil {
		return cachedQuerier{cache: s.c.writeStmts, direct: s.c.write}
	}
	return s.c.write
}

// inTxQuerier runs statements in tx, prepared ones where cached.
func (s *Store) inTxQuerier(tx *sql.Tx) querier {
	if s.c.writeStmts != nil {
		return cachedQuerier{cache: s.c.writeStmts, tx: tx, direct: tx}
	}
	return tx
}

// Tx runs fn in one transaction; see the package documentation.
func (s *Store) Tx(ctx context.Context, fn func(ctx context.Context, tx storage.Durable) error) error {
	return s.inTx(ctx, func(ctx context.Context, tx *Store) error { return fn(ctx, tx) })
}

// inTx runs fn in a new transaction, or, inside one, under a savepoint of
// it. fn's error is returned unchanged.
func (s *Store) inTx(ctx context.Context, fn func(ctx context.Context, tx *Store) error) error {
	if tx := s.activeTx(ctx); tx != nil {
		return s.savepoint(ctx, tx, fn)
	}
	tx, err := s.c.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	done := false
	defer func() {
		if !done { // fn failed or panicked
			_ = tx.Rollback()
		}
	}()
	inner := &Store{c: s.c, tx: tx}
	if err := fn(context.WithValue(ctx, txKey{s.c}, tx), inner); err != nil {
		return err
	}
	done = true
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}

func (s *Store) savepoint(ctx context.Context, tx *sql.Tx, fn func(ctx context.Context, tx *Store) error) error {
	name := savepointPrefix + strconv.FormatUint(s.c.spSeq.Add(1), 10)
	if _, err := tx.ExecContext(ctx, "SAVEPOINT "+name); err != nil {
		return fmt.Errorf("begin nested transaction: %w", err)
	}
	done := false
	defer func() {
		if !done {
			// Undo fn's changes and leave the outer transaction usable
			// (on PostgreSQL, also after a failed statement).
			uctx := context.WithoutCancel(ctx)
			_, _ = tx.ExecContext(uctx, "ROLLBACK TO SAVEPOINT "+name)
			_, _ = tx.ExecContext(uctx, "RELEASE SAVEPOINT "+name)
		}
	}()
	if err := fn(context.WithValue(ctx, txKey{s.c}, tx), &Store{c: s.c, tx: tx}); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT "+name); err != nil {
		return fmt.Errorf("end nested transaction: %w", err)
	}
	done = true
	return nil
}

// forUpdate is the row-lock clause for a read-modify-write. SQLite needs
// none: its writer transaction already excludes every other writer.
func (s *Store) forUpdate() string {
	if s.c.dialect == DialectPostgres {
		return " FOR UPDATE"
	}
	return ""
}

// now is the clock's time as stored.
func (s *Store) now() time.Time { return normTime(s.c.clock.Now()) }
