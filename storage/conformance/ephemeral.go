package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/storage"
)

// Timing of the expiry checks. Values written with ephShortTTL must be gone
// ephExpiryWait after the last of them was written; the margin is generous
// so a loaded machine does not make the suite flaky.
const (
	ephShortTTL   = 300 * time.Millisecond
	ephExpiryWait = 800 * time.Millisecond
	ephLongTTL    = time.Minute
	// ephWorkers is the number of goroutines racing in the concurrency tests.
	ephWorkers = 20
)

// ephCase is one sub-test of RunEphemeral. key returns a key unique to the
// sub-test and to this run of the suite.
type ephCase struct {
	name string
	fn   func(t *testing.T, s storage.Ephemeral, key func(string) string)
}

// RunEphemeral runs the suite every storage.Ephemeral backend passes.
//
// open is called once; the store it returns is shared by every sub-test,
// each of which uses keys of its own (under a prefix random to this run), so
// the store may be shared with other tests too. open registers whatever
// cleanup the store needs with t.Cleanup; the suite never calls Close. The
// suite runs on the real clock and sleeps once, for under a second, to let
// short TTLs lapse.
func RunEphemeral(t *testing.T, open func(t *testing.T) storage.Ephemeral) {
	t.Helper()
	s := open(t)
	if s == nil {
		t.Fatal("open returned a nil storage.Ephemeral")
	}
	run := "conformance-ephemeral/" + ephRandomHex(t) + "/"
	cases := []ephCase{
		{"Ping", ephTestPing},
		{"PutGet", ephTestPutGet},
		{"GetMissing", ephTestGetMissing},
		{"PutOverwrites", ephTestPutOverwrites},
		{"KeysAreDistinct", ephTestKeysAreDistinct},
		{"Create", ephTestCreate},
		{"Delete", ephTestDelete},
		{"Take", ephTestTake},
		{"TTL", ephTestTTL},
		{"CompareAndSwap", ephTestCompareAndSwap},
		{"Incr", ephTestIncr},
		{"Expiry", ephTestExpiry},
		{"TakeConcurrent", ephTestTakeConcurrent},
		{"CreateConcurrent", ephTestCreateConcurrent},
		{"CompareAndSwapConcurrent", ephTestCASConcurrent},
		{"IncrConcurrent", ephTestIncrConcurrent},
		{"IncrBy", ephTestIncrBy},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.fn(t, s, func(k string) string { return run + c.name + "/" + k })
		})
	}
}

func ephRandomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random: %v", err)
	}
	return hex.EncodeToString(b)
}

// --- helpers ---------------------------------------------------------------

func ephPut(t *testing.T, s storage.Ephemeral, key string, v []byte, ttl time.Duration) {
	t.Helper()
	if err := s.Put(t.Context(), key, v, ttl); err != nil {
		t.Fatalf("Put(%q, ttl %s): %v", key, ttl, err)
	}
}

func ephWantValue(t *testing.T, s storage.Ephemeral, key string, want []byte) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v, want value %q", key, err, want)
	}
	if !bytes.Equal(got, want) || len(got) != len(want) {
		t.Fatalf("Get(%q) = %q (len %d), want %q (len %d)", key, ephShort(got), len(got), ephShort(want), len(want))
	}
}

// ephWantErr fails unless err matches want exactly: nil for nil, otherwise
// errors.Is(err, want) and not the other sentinel.
func ephWantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("%s: %v, want nil", what, err)
	case want == nil:
		return
	case !errors.Is(err, want):
		t.Fatalf("%s: error %v, want errors.Is(err, %v)", what, err, want)
	case want == storage.ErrNotFound && errors.Is(err, storage.ErrConflict),
		want == storage.ErrConflict && errors.Is(err, storage.ErrNotFound):
		t.Fatalf("%s: error %v matches both ErrNotFound and ErrConflict", what, err)
	}
}

