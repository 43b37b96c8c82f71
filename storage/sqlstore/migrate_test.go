package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/pressly/goose/v3/database"

	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/migrations"
	"github.com/latchkeyid/latchkey/storage/sqlstore"
)

// wantMigrations is the embedded migration list: version and file name.
func wantMigrations(t *testing.T, dialect string) []sqlstore.MigrationStatus {
	t.Helper()
	fsys := migrations.SQLite
	if dialect == sqlstore.DialectPostgres {
		fsys = migrations.Postgres
	}
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil || len(names) == 0 {
		t.Fatalf("embedded migrations: %v, %d files", err, len(names))
	}
	var out []sqlstore.MigrationStatus
	for i, n := range names {
		out = append(out, sqlstore.MigrationStatus{Version: int64(i + 1), Source: n})
	}
	return out
}

// versionRows returns goose's version table as "version:count" lines, or
// nil if the table does not exist.
func versionRows(t *testing.T, dialect, dsn string) []string {
	t.Helper()
	ctx := t.Context()
	const q = `SELECT version_id, COUNT(*) FROM goose_db_version GROUP BY version_id ORDER BY version_id`
	var out []string
	scan := func(next func() bool, scan func(...any) error) {
		for next() {
			var v, n int64
			if err := scan(&v, &n); err != nil {
				t.Fatalf("scan: %v", err)
			}
			out = append(out, itoa(v)+":"+itoa(n))
		}
	}
	if dialect == sqlstore.DialectSQLite {
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer db.Close()
		var exists bool
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) > 0 FROM sqlite_master WHERE name = 'goose_db_version'`).Scan(&exists); err != nil {
			t.Fatalf("check version table: %v", err)
		}
		if !exists {
			return nil
		}
		rows, err := db.QueryContext(ctx, q)
		if err != nil {
			t.Fatalf("query: %v", err)
		}
		defer rows.Close()
		scan(rows.Next, rows.Scan)
		return out
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('goose_db_version') IS NOT NULL`).Scan(&exists); err != nil {
		t.Fatalf("check version table: %v", err)
	}
	if !exists {
		return nil
	}
	rows, err := conn.Query(ctx, q)
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	defer rows.Close()
	scan(rows.Next, rows.Scan)
	return out
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// freshDatabase is a new database of its own (not a schema in a shared
// one), as replicas would share.
func freshDatabase(t *testing.T, dialect string) string {
	t.Helper()
	if dialect == sqlstore.DialectSQLite {
		return filepath.Join(t.TempDir(), "data", "latchkey.db")
	}
	return testenv.Postgres(t)
}

// createVersionTable makes goose's version table (version 0 only), as a
// crashed first start would leave it. Replicas then skip creating it and
// go straight to listing pending migrations, which is where only the
// migration lock keeps two of them from applying the same version.
func createVersionTable(t *testing.T, dialect, dsn string) {
	t.Helper()
	ctx := t.Context()
	gd := database.DialectSQLite3
	db, err := sql.Open("sqlite", dsn)
	if dialect == sqlstore.DialectPostgres {
		gd = database.DialectPostgres
		db, err = sql.Open("pgx", dsn)
	}
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer db.Close()
	vs, err := database.NewStore(gd, "goose_db_version")
	if err != nil {
		t.Fatalf("goose store: %v", err)
	}
	if err := vs.CreateVersionTable(ctx, db); err != nil {
		t.Fatalf("create version table: %v", err)
	}
	if err := vs.Insert(ctx, db, database.InsertRequest{Version: 0}); err != nil {
		t.Fatalf("insert version 0: %v", err)
	}
}

