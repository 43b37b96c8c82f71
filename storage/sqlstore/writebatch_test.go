package sqlstore_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/storage"
	"github.com/latchkeyid/latchkey/storage/sqlstore"
)

// TestAppendEventGroupCommit appends events from many goroutines at once
// (SQLite commits them in shared transactions, writebatch.go) with some
// ids appended twice: every event is stored once, every duplicate gets
// its own storage.ErrConflict, and nobody else's append fails with it.
func TestAppendEventGroupCommit(t *testing.T) {
	ctx := t.Context()
	s, err := sqlstore.Open(ctx, sqlstore.Options{Dialect: sqlstore.DialectSQLite, DSN: filepath.Join(t.TempDir(), "x.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	const (
		writers   = 32
		perWriter = 20
	)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		ok        = map[string]int{}
		conflicts = map[string]int{}
		other     []error
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				id := fmt.Sprintf("e-%d-%d", w, i)
				if i%5 == 0 {
					id = fmt.Sprintf("dup-%d", i) // every writer appends these
				}
				err := s.AppendEvent(ctx, storage.Event{ID: id, Type: "test.event", Time: at, UserID: "u", Data: map[string]any{"w": w}})
				mu.Lock()
				switch {
				case err == nil:
					ok[id]++
				case errors.Is(err, storage.ErrConflict):
					conflicts[id]++
				default:
					other = append(other, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(other) > 0 {
		t.Fatalf("%d appends failed, first: %v", len(other), other[0])
	}
	for id, n := range ok {
		if n != 1 {
			t.Errorf("%s appended %d times", id, n)
		}
	}
	for id, n := range conflicts {
		if ok[id] != 1 || n != writers-1 {
			t.Errorf("%s: %d conflicts and %d successes, want %d and 1", id, n, ok[id], writers-1)
		}
	}
	got, err := s.ListEvents(ctx, storage.EventFilter{Type: "test.event"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ok) {
		t.Fatalf("%d events stored, %d appends succeeded", len(got), len(ok))
	}
	seen := map[string]bool{}
	for _, e := range got {
		if seen[e.ID] || ok[e.ID] != 1 {
			t.Errorf("stored event %s: seen before %v, appended %d times", e.ID, seen[e.ID], ok[e.ID])
		}
		seen[e.ID] = true
	}
}

// TestEphemeralGroupCommit runs the ephemeral store's writes from many
// goroutines at once, so they share commits: counters count every
// increment once, one Create and one Take of a key win, and a
// CompareAndSwap sees the writes committed before it.
func TestEphemeralGroupCommit(t *testing.T) {
	ctx := t.Context()
	s, err := sqlstore.Open(ctx, sqlstore.Options{Dialect: sqlstore.DialectSQLite, DSN: filepath.Join(t.TempDir(), "x.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	e := s.Ephemeral()
	const (
		workers = 32
		rounds  = 10
	)
	var (
		wg             sync.WaitGroup
		mu             sync.Mutex
		created, taken = map[int]int{}, map[int]int{}
		maxCount       int64
		errs           []error
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				n, err := e.Incr(ctx, "counter", time.Minute)
				cerr := e.Create(ctx, fmt.Sprintf("once-%d", r), []byte{byte(w)}, time.Minute)
				v, terr := e.Take(ctx, fmt.Sprintf("once-%d", r))
				perr := e.Put(ctx, fmt.Sprintf("w-%d", w), []byte("x"), time.Minute)
				mu.Lock()
				if err != nil || perr != nil {
					errs = append(errs, errors.Join(err, perr))
				}
				maxCount = max(maxCount, n)
				switch {
				case cerr == nil:
					created[r]++
				case !errors.Is(cerr, storage.ErrConflict):
					errs = append(errs, cerr)
				}
				switch {
				case terr == nil && len(v) == 1:
					taken[r]++
				case terr != nil && !errors.Is(terr, storage.ErrNotFound):
					errs = append(errs, terr)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d errors, first: %v", len(errs), errs[0])
	}
	if maxCount != workers*rounds {
		t.Errorf("counter reached %d, want %d", maxCount, workers*rounds)
	}
	for r := range rounds {
		// Each round's key may be created again after a Take removed it,
		// but every value created is taken at most once.
		if created[r] < 1 || taken[r] > created[r] {
			t.Errorf("round %d: created %d times, taken %d times", r, created[r], taken[r])
		}
	}
	for w := range workers {
		if v, err := e.Get(ctx, fmt.Sprintf("w-%d", w)); err != nil || string(v) != "x" {
			t.Errorf("w-%d = %q, %v", w, v, err)
		}
	}
	if err := e.CompareAndSwap(ctx, "w-0", []byte("x"), []byte("y"), 0); err != nil {
		t.Fatalf("compare-and-swap: %v", err)
	}
	if err := e.CompareAndSwap(ctx, "w-0", []byte("x"), []byte("z"), 0); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("compare-and-swap of a changed value = %v, want ErrConflict", err)
	}
	if err := e.CompareAndSwap(ctx, "missing", []byte("x"), []byte("z"), 0); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("compare-and-swap of a missing key = %v, want ErrNotFound", err)
	}
}