func ephWantGone(t *testing.T, s storage.Ephemeral, key string) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	if err == nil {
		t.Fatalf("Get(%q) = %q, want ErrNotFound", key, ephShort(got))
	}
	ephWantErr(t, fmt.Sprintf("Get(%q)", key), err, storage.ErrNotFound)
}

// ephWantTTL fails unless TTL(key) is in (lo, hi].
func ephWantTTL(t *testing.T, s storage.Ephemeral, key string, lo, hi time.Duration) {
	t.Helper()
	d, err := s.TTL(t.Context(), key)
	if err != nil {
		t.Fatalf("TTL(%q): %v", key, err)
	}
	if d <= lo || d > hi {
		t.Fatalf("TTL(%q) = %s, want in (%s, %s]", key, d, lo, hi)
	}
}

func ephIncr(t *testing.T, s storage.Ephemeral, key string, ttl time.Duration) int64 {
	t.Helper()
	n, err := s.Incr(t.Context(), key, ttl)
	if err != nil {
		t.Fatalf("Incr(%q, %s): %v", key, ttl, err)
	}
	return n
}

// ephShort abbreviates large values in failure messages.
func ephShort(b []byte) []byte {
	if len(b) > 64 {
		return append(slices.Clip(b[:64]), "..."...)
	}
	return b
}

// ephRace starts n goroutines at once and returns their results in order.
func ephRace[T any](ctx context.Context, n int, fn func(ctx context.Context, i int) T) []T {
	out := make([]T, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			out[i] = fn(ctx, i)
		})
	}
	close(start)
	wg.Wait()
	return out
}

// --- sub-tests -------------------------------------------------------------

func ephTestPing(t *testing.T, s storage.Ephemeral, _ func(string) string) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func ephTestPutGet(t *testing.T, s storage.Ephemeral, key func(string) string) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	large := make([]byte, 64<<10)
	for i := range large {
		large[i] = byte(i*7 + i>>8)
	}
	tests := []struct {
		name  string
		value []byte
	}{
		{"text", []byte(`{"client_id":"app","state":"xyz"}`)},
		{"empty", []byte{}},
		{"nul bytes", []byte{0, 'a', 0, 0, 'b', 0}},
		{"only nul", []byte{0}},
		{"every byte", all},
		{"invalid utf8", []byte{0xff, 0xfe, 0xc3, 0x28}},
		{"64 KiB", large},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := key(tc.name)
			ephPut(t, s, k, tc.value, ephLongTTL)
			ephWantValue(t, s, k, tc.value)
		})
	}
}

func ephTestGetMissing(t *testing.T, s storage.Ephemeral, key func(string) string) {
	ephWantGone(t, s, key("never-written"))
}

func ephTestPutOverwrites(t *testing.T, s storage.Ephemeral, key func(string) string) {
	k := key("k")
	ephPut(t, s, k, []byte("first"), ephLongTTL)
	ephPut(t, s, k, []byte("second, longer value"), ephLongTTL)
	ephWantValue(t, s, k, []byte("second, longer value"))
	ephPut(t, s, k, []byte("3"), ephLongTTL)
	ephWantValue(t, s, k, []byte("3"))
}

func ephTestKeysAreDistinct(t *testing.T, s storage.Ephemeral, key func(string) string) {
	// Keys are opaque: case, trailing space, separators, braces (Redis
	// Cluster hash tags) and non-ASCII all make different keys.
	names := []string{"k", "K", "k ", " k", "k:sub", "k/sub", "{k}", "ключ", "k%", "k_", "k'"}
	for i, n := range names {
		ephPut(t, s, key(n), []byte(fmt.Sprintf("value %d", i)), ephLongTTL)
	}
	for i, n := range names {
		ephWantValue(t, s, key(n), []byte(fmt.Sprintf("value %d", i)))
	}
	if err := s.Delete(t.Context(), key("k")); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	ephWantGone(t, s, key("k"))
	ephWantValue(t, s, key("K"), []byte("value 1"))
	ephWantValue(t, s, key("k "), []byte("value 2"))
}

