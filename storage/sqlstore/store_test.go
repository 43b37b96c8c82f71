package sqlstore_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/storage"
	"github.com/latchkeyid/latchkey/storage/sqlstore"
)

const testPassword = "s3cret-pa55word-that-must-not-leak"

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name    string
		o       sqlstore.Options
		wantPre string // the error starts with this
	}{
		{"unknown dialect", sqlstore.Options{Dialect: "mysql", DSN: "x"},
			`sqlstore: unknown dialect "mysql": want "sqlite" or "postgres"`},
		{"sqlite without path", sqlstore.Options{Dialect: "sqlite"},
			`sqlstore: open SQLite: the database file path is empty`},
		{"sqlite in memory", sqlstore.Options{Dialect: "sqlite", DSN: ":memory:"},
			`sqlstore: open SQLite: ":memory:" is not a file path (in-memory and URI databases are not supported)`},
		{"sqlite URI", sqlstore.Options{Dialect: "sqlite", DSN: "file:x.db?mode=ro"},
			`sqlstore: open SQLite: "file:x.db?mode=ro" is not a file path (in-memory and URI databases are not supported)`},
		{"postgres without DSN", sqlstore.Options{Dialect: "postgres"},
			`sqlstore: open PostgreSQL: the DSN is empty`},
		{"postgres malformed URL", sqlstore.Options{Dialect: "postgres", DSN: "postgres://latchkey:" + testPassword + "@db:notaport/latchkey"},
			`sqlstore: open PostgreSQL: the DSN is not a valid postgres:// URL or keyword/value connection string`},
		{"postgres unreachable URL", sqlstore.Options{Dialect: "postgres",
			DSN: "postgres://latchkey:" + testPassword + "@127.0.0.1:1/latchkey?sslmode=disable&connect_timeout=5"},
			`sqlstore: connect to PostgreSQL at postgres://latchkey@127.0.0.1:1/latchkey: `},
		{"postgres unreachable keyword/value", sqlstore.Options{Dialect: "postgres",
			DSN: "host=127.0.0.1 port=1 user=latchkey password=" + testPassword + " dbname=idp sslmode=disable connect_timeout=5"},
			`sqlstore: connect to PostgreSQL at postgres://latchkey@127.0.0.1:1/idp: `},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sqlstore.Open(t.Context(), tc.o)
			if err == nil {
				_ = s.Close()
				t.Fatalf("Open succeeded, want an error starting %q", tc.wantPre)
			}
			if !strings.HasPrefix(err.Error(), tc.wantPre) {
				t.Fatalf("Open error\n %q\nwant it to start with\n %q", err, tc.wantPre)
			}
			if strings.Contains(err.Error(), testPassword) {
				t.Fatalf("Open error reveals the password: %q", err)
			}
		})
	}
}

func TestSQLitePath(t *testing.T) {
	// A missing directory is created; characters that mean something in a
	// URI stay part of the file name.
	dir := filepath.Join(t.TempDir(), "new dir", "a?b#c%20")
	path := filepath.Join(dir, "latch key?.db")
	s := open(t, sqlstore.Options{Dialect: sqlstore.DialectSQLite, DSN: path})
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if err := s.CreateUser(t.Context(), storage.User{ID: "u1", Username: "alice"}); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("database file: %v", err)
	}
	if fi.Size() == 0 {
		t.Fatalf("database file %s is empty", path)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	// The database, its WAL files and the migration lock, nothing else.
	want := []string{"latch key?.db", "latch key?.db-migrate.lock", "latch key?.db-shm", "latch key?.db-wal"}
	if strings.Join(names, "|") != strings.Join(want, "|") {
		t.Fatalf("files in %s = %q, want %q", dir, names, want)
	}
}

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// openClock opens a migrated store of each dialect on a fake clock.
func openClock(t *testing.T, dialect string) (*sqlstore.Store, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(t0)
	return openMigrated(t, sqlstore.Options{Dialect: dialect, DSN: emptyDatabases(t, dialect)(t), Clock: clk}), clk
}

