package bench_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/latchkeyid/latchkey/session"
)

var sessionAMR = []string{"pwd"}

// BenchmarkSession is a session save (Create: the record, the cookie's
// pointer to it and the user's index of sessions) and a load (Get: the
// idle expiry moves at most once a minute, so a load is reads) on the SQL
// ephemeral store and on Redis.
func BenchmarkSession(b *testing.B) {
	for _, be := range []backend{sqliteBackend, postgresBackend, {name: "redis", redis: true}} {
		b.Run(be.name, func(b *testing.B) {
			s := newStack(b, be)
			ctx := context.Background()
			b.Run("save", func(b *testing.B) {
				// One session per user, as at a sign-in (a user with many
				// sessions is BenchmarkSessionsOfOneUser).
				b.ReportAllocs()
				stop := cpuPerOp(b)
				i := 0
				for b.Loop() {
					i++
					if _, _, err := s.sessions.Create(ctx, "u-"+strconv.Itoa(i), "local", sessionAMR); err != nil {
						b.Fatal(err)
					}
				}
				stop()
			})
			b.Run("load", func(b *testing.B) {
				cookie, _, err := s.sessions.Create(ctx, s.user.ID, "local", sessionAMR)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				stop := cpuPerOp(b)
				for b.Loop() {
					if _, err := s.sessions.Get(ctx, cookie); err != nil {
						b.Fatal(err)
					}
				}
				stop()
			})
		})
	}
}

// BenchmarkSessionsOfOneUser is a session save for a user who already
// has n live sessions (the op ends the new session again, so n stays):
// the store keeps an index of each user's sessions in one value, which
// every save decodes, extends and writes back whole.
func BenchmarkSessionsOfOneUser(b *testing.B) {
	s := newStack(b, sqliteBackend)
	ctx := context.Background()
	have := 0
	for _, n := range []int{1, 100, 1000} {
		for ; have < n; have++ {
			if _, _, err := s.sessions.Create(ctx, s.user.ID, "local", sessionAMR); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprintf("existing=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			stop := cpuPerOp(b)
			for b.Loop() {
				_, sess, err := s.sessions.Create(ctx, s.user.ID, "local", sessionAMR)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.sessions.End(ctx, sess.SID); err != nil {
					b.Fatal(err)
				}
			}
			stop()
		})
	}
}

// BenchmarkSessionMemory creates 10,000 sessions per op in the SQL
// ephemeral store (the single-binary default), one for each of 10,000
// users, and reports what they cost the process: live Go heap after a GC
// (heap-MB/10k) and resident memory (rss-MB/10k, VmRSS, the OS's view,
// without returning freed memory by force). Sessions live in the store,
// so both should stay near zero; the bound is 5 MB of RSS per
// 10,000 live sessions.
func BenchmarkSessionMemory(b *testing.B) {
	const perOp = 10_000
	s := newStack(b, sqliteBackend)
	ctx := context.Background()
	store := session.NewStore(s.eph, session.Options{})
	// Warm the store (connections, statement caches, SQLite page cache).
	for i := range 1000 {
		if _, _, err := store.Create(ctx, fmt.Sprintf("warm-%d", i), "local", sessionAMR); err != nil {
			b.Fatal(err)
		}
	}
	heap0, rss0 := memNow(b)
	b.ResetTimer()
	stop := cpuPerOp(b)
	for i := 0; i < b.N; i++ {
		for j := range perOp {
			if _, _, err := store.Create(ctx, fmt.Sprintf("u-%d-%d", i, j), "local", sessionAMR); err != nil {
				b.Fatal(err)
			}
		}
	}
	stop()
	b.StopTimer()
	heap1, rss1 := memNow(b)
	n := float64(b.N)
	b.ReportMetric(float64(int64(heap1)-int64(heap0))/n/(1<<20), "heap-MB/10k")
	b.ReportMetric(float64(rss1-rss0)/n/(1<<20), "rss-MB/10k")
}

// memNow returns the live heap after a GC and VmRSS, in bytes.
func memNow(tb testing.TB) (heap uint64, rss int64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, procStatusBytes(tb, "VmRSS")
}

// procStatusBytes reads a "kB" field of /proc/self/status.
func procStatusBytes(tb testing.TB, field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		tb.Skipf("no /proc: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			tb.Fatalf("/proc/self/status %s: %v", field, err)
		}
		return kb << 10
	}
	tb.Fatalf("/proc/self/status has no %s", field)
	return 0
}
