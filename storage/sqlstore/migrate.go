package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"path"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
	"github.com/pressly/goose/v3/lock"

	"github.com/latchkeyid/latchkey/migrations"
)

// ErrSchemaNotMigrated is returned by RequireSchema when migrations are
// pending.
var ErrSchemaNotMigrated = errors.New("schema is not migrated: run `latchkey migrate up`")

// migrationLockID is the PostgreSQL advisory lock key for migrations, our
// own rather than goose's default, so another goose user of the same
// database does not wait for us.
var migrationLockID = int64(crc32.ChecksumIEEE([]byte("latchkey migrations")))

// How long a replica waits for another one's migration, polling each
// second (goose's session locker polls with pg_try_advisory_lock).
const (
	migrateLockPolls   = 600 // ten minutes
	migrateUnlockPolls = 60
)

// MigrationStatus is one embedded migration and whether the database has
// it.
type MigrationStatus struct {
	Version int64
	// Source is the migration's file name, e.g. "00001_initial.sql".
	Source  string
	Applied bool
	// AppliedAt is when it was applied (UTC); zero when pending.
	AppliedAt time.Time
}

func (s *Store) migrationFS() (goose.Dialect, fs.FS) {
	if s.c.dialect == DialectPostgres {
		return goose.DialectPostgres, migrations.Postgres
	}
	return goose.DialectSQLite3, migrations.SQLite
}

func (s *Store) provider() (*goose.Provider, error) {
	dialect, fsys := s.migrationFS()
	var locker lock.SessionLocker
	if s.c.dialect == DialectPostgres {
		l, err := lock.NewPostgresSessionLocker(
			lock.WithLockID(migrationLockID),
			lock.WithLockTimeout(1, migrateLockPolls),
			lock.WithUnlockTimeout(1, migrateUnlockPolls),
		)
		if err != nil {
			return nil, err
		}
		locker = l
	} else {
		// Within one process the single writer connection already
		// serialises migrations; the file lock serialises processes.
		locker = &fileLocker{path: s.c.path + migrateLockSuffix}
	}
	// The provider migrates through the writer: on SQLite that is the one
	// connection every write of this process goes through.
	return goose.NewProvider(dialect, s.c.write, fsys,
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
	)
}

// Migrate applies every pending migration under the migration lock. Any
// number of Stores, in one process or many, may call it at once: one
// applies the migrations, the others wait for the lock and find nothing to
// do. (goose first checks for pending migrations without the lock, which
// may create its version table; replicas racing to create it on a first
// start are retried by goose a second later.)
func (s *Store) Migrate(ctx context.Context) error {
	if s.tx != nil {
		return errors.New("migrate: not inside a transaction")
	}
	p, err := s.provider()
	if err != nil {
		return fmt.Errorf("migrate %s: %w", s.c.target, err)
	}
	// Not p.Close: it would close the Store's writer.
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", s.c.target, err)
	}
	for _, r := range results {
		s.c.log.InfoContext(ctx, "applied migration",
			slog.String("dialect", s.c.dialect),
			slog.Int64("version", r.Source.Version),
			slog.String("source", path.Base(r.Source.Path)),
			slog.Duration("duration", r.Duration))
	}
	if len(results) == 0 {
		s.c.log.DebugContext(ctx, "schema is current", slog.String("dialect", s.c.dialect))
	}
	return nil
}

// MigrationStatus lists the embedded migrations and which are applied. It
// only reads: it neither takes the migration lock nor creates goose's
// version table.
func (s *Store) MigrationStatus(ctx context.Context) ([]MigrationStatus, error) {
	p, err := s.provider()
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	dialect, _ := s.migrationFS()
	vs, err := database.NewStore(dialect, goose.DefaultTablename)
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	db := s.c.read
	exists, err := s.versionTableExists(ctx)
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	var out []MigrationStatus
	for _, src := range p.ListSources() {
		st := MigrationStatus{Version: src.Version, Source: path.Base(src.Path)}
		if exists {
			m, err := vs.GetMigration(ctx, db, src.Version)
			switch {
			case errors.Is(err, database.ErrVersionNotFound):
			case err != nil:
				return nil, fmt.Errorf("migration status: version %d: %w", src.Version, err)
			case m.IsApplied:
				st.Applied, st.AppliedAt = true, m.Timestamp.UTC()
			}
		}
		out = append(out, st)
	}
	return out, nil
}

// versionTableExists looks for goose's version table where goose would
// (PostgreSQL: on the search_path).
func (s *Store) versionTableExists(ctx context.Context) (bool, error) {
	q := `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1`
	if s.c.dialect == DialectPostgres {
		q = `SELECT COUNT(*) FROM (SELECT to_regclass($1) AS t) r WHERE t IS NOT NULL`
	}
	var n int
	if err := s.c.read.QueryRowContext(ctx, q, goose.DefaultTablename).Scan(&n); err != nil {
		return false, fmt.Errorf("check for table %s: %w", goose.DefaultTablename, err)
	}
	return n > 0, nil
}

// SchemaCurrent reports whether every embedded migration is applied. Like
// MigrationStatus it only reads.
func (s *Store) SchemaCurrent(ctx context.Context) (bool, error) {
	st, err := s.MigrationStatus(ctx)
	if err != nil {
		return false, err
	}
	for _, m := range st {
		if !m.Applied {
			return false, nil
		}
	}
	return true, nil
}

// RequireSchema returns nil when the schema is current and otherwise an
// error wrapping ErrSchemaNotMigrated, for commands that use the store
// without migrating it.
func (s *Store) RequireSchema(ctx context.Context) error {
	ok, err := s.SchemaCurrent(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s: %w", s.c.target, ErrSchemaNotMigrated)
	}
	return nil
}
