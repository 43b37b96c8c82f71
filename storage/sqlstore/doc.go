// Package sqlstore is the durable store on SQL: SQLite (modernc.org/sqlite,
// pure Go, the embedded default) and PostgreSQL (jackc/pgx/v5 through
// database/sql, for production and scale-out). It implements
// storage.Durable, and through Store.Ephemeral also storage.Ephemeral on the
// same database, so a single binary with SQLite needs nothing else.
//
// Open connects and pings; it does not migrate. Migrate applies the
// embedded migrations (package migrations) with goose under a lock: a
// PostgreSQL advisory lock (goose's session locker), or on SQLite an
// exclusive lock on the file <database>-migrate.lock next to the database,
// so several replicas starting at once migrate exactly once.
// MigrationStatus and SchemaCurrent read the goose version table without
// changing anything.
//
// # Connections
//
// SQLite runs in WAL mode with busy_timeout, synchronous=NORMAL and
// foreign_keys=on. All writes go through one writer connection (a *sql.DB
// with one open connection, transactions BEGIN IMMEDIATE); reads outside a
// transaction use a pool of query_only reader connections. PostgreSQL uses
// one pool for both.
//
// On SQLite every statement is prepared once and kept (stmtcache.go):
// SQLite compiles a statement each time it is prepared, which on the token
// paths cost as much as running it. Writes outside a transaction (audit
// events, the ephemeral store's writes) share commits with the ones
// arriving at the same time (group commit, writebatch.go): each still
// returns after its own write committed, with its own result.
//
// # Atomicity
//
// Update* run read-modify-write in one transaction: on SQLite the
// immediate transaction on the single writer serialises them; on PostgreSQL
// the row is read with SELECT ... FOR UPDATE. UpdateKeys is a
// compare-and-swap on the version column (the updater runs outside any
// lock, so a replica that loses the race gets storage.ErrConflict). Create*
// and AppendEvent insert with ON CONFLICT DO NOTHING and report
// storage.ErrConflict when no row was inserted, so a duplicate does not
// abort a surrounding PostgreSQL transaction.
//
// # Transactions
//
// Tx runs fn in one transaction. The Durable handed to fn, and any method of
// this Store called with the context handed to fn, use that transaction
// (including the Ephemeral store on the same database). Tx inside Tx, and
// an Update* inside Tx, joins the outer transaction under a SAVEPOINT: if
// the inner function fails, only its own changes are undone. Calling the
// Store with a context that does not carry the transaction from inside fn
// would wait for the SQLite writer the transaction holds; don't.
//
// # Records
//
// Times are stored in UTC with microsecond precision and returned in UTC.
// Create* fill a zero CreatedAt from the clock and a zero UpdatedAt from
// CreatedAt; Update* set UpdatedAt to the clock's time when the updater
// left it unchanged. Raw JSON fields (Client.JWKS, Connector.Config,
// Keys.Data) come back byte for byte; Client.Extra and Event.Data
// round-trip through JSON (numbers come back as float64). A user with an
// empty Username is stored with none, so any number of such users may
// exist; usernames that are set are unique.
package sqlstore