func ephTestCreate(t *testing.T, s storage.Ephemeral, key func(string) string) {
	ctx := t.Context()
	k := key("k")
	ephWantErr(t, "Create on absent key", s.Create(ctx, k, []byte("original"), ephLongTTL), nil)
	ephWantValue(t, s, k, []byte("original"))
	ephWantErr(t, "Create on existing key", s.Create(ctx, k, []byte("intruder"), ephLongTTL), storage.ErrConflict)
	ephWantValue(t, s, k, []byte("original"))

	// An existing empty value still exists.
	e := key("empty")
	ephPut(t, s, e, []byte{}, ephLongTTL)
	ephWantErr(t, "Create on existing empty value", s.Create(ctx, e, []byte("x"), ephLongTTL), storage.ErrConflict)
	ephWantValue(t, s, e, []byte{})

	// After Delete the key is free again.
	if err := s.Delete(ctx, k); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	ephWantErr(t, "Create after Delete", s.Create(ctx, k, []byte("again"), ephLongTTL), nil)
	ephWantValue(t, s, k, []byte("again"))
}

func ephTestDelete(t *testing.T, s storage.Ephemeral, key func(string) string) {
	ctx := t.Context()
	k := key("k")
	ephPut(t, s, k, []byte("v"), ephLongTTL)
	ephWantErr(t, "Delete existing", s.Delete(ctx, k), nil)
	ephWantGone(t, s, k)
	ephWantErr(t, "Delete again", s.Delete(ctx, k), nil)
	ephWantErr(t, "Delete never-written", s.Delete(ctx, key("never-written")), nil)
	_, err := s.TTL(ctx, k)
	ephWantErr(t, "TTL after Delete", err, storage.ErrNotFound)
}

func ephTestTake(t *testing.T, s storage.Ephemeral, key func(string) string) {
	ctx := t.Context()
	tests := []struct {
		name  string
		value []byte
	}{
		{"text", []byte("code-record")},
		{"empty", []byte{}},
		{"binary", []byte{0, 1, 0, 0xff}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := key(tc.name)
			ephPut(t, s, k, tc.value, ephLongTTL)
			got, err := s.Take(ctx, k)
			if err != nil {
				t.Fatalf("first Take: %v", err)
			}
			if !bytes.Equal(got, tc.value) || len(got) != len(tc.value) {
				t.Fatalf("first Take = %q, want %q", got, tc.value)
			}
			got, err = s.Take(ctx, k)
			if err == nil {
				t.Fatalf("second Take = %q, want ErrNotFound", got)
			}
			ephWantErr(t, "second Take", err, storage.ErrNotFound)
			ephWantGone(t, s, k)
		})
	}
	t.Run("missing", func(t *testing.T) {
		_, err := s.Take(ctx, key("never-written"))
		ephWantErr(t, "Take never-written", err, storage.ErrNotFound)
	})
}

func ephTestTTL(t *testing.T, s storage.Ephemeral, key func(string) string) {
	ctx := t.Context()
	t.Run("Put", func(t *testing.T) {
		k := key("put")
		ephPut(t, s, k, []byte("v"), ephLongTTL)
		ephWantTTL(t, s, k, ephLongTTL/2, ephLongTTL)
	})
	t.Run("Create", func(t *testing.T) {
		k := key("create")
		ephWantErr(t, "Create", s.Create(ctx, k, []byte("v"), 2*ephLongTTL), nil)
		ephWantTTL(t, s, k, ephLongTTL, 2*ephLongTTL)
	})
	t.Run("Incr", func(t *testing.T) {
		k := key("incr")
		ephIncr(t, s, k, 90*time.Second)
		ephWantTTL(t, s, k, 45*time.Second, 90*time.Second)
	})
	t.Run("sub-second", func(t *testing.T) {
		k := key("subsecond")
		ephPut(t, s, k, []byte("v"), 30*time.Second+500*time.Millisecond)
		ephWantTTL(t, s, k, 15*time.Second, 30*time.Second+500*time.Millisecond)
	})
	t.Run("missing", func(t *testing.T) {
		d, err := s.TTL(ctx, key("never-written"))
		if err == nil {
			t.Fatalf("TTL of missing key = %s, want ErrNotFound", d)
		}
		ephWantErr(t, "TTL never-written", err, storage.ErrNotFound)
	})
}

