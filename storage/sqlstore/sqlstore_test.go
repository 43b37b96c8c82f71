package sqlstore_test

import (
	"context"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/storage"
	"github.com/latchkeyid/latchkey/storage/conformance"
	"github.com/latchkeyid/latchkey/storage/sqlstore"
)

var dialects = []string{sqlstore.DialectSQLite, sqlstore.DialectPostgres}

// emptyDatabases returns a function that makes a DSN for a new, empty
// database for each test. On PostgreSQL that is a new schema (selected with
// search_path) in one database made for t, since CREATE DATABASE takes
// seconds.
func emptyDatabases(t *testing.T, dialect string) func(t *testing.T) string {
	t.Helper()
	if dialect == sqlstore.DialectSQLite {
		return func(t *testing.T) string { return filepath.Join(t.TempDir(), "latchkey.db") }
	}
	base := testenv.Postgres(t)
	return func(t *testing.T) string {
		t.Helper()
		schema := "s_" + testenv.RandomSuffix(t, 6)
		conn, err := pgx.Connect(t.Context(), base)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(t.Context(), "CREATE SCHEMA "+schema); err != nil {
			t.Fatalf("create schema: %v", err)
		}
		u, err := url.Parse(base)
		if err != nil {
			t.Fatalf("parse DSN: %v", err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		// Tests need no durability across a server crash; not waiting for
		// the WAL flush keeps them fast on a busy disk.
		q.Set("synchronous_commit", "off")
		u.RawQuery = q.Encode()
		return u.String()
	}
}

// open opens dsn and closes it when t ends.
func open(t *testing.T, o sqlstore.Options) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(t.Context(), o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// openMigrated opens a new, empty database and migrates it.
func openMigrated(t *testing.T, o sqlstore.Options) *sqlstore.Store {
	t.Helper()
	s := open(t, o)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

func TestDurable(t *testing.T) {
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			dsn := emptyDatabases(t, d)
			conformance.RunDurable(t, func(t *testing.T) storage.Durable {
				return openMigrated(t, sqlstore.Options{Dialect: d, DSN: dsn(t)})
			})
		})
	}
}

func TestEphemeral(t *testing.T) {
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			dsn := emptyDatabases(t, d)
			conformance.RunEphemeral(t, func(t *testing.T) storage.Ephemeral {
				return openMigrated(t, sqlstore.Options{Dialect: d, DSN: dsn(t)}).Ephemeral()
			})
		})
	}
}
