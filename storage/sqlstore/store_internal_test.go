package sqlstore

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/latchkeyid/latchkey/internal/testenv"
)

// TestSQLiteConnections checks the settings every SQLite connection gets.
func TestSQLiteConnections(t *testing.T) {
	s, err := Open(t.Context(), Options{Dialect: DialectSQLite, DSN: filepath.Join(t.TempDir(), "x.db")})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if got := s.c.write.Stats().MaxOpenConnections; got != 1 {
		t.Fatalf("writer pool allows %d connections, want 1", got)
	}
	if s.c.read == s.c.write {
		t.Fatal("readers share the writer pool")
	}
	pragmas := func(db *sql.DB) map[string]string {
		t.Helper()
		out := map[string]string{}
		for _, p := range []string{"journal_mode", "busy_timeout", "synchronous", "foreign_keys", "query_only"} {
			var v string
			if err := db.QueryRowContext(t.Context(), "PRAGMA "+p).Scan(&v); err != nil {
				t.Fatalf("PRAGMA %s: %v", p, err)
			}
			out[p] = v
		}
		return out
	}
	tests := []struct {
		name string
		db   *sql.DB
		want map[string]string
	}{
		{"writer", s.c.write, map[string]string{"journal_mode": "wal", "busy_timeout": "10000", "synchronous": "1", "foreign_keys": "1", "query_only": "0"}},
		{"reader", s.c.read, map[string]string{"journal_mode": "wal", "busy_timeout": "10000", "synchronous": "1", "foreign_keys": "1", "query_only": "1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := pragmas(tc.db); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("pragmas = %v, want %v", got, tc.want)
			}
		})
	}
	// Writer transactions take the write lock when they begin.
	tx, err := s.c.write.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	other, err := sql.Open("sqlite", sqliteURI(s.c.path, map[string][]string{"_busy_timeout": {"0"}}))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.ExecContext(t.Context(), "CREATE TABLE t (x)"); err == nil {
		t.Fatal("another connection wrote while a writer transaction was open: BEGIN is not IMMEDIATE")
	}
}

// TestMigrateDown checks that every Down section undoes its Up: down to
// zero and up again works on both dialects.
func TestMigrateDown(t *testing.T) {
	for _, d := range []string{DialectSQLite, DialectPostgres} {
		t.Run(d, func(t *testing.T) {
			dsn := filepath.Join(t.TempDir(), "x.db")
			if d == DialectPostgres {
				dsn = testenv.Postgres(t)
			}
			s, err := Open(t.Context(), Options{Dialect: d, DSN: dsn})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			if err := s.Migrate(t.Context()); err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			p, err := s.provider()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.DownTo(t.Context(), 0); err != nil {
				t.Fatalf("DownTo(0): %v", err)
			}
			var tables int
			q := `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'goose%' AND name NOT LIKE 'sqlite%'`
			if d == DialectPostgres {
				q = `SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename NOT LIKE 'goose%'`
			}
			if err := s.c.read.QueryRowContext(t.Context(), q).Scan(&tables); err != nil {
				t.Fatal(err)
			}
			if tables != 0 {
				t.Fatalf("%d tables left after migrating down to 0", tables)
			}
			if ok, err := s.SchemaCurrent(t.Context()); err != nil || ok {
				t.Fatalf("SchemaCurrent after down = %v, %v; want false", ok, err)
			}
			if err := s.Migrate(t.Context()); err != nil {
				t.Fatalf("Migrate again: %v", err)
			}
		})
	}
}