// TestTimestamps checks the times the store fills in from its clock.
func TestTimestamps(t *testing.T) {
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			s, clk := openClock(t, d)
			ctx := t.Context()
			if err := s.CreateUser(ctx, storage.User{ID: "u1", Username: "alice"}); err != nil {
				t.Fatalf("CreateUser: %v", err)
			}
			u, err := s.GetUser(ctx, "u1")
			if err != nil {
				t.Fatal(err)
			}
			if !u.CreatedAt.Equal(t0) || !u.UpdatedAt.Equal(t0) || u.CreatedAt.Location() != time.UTC {
				t.Fatalf("created %v, updated %v: want both %v in UTC", u.CreatedAt, u.UpdatedAt, t0)
			}

			clk.Advance(time.Hour + time.Nanosecond)
			if err := s.UpdateUser(ctx, "u1", func(u storage.User) (storage.User, error) {
				u.Name = "Alice"
				return u, nil
			}); err != nil {
				t.Fatal(err)
			}
			u, _ = s.GetUser(ctx, "u1")
			if want := t0.Add(time.Hour); !u.UpdatedAt.Equal(want) || !u.CreatedAt.Equal(t0) {
				t.Fatalf("after update: created %v, updated %v; want %v, %v", u.CreatedAt, u.UpdatedAt, t0, want)
			}

			explicit := t0.Add(-time.Hour)
			if err := s.UpdateUser(ctx, "u1", func(u storage.User) (storage.User, error) {
				u.UpdatedAt = explicit
				return u, nil
			}); err != nil {
				t.Fatal(err)
			}
			u, _ = s.GetUser(ctx, "u1")
			if !u.UpdatedAt.Equal(explicit) {
				t.Fatalf("updater's UpdatedAt %v not kept: %v", explicit, u.UpdatedAt)
			}

			if err := s.AppendEvent(ctx, storage.Event{Type: "user.created", UserID: "u1"}); err != nil {
				t.Fatal(err)
			}
			es, err := s.ListEvents(ctx, storage.EventFilter{})
			if err != nil || len(es) != 1 {
				t.Fatalf("ListEvents: %d, %v", len(es), err)
			}
			if want := t0.Add(time.Hour); !es[0].Time.Equal(want) || len(es[0].ID) != 32 {
				t.Fatalf("event time %v id %q: want %v and 32 hex digits", es[0].Time, es[0].ID, want)
			}

			k, err := s.UpdateKeys(ctx, func(k storage.Keys) (storage.Keys, error) { return k, nil })
			if err != nil {
				t.Fatal(err)
			}
			if want := t0.Add(time.Hour); !k.UpdatedAt.Equal(want) {
				t.Fatalf("keys updated %v, want %v", k.UpdatedAt, want)
			}
		})
	}
}

// TestNestedTx checks what the package promises beyond the conformance
// suite: an inner Tx is a savepoint, and the Store called with the Tx's
// context joins the transaction (on SQLite it would otherwise wait for the
// writer forever).
func TestNestedTx(t *testing.T) {
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			s, _ := openClock(t, d)
			e := s.Ephemeral()
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			err := s.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
				if err := tx.CreateUser(ctx, storage.User{ID: "kept", Username: "kept"}); err != nil {
					return err
				}
				// An inner failure undoes only the inner changes.
				innerErr := tx.Tx(ctx, func(ctx context.Context, inner storage.Durable) error {
					if err := inner.CreateUser(ctx, storage.User{ID: "inner", Username: "inner"}); err != nil {
						return err
					}
					return errors.New("inner fails")
				})
				if innerErr == nil || innerErr.Error() != "inner fails" {
					return errors.New("inner Tx error not returned unchanged")
				}
				// A failed updater inside the Tx changes nothing and
				// leaves the transaction usable.
				if err := tx.UpdateUser(ctx, "kept", func(u storage.User) (storage.User, error) {
					u.Username = "never"
					return u, errors.New("updater fails")
				}); err == nil {
					return errors.New("failing updater: nil error")
				}
				// The Store itself, and its Ephemeral, with ctx join.
				if err := s.CreateUser(ctx, storage.User{ID: "via-store", Username: "via-store"}); err != nil {
					return err
				}
				return e.Put(ctx, "k", []byte("v"), time.Minute)
			})
			if err != nil {
				t.Fatalf("Tx: %v", err)
			}
			us, err := s.ListUsers(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, u := range us {
				got = append(got, u.ID+"="+u.Username)
			}
			if want := "kept=kept via-store=via-store"; strings.Join(got, " ") != want {
				t.Fatalf("users = %q, want %q", strings.Join(got, " "), want)
			}
			if v, err := e.Get(ctx, "k"); err != nil || string(v) != "v" {
				t.Fatalf("ephemeral value written in the Tx: %q, %v", v, err)
			}

			// And all of it rolls back with the outer transaction.
			boom := errors.New("boom")
			err = s.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
				if err := s.CreateUser(ctx, storage.User{ID: "rolled-back"}); err != nil {
					return err
				}
				if err := e.Put(ctx, "k2", []byte("v"), time.Minute); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("Tx: %v, want boom", err)
			}
			if _, err := s.GetUser(ctx, "rolled-back"); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("user from a rolled-back Tx: %v, want ErrNotFound", err)
			}
			if _, err := e.Get(ctx, "k2"); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("ephemeral value from a rolled-back Tx: %v, want ErrNotFound", err)
			}
		})
	}
}

func TestUsersWithoutUsername(t *testing.T) {
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			s, _ := openClock(t, d)
			ctx := t.Context()
			for _, u := range []storage.User{{ID: "b"}, {ID: "a"}, {ID: "c", Username: "zed"}, {ID: "d", Username: "amy"}} {
				if err := s.CreateUser(ctx, u); err != nil {
					t.Fatalf("CreateUser(%q): %v", u.ID, err)
				}
			}
			if _, err := s.GetUserByUsername(ctx, ""); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf(`GetUserByUsername(""): %v, want ErrNotFound`, err)
			}
			us, err := s.ListUsers(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, u := range us {
				ids = append(ids, u.ID)
			}
			if got, want := strings.Join(ids, ","), "d,c,a,b"; got != want {
				t.Fatalf("ListUsers order = %s, want %s (by username, none last, then id)", got, want)
			}
		})
	}
}