func ephTestCompareAndSwap(t *testing.T, s storage.Ephemeral, key func(string) string) {
	ctx := t.Context()
	tests := []struct {
		name    string
		initial []byte // nil: the key is not written
		old     []byte
		value   []byte
		want    error
	}{
		{"swap", []byte("v1"), []byte("v1"), []byte("v2"), nil},
		{"wrong old", []byte("v1"), []byte("v0"), []byte("v2"), storage.ErrConflict},
		{"old is a prefix", []byte("abc"), []byte("ab"), []byte("x"), storage.ErrConflict},
		{"old is longer", []byte("ab"), []byte("abc"), []byte("x"), storage.ErrConflict},
		{"old differs after NUL", []byte("a\x00b"), []byte("a\x00c"), []byte("x"), storage.ErrConflict},
		{"binary swap", []byte("a\x00b"), []byte("a\x00b"), []byte("\x00\xff"), nil},
		{"case differs", []byte("Value"), []byte("value"), []byte("x"), storage.ErrConflict},
		{"from empty", []byte{}, []byte{}, []byte("filled"), nil},
		{"to empty", []byte("filled"), []byte("filled"), []byte{}, nil},
		{"empty old on non-empty", []byte("filled"), []byte{}, []byte("x"), storage.ErrConflict},
		{"missing", nil, []byte("v1"), []byte("v2"), storage.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := key(tc.name)
			if tc.initial != nil {
				ephPut(t, s, k, tc.initial, ephLongTTL)
			}
			err := s.CompareAndSwap(ctx, k, tc.old, tc.value, ephLongTTL)
			ephWantErr(t, "CompareAndSwap", err, tc.want)
			switch {
			case tc.want == nil:
				ephWantValue(t, s, k, tc.value)
			case tc.initial != nil:
				ephWantValue(t, s, k, tc.initial)
			default:
				ephWantGone(t, s, k)
			}
		})
	}
	t.Run("ttl 0 keeps expiry", func(t *testing.T) {
		k := key("keep-ttl")
		ephPut(t, s, k, []byte("v1"), ephLongTTL)
		ephWantErr(t, "CompareAndSwap ttl 0", s.CompareAndSwap(ctx, k, []byte("v1"), []byte("v2"), 0), nil)
		ephWantValue(t, s, k, []byte("v2"))
		ephWantTTL(t, s, k, ephLongTTL/2, ephLongTTL)
	})
	t.Run("ttl sets expiry", func(t *testing.T) {
		k := key("set-ttl")
		ephPut(t, s, k, []byte("v1"), ephLongTTL)
		ephWantErr(t, "CompareAndSwap ttl 5m", s.CompareAndSwap(ctx, k, []byte("v1"), []byte("v2"), 5*time.Minute), nil)
		ephWantTTL(t, s, k, ephLongTTL, 5*time.Minute)
	})
	t.Run("conflict keeps expiry", func(t *testing.T) {
		k := key("conflict-ttl")
		ephPut(t, s, k, []byte("v1"), ephLongTTL)
		ephWantErr(t, "CompareAndSwap wrong old", s.CompareAndSwap(ctx, k, []byte("v0"), []byte("v2"), 5*time.Minute), storage.ErrConflict)
		ephWantTTL(t, s, k, ephLongTTL/2, ephLongTTL)
	})
}

