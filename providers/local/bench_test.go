package local_test

import (
	"errors"
	"log/slog"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/local"
)

// BenchmarkHashDefault is the cost of one hash under DefaultParams.
func BenchmarkHashDefault(b *testing.B) {
	h := local.NewHasher(local.DefaultParams, 1, time.Minute, nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Hash(b.Context(), "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoginParallel runs many more concurrent logins than the
// semaphore admits (8 goroutines per P, maxConcurrent = GOMAXPROCS) and
// reports the most hash computations seen in flight at once
// (max-in-flight, which must not exceed GOMAXPROCS) and the fraction of
// logins refused with ErrBusy (queue wait 1 minute: expected 0).
func BenchmarkLoginParallel(b *testing.B) {
	h := local.NewHasher(local.DefaultParams, 0, time.Minute, nil)
	hash, err := h.Hash(b.Context(), "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	var inFlight, peak atomic.Int64
	local.SetKDF(h, func(pw, salt []byte, p local.Params) []byte {
		n := inFlight.Add(1)
		for {
			old := peak.Load()
			if n <= old || peak.CompareAndSwap(old, n) {
				break
			}
		}
		defer inFlight.Add(-1)
		return local.RealKDF(pw, salt, p)
	})
	accounts := &fakeAccounts{byName: map[string]local.Account{
		"alice": {ID: "u-alice", Username: "alice", PasswordHash: hash},
	}}
	conn := local.New(accounts, h, slog.New(slog.DiscardHandler))
	peak.Store(0)
	var busy atomic.Int64
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, err := conn.Login(b.Context(), "alice", "correct horse battery staple")
			switch {
			case err == nil:
			case errors.Is(err, providers.ErrBusy):
				busy.Add(1)
			default:
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(peak.Load()), "max-in-flight")
	b.ReportMetric(float64(busy.Load())/float64(b.N), "busy/op")
	if p := peak.Load(); p > int64(runtime.GOMAXPROCS(0)) {
		b.Fatalf("%d hashes in flight, semaphore allows %d", p, runtime.GOMAXPROCS(0))
	}
}
