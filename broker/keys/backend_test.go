package keys_test

import (
	"path/filepath"
	"testing"

	"github.com/latchkeyid/latchkey/broker/keys"
	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/storage/sqlstore"
)

// backend is a real durable store the tests run against.
type backend struct {
	name string
	// newDB creates an empty, migrated database and returns a function
	// that opens a new connection pool to it: one replica's store.
	newDB func(t *testing.T) func(t testing.TB) keys.Store
}

func backends() []backend {
	return []backend{
		{name: "sqlite", newDB: func(t *testing.T) func(t testing.TB) keys.Store {
			return migrated(t, sqlstore.DialectSQLite, filepath.Join(t.TempDir(), "latchkey.db"))
		}},
		{name: "postgres", newDB: func(t *testing.T) func(t testing.TB) keys.Store {
			return migrated(t, sqlstore.DialectPostgres, testenv.Postgres(t))
		}},
	}
}

func migrated(t testing.TB, dialect, dsn string) func(t testing.TB) keys.Store {
	t.Helper()
	open := func(t testing.TB) keys.Store {
		t.Helper()
		s, err := sqlstore.Open(t.Context(), sqlstore.Options{Dialect: dialect, DSN: dsn})
		if err != nil {
			t.Fatalf("open %s store: %v", dialect, err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("close %s store: %v", dialect, err)
			}
		})
		return s
	}
	s := open(t).(*sqlstore.Store)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("migrate %s store: %v", dialect, err)
	}
	return open
}