func ephTestIncr(t *testing.T, s storage.Ephemeral, key func(string) string) {
	t.Run("counts from 1", func(t *testing.T) {
		k := key("count")
		for want := int64(1); want <= 5; want++ {
			if got := ephIncr(t, s, k, ephLongTTL); got != want {
				t.Fatalf("Incr #%d = %d, want %d", want, got, want)
			}
		}
	})
	t.Run("counters are independent", func(t *testing.T) {
		a, b := key("a"), key("b")
		ephIncr(t, s, a, ephLongTTL)
		ephIncr(t, s, a, ephLongTTL)
		if got := ephIncr(t, s, b, ephLongTTL); got != 1 {
			t.Fatalf("Incr(b) = %d, want 1", got)
		}
		if got := ephIncr(t, s, a, ephLongTTL); got != 3 {
			t.Fatalf("Incr(a) = %d, want 3", got)
		}
	})
	t.Run("keeps the first expiry", func(t *testing.T) {
		k := key("window")
		ephIncr(t, s, k, ephLongTTL)
		ephIncr(t, s, k, time.Hour)
		ephIncr(t, s, k, 10*time.Second)
		ephWantTTL(t, s, k, ephLongTTL/2, ephLongTTL)
	})
	t.Run("after Delete restarts", func(t *testing.T) {
		k := key("deleted")
		ephIncr(t, s, k, ephLongTTL)
		ephIncr(t, s, k, ephLongTTL)
		if err := s.Delete(t.Context(), k); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if got := ephIncr(t, s, k, ephLongTTL); got != 1 {
			t.Fatalf("Incr after Delete = %d, want 1", got)
		}
	})
}

// ephTestExpiry writes every short-lived value first, sleeps once, then
// checks them all. Each setup step is written so that a slow machine can
// only make the check weaker, never wrong.
func ephTestExpiry(t *testing.T, s storage.Ephemeral, key func(string) string) {
	ctx := t.Context()
	for _, n := range []string{"get", "take", "cas", "ttl", "delete"} {
		ephPut(t, s, key(n), []byte("short-lived"), ephShortTTL)
	}
	// Overwriting with a longer TTL extends it.
	ephPut(t, s, key("put-extended"), []byte("v1"), ephShortTTL)
	ephPut(t, s, key("put-extended"), []byte("v2"), ephLongTTL)
	// Overwriting with a shorter TTL shortens it.
	ephPut(t, s, key("put-shortened"), []byte("long"), ephLongTTL)
	ephPut(t, s, key("put-shortened"), []byte("short"), ephShortTTL)
	// A CompareAndSwap with a TTL sets it.
	ephPut(t, s, key("cas-shortened"), []byte("v1"), ephLongTTL)
	ephWantErr(t, "CompareAndSwap to short ttl", s.CompareAndSwap(ctx, key("cas-shortened"), []byte("v1"), []byte("v2"), ephShortTTL), nil)
	ephWantErr(t, "Create short", s.Create(ctx, key("create"), []byte("first"), ephShortTTL), nil)
	ephIncr(t, s, key("incr"), ephShortTTL)
	ephIncr(t, s, key("incr"), ephShortTTL)
	// A second Incr with a long TTL must not extend the first window. If
	// it returned 1, the machine stalled past the first window and the
	// check below is meaningless, so it is skipped.
	ephIncr(t, s, key("incr-window"), ephShortTTL)
	windowChecked := ephIncr(t, s, key("incr-window"), ephLongTTL) == 2

	time.Sleep(ephExpiryWait)

	t.Run("Get", func(t *testing.T) { ephWantGone(t, s, key("get")) })
	t.Run("Take", func(t *testing.T) {
		got, err := s.Take(ctx, key("take"))
		if err == nil {
			t.Fatalf("Take of expired key = %q, want ErrNotFound", got)
		}
		ephWantErr(t, "Take expired", err, storage.ErrNotFound)
	})
	t.Run("CompareAndSwap", func(t *testing.T) {
		err := s.CompareAndSwap(ctx, key("cas"), []byte("short-lived"), []byte("revived"), ephLongTTL)
		ephWantErr(t, "CompareAndSwap expired", err, storage.ErrNotFound)
		ephWantGone(t, s, key("cas"))
	})
	t.Run("TTL", func(t *testing.T) {
		d, err := s.TTL(ctx, key("ttl"))
		if err == nil {
			t.Fatalf("TTL of expired key = %s, want ErrNotFound", d)
		}
		ephWantErr(t, "TTL expired", err, storage.ErrNotFound)
	})
	t.Run("Delete", func(t *testing.T) {
		ephWantErr(t, "Delete expired", s.Delete(ctx, key("delete")), nil)
	})
	t.Run("Create again", func(t *testing.T) {
		ephWantErr(t, "Create over expired", s.Create(ctx, key("create"), []byte("second"), ephLongTTL), nil)
		ephWantValue(t, s, key("create"), []byte("second"))
		ephWantTTL(t, s, key("create"), ephLongTTL/2, ephLongTTL)
	})
	t.Run("Incr restarts at 1", func(t *testing.T) {
		if got := ephIncr(t, s, key("incr"), ephLongTTL); got != 1 {
			t.Fatalf("Incr after expiry = %d, want 1", got)
		}
		ephWantTTL(t, s, key("incr"), ephLongTTL/2, ephLongTTL)
	})
	t.Run("Incr fixed window", func(t *testing.T) {
		if !windowChecked {
			t.Skip("second Incr came after the first window ended (machine too slow to check)")
		}
		if got := ephIncr(t, s, key("incr-window"), ephLongTTL); got != 1 {
			t.Fatalf("Incr after the first window = %d, want 1 (a later Incr extended the window)", got)
		}
	})
	t.Run("Put extends", func(t *testing.T) {
		ephWantValue(t, s, key("put-extended"), []byte("v2"))
		ephWantTTL(t, s, key("put-extended"), ephLongTTL/2, ephLongTTL)
	})
	t.Run("Put shortens", func(t *testing.T) { ephWantGone(t, s, key("put-shortened")) })
	t.Run("CompareAndSwap sets ttl", func(t *testing.T) { ephWantGone(t, s, key("cas-shortened")) })
}