// TestMigrateConcurrently starts several replicas on one database at once:
// every Migrate succeeds and each version is applied exactly once.
func TestMigrateConcurrently(t *testing.T) {
	const replicas = 3
	for _, d := range dialects {
		for _, tc := range []struct {
			name         string
			versionTable bool
		}{
			{"empty database", false},
			{"version table exists", true},
		} {
			t.Run(d+"/"+tc.name, func(t *testing.T) {
				dsn := freshDatabase(t, d)
				stores := make([]*sqlstore.Store, replicas)
				for i := range stores {
					stores[i] = open(t, sqlstore.Options{Dialect: d, DSN: dsn})
				}
				if tc.versionTable {
					createVersionTable(t, d, dsn)
				}
				start := make(chan struct{})
				errs := make([]error, replicas)
				var wg sync.WaitGroup
				for i, s := range stores {
					wg.Go(func() {
						<-start
						errs[i] = s.Migrate(t.Context())
					})
				}
				close(start)
				wg.Wait()
				for i, err := range errs {
					if err != nil {
						t.Fatalf("replica %d: Migrate: %v", i, err)
					}
				}
				want := []string{"0:1"}
				for _, m := range wantMigrations(t, d) {
					want = append(want, itoa(m.Version)+":1")
				}
				got := versionRows(t, d, dsn)
				if strings.Join(got, " ") != strings.Join(want, " ") {
					t.Fatalf("goose_db_version (version:rows) = %v, want %v", got, want)
				}
				for i, s := range stores {
					ok, err := s.SchemaCurrent(t.Context())
					if err != nil || !ok {
						t.Fatalf("replica %d: SchemaCurrent = %v, %v; want true, nil", i, ok, err)
					}
				}
			})
		}
	}
}

func TestMigrationStatus(t *testing.T) {
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			ctx := t.Context()
			dsn := freshDatabase(t, d)
			s := open(t, sqlstore.Options{Dialect: d, DSN: dsn})
			want := wantMigrations(t, d)

			// Before Migrate: everything pending, and looking changed nothing.
			st, err := s.MigrationStatus(ctx)
			if err != nil {
				t.Fatalf("MigrationStatus: %v", err)
			}
			if !equalStatus(st, want) {
				t.Fatalf("MigrationStatus before Migrate = %+v, want %+v", st, want)
			}
			ok, err := s.SchemaCurrent(ctx)
			if err != nil || ok {
				t.Fatalf("SchemaCurrent before Migrate = %v, %v; want false, nil", ok, err)
			}
			err = s.RequireSchema(ctx)
			if !errors.Is(err, sqlstore.ErrSchemaNotMigrated) {
				t.Fatalf("RequireSchema before Migrate: %v, want ErrSchemaNotMigrated", err)
			}
			if !strings.HasSuffix(err.Error(), ": schema is not migrated: run `latchkey migrate up`") {
				t.Fatalf("RequireSchema message %q", err)
			}
			if rows := versionRows(t, d, dsn); rows != nil {
				t.Fatalf("status checks created goose's version table: %v", rows)
			}

			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			// A second Migrate finds nothing to do.
			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("second Migrate: %v", err)
			}
			st, err = s.MigrationStatus(ctx)
			if err != nil {
				t.Fatalf("MigrationStatus: %v", err)
			}
			for i := range want {
				want[i].Applied = true
			}
			if !equalStatus(st, want) {
				t.Fatalf("MigrationStatus after Migrate = %+v, want %+v", st, want)
			}
			for _, m := range st {
				if m.AppliedAt.IsZero() {
					t.Fatalf("migration %d: applied with a zero AppliedAt", m.Version)
				}
			}
			if err := s.RequireSchema(ctx); err != nil {
				t.Fatalf("RequireSchema after Migrate: %v", err)
			}
		})
	}
}

// equalStatus compares all but AppliedAt.
func equalStatus(got, want []sqlstore.MigrationStatus) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g := got[i]
		if !g.Applied && !g.AppliedAt.IsZero() {
			return false
		}
		g.AppliedAt = want[i].AppliedAt
		if g != want[i] {
			return false
		}
	}
	return true
}