func TestInvalidCalls(t *testing.T) {
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			s, _ := openClock(t, d)
			e := s.Ephemeral()
			ctx := t.Context()
			if err := s.CreateUser(ctx, storage.User{ID: "u1", Username: "alice"}); err != nil {
				t.Fatal(err)
			}
			if err := e.Put(ctx, "text", []byte("abc"), time.Minute); err != nil {
				t.Fatal(err)
			}
			_, incrErr := e.Incr(ctx, "text", time.Minute)
			tests := []struct {
				name string
				err  error
				want string
			}{
				{"create client without id", s.CreateClient(ctx, storage.Client{}), "create client: empty id"},
				{"create connector without id", s.CreateConnector(ctx, storage.Connector{}), "create connector: empty id"},
				{"create user without id", s.CreateUser(ctx, storage.User{}), "create user: empty id"},
				{"updater changes the id", s.UpdateUser(ctx, "u1", func(u storage.User) (storage.User, error) {
					u.ID = "u2"
					return u, nil
				}), `update user "u1": the updater changed the id to "u2"`},
				{"put without ttl", e.Put(ctx, "k", nil, 0), "ephemeral put: ttl 0s: must be positive"},
				{"create with negative ttl", e.Create(ctx, "k", nil, -time.Second), "ephemeral create: ttl -1s: must be positive"},
				{"cas with negative ttl", e.CompareAndSwap(ctx, "text", []byte("abc"), nil, -time.Second),
					"ephemeral compare-and-swap: ttl -1s: must not be negative"},
				{"incr of a non-counter", incrErr, "ephemeral incr: the key holds a value that is not a counter"},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					if tc.err == nil || tc.err.Error() != tc.want {
						t.Fatalf("error %v, want %q", tc.err, tc.want)
					}
					if errors.Is(tc.err, storage.ErrNotFound) || errors.Is(tc.err, storage.ErrConflict) {
						t.Fatalf("error %v wraps a storage sentinel", tc.err)
					}
				})
			}
			if u, err := s.GetUser(ctx, "u1"); err != nil || u.Username != "alice" {
				t.Fatalf("u1 after the refused update: %+v, %v", u, err)
			}
			if v, err := e.Get(ctx, "text"); err != nil || string(v) != "abc" {
				t.Fatalf("value after the refused Incr: %q, %v", v, err)
			}
		})
	}
}

// TestEphemeralClock runs expiry and Sweep on the injected clock.
func TestEphemeralClock(t *testing.T) {
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			s, clk := openClock(t, d)
			e := s.Ephemeral()
			ctx := t.Context()
			for _, k := range []string{"a", "b", "c"} {
				if err := e.Put(ctx, k, []byte(k), time.Minute); err != nil {
					t.Fatal(err)
				}
			}
			if err := e.Put(ctx, "long", []byte("x"), time.Hour); err != nil {
				t.Fatal(err)
			}
			if n, err := e.Incr(ctx, "counter", time.Minute); err != nil || n != 1 {
				t.Fatalf("Incr = %d, %v", n, err)
			}
			if d, err := e.TTL(ctx, "a"); err != nil || d != time.Minute {
				t.Fatalf("TTL = %s, %v; want exactly 1m on a stopped clock", d, err)
			}
			if n, err := e.Sweep(ctx); err != nil || n != 0 {
				t.Fatalf("Sweep before expiry = %d, %v; want 0", n, err)
			}

			clk.Advance(time.Minute) // expires_at == now: expired
			if _, err := e.Get(ctx, "a"); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("Get at expiry: %v, want ErrNotFound", err)
			}
			if _, err := e.Take(ctx, "b"); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("Take at expiry: %v, want ErrNotFound", err)
			}
			if n, err := e.Incr(ctx, "counter", 2*time.Minute); err != nil || n != 1 {
				t.Fatalf("Incr after expiry = %d, %v; want 1", n, err)
			}
			// a and c are left (Take deleted b); counter restarted.
			if n, err := e.Sweep(ctx); err != nil || n != 2 {
				t.Fatalf("Sweep = %d, %v; want 2", n, err)
			}
			if n, err := e.Sweep(ctx); err != nil || n != 0 {
				t.Fatalf("second Sweep = %d, %v; want 0", n, err)
			}
			if v, err := e.Get(ctx, "long"); err != nil || string(v) != "x" {
				t.Fatalf("live value after Sweep: %q, %v", v, err)
			}
			if d, err := e.TTL(ctx, "counter"); err != nil || d != 2*time.Minute {
				t.Fatalf("restarted counter TTL = %s, %v; want 2m", d, err)
			}
		})
	}
}

func TestMigrateLogs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	openMigrated(t, sqlstore.Options{Dialect: sqlstore.DialectSQLite, DSN: filepath.Join(t.TempDir(), "x.db"), Logger: log})
	out := buf.String()
	if !strings.Contains(out, `msg="applied migration" dialect=sqlite version=1 source=00001_initial.sql`) {
		t.Fatalf("log does not record the applied migration:\n%s", out)
	}
}