func ephTestTakeConcurrent(t *testing.T, s storage.Ephemeral, key func(string) string) {
	k := key("code")
	want := []byte("the one code record")
	ephPut(t, s, k, want, ephLongTTL)
	type result struct {
		v   []byte
		err error
	}
	res := ephRace(t.Context(), ephWorkers, func(ctx context.Context, _ int) result {
		v, err := s.Take(ctx, k)
		return result{v, err}
	})
	winners := 0
	for i, r := range res {
		switch {
		case r.err == nil:
			winners++
			if !bytes.Equal(r.v, want) {
				t.Errorf("goroutine %d: Take = %q, want %q", i, r.v, want)
			}
		case errors.Is(r.err, storage.ErrNotFound):
		default:
			t.Errorf("goroutine %d: Take: %v, want nil or ErrNotFound", i, r.err)
		}
	}
	if winners != 1 {
		t.Fatalf("%d of %d concurrent Takes got the value, want exactly 1", winners, ephWorkers)
	}
	ephWantGone(t, s, k)
}

func ephTestCreateConcurrent(t *testing.T, s storage.Ephemeral, key func(string) string) {
	k := key("lock")
	errs := ephRace(t.Context(), ephWorkers, func(ctx context.Context, i int) error {
		return s.Create(ctx, k, []byte(fmt.Sprintf("owner %d", i)), ephLongTTL)
	})
	winner, winners := -1, 0
	for i, err := range errs {
		switch {
		case err == nil:
			winner, winners = i, winners+1
		case errors.Is(err, storage.ErrConflict):
		default:
			t.Errorf("goroutine %d: Create: %v, want nil or ErrConflict", i, err)
		}
	}
	if winners != 1 {
		t.Fatalf("%d of %d concurrent Creates succeeded, want exactly 1", winners, ephWorkers)
	}
	ephWantValue(t, s, k, []byte(fmt.Sprintf("owner %d", winner)))
}

func ephTestCASConcurrent(t *testing.T, s storage.Ephemeral, key func(string) string) {
	k := key("state")
	ephPut(t, s, k, []byte("state 0"), ephLongTTL)
	errs := ephRace(t.Context(), ephWorkers, func(ctx context.Context, i int) error {
		return s.CompareAndSwap(ctx, k, []byte("state 0"), []byte(fmt.Sprintf("state from %d", i)), 0)
	})
	winner, winners := -1, 0
	for i, err := range errs {
		switch {
		case err == nil:
			winner, winners = i, winners+1
		case errors.Is(err, storage.ErrConflict):
		default:
			t.Errorf("goroutine %d: CompareAndSwap: %v, want nil or ErrConflict", i, err)
		}
	}
	if winners != 1 {
		t.Fatalf("%d of %d concurrent CompareAndSwaps from the same old value succeeded, want exactly 1", winners, ephWorkers)
	}
	ephWantValue(t, s, k, []byte(fmt.Sprintf("state from %d", winner)))
	ephWantTTL(t, s, k, ephLongTTL/2, ephLongTTL)
}

func ephTestIncrConcurrent(t *testing.T, s storage.Ephemeral, key func(string) string) {
	const perWorker = 10
	k := key("counter")
	type result struct {
		got []int64
		err error
	}
	res := ephRace(t.Context(), ephWorkers, func(ctx context.Context, _ int) result {
		var r result
		for range perWorker {
			n, err := s.Incr(ctx, k, ephLongTTL)
			if err != nil {
				r.err = err
				return r
			}
			r.got = append(r.got, n)
		}
		return r
	})
	var all []int64
	for i, r := range res {
		if r.err != nil {
			t.Fatalf("goroutine %d: Incr: %v", i, r.err)
		}
		all = append(all, r.got...)
	}
	slices.Sort(all)
	const total = ephWorkers * perWorker
	if len(all) != total {
		t.Fatalf("got %d results, want %d", len(all), total)
	}
	for i, n := range all {
		if n != int64(i+1) {
			t.Fatalf("sorted Incr results[%d] = %d, want %d: results must be exactly 1..%d, each once", i, n, i+1, total)
		}
	}
	if got := ephIncr(t, s, k, ephLongTTL); got != total+1 {
		t.Fatalf("Incr after %d concurrent increments = %d, want %d", total, got, total+1)
	}
	ephWantTTL(t, s, k, ephLongTTL/2, ephLongTTL)
}

// ephTestIncrBy: a store that implements storage.CounterAdder adds n at
// once, on the same counters as Incr, keeping the first expiry.
func ephTestIncrBy(t *testing.T, s storage.Ephemeral, key func(string) string) {
	a, ok := s.(storage.CounterAdder)
	if !ok {
		t.Skip("the store does not implement storage.CounterAdder")
	}
	ctx := t.Context()
	add := func(k string, n int64, ttl time.Duration) int64 {
		t.Helper()
		got, err := a.IncrBy(ctx, k, n, ttl)
		if err != nil {
			t.Fatalf("IncrBy(%q, %d): %v", k, n, err)
		}
		return got
	}
	k := key("by")
	if got := add(k, 5, ephLongTTL); got != 5 {
		t.Fatalf("IncrBy 5 on a new counter = %d, want 5", got)
	}
	if got := ephIncr(t, s, k, time.Hour); got != 6 {
		t.Fatalf("Incr after IncrBy 5 = %d, want 6", got)
	}
	if got := add(k, 1, time.Hour); got != 7 {
		t.Fatalf("IncrBy 1 = %d, want 7", got)
	}
	if got := add(k, 30, 10*time.Second); got != 37 {
		t.Fatalf("IncrBy 30 = %d, want 37", got)
	}
	ephWantTTL(t, s, k, ephLongTTL/2, ephLongTTL)
	if _, err := a.IncrBy(ctx, key("zero"), 0, ephLongTTL); err == nil {
		t.Fatal("IncrBy 0: no error")
	}
	v := key("text")
	ephPut(t, s, v, []byte("not a number"), ephLongTTL)
	if _, err := a.IncrBy(ctx, v, 2, ephLongTTL); err == nil {
		t.Fatal("IncrBy on a value that is not a counter: no error")
	}
}
