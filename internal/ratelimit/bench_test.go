package ratelimit_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/internal/ratelimit"
	"github.com/latchkeyid/latchkey/storage"
)

// benchAllow measures one Allow (an Incr and a Get) on the real clock,
// serially and from parallel goroutines, on 1000 keys so the counters of
// the previous window exist as in production.
func benchAllow(b *testing.B, store storage.Ephemeral) {
	lim := ratelimit.New(store, ratelimit.Options{})
	rule := ratelimit.Rule{Name: "bench", Limit: 1 << 30, Window: time.Minute}
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = "198.51.100." + strconv.Itoa(i)
	}
	b.Run("serial", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if d, err := lim.Allow(b.Context(), rule, keys[i%len(keys)]); err != nil || !d.Allowed {
				b.Fatalf("Allow = %+v, %v", d, err)
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if d, err := lim.Allow(b.Context(), rule, keys[i%len(keys)]); err != nil || !d.Allowed {
					b.Errorf("Allow = %+v, %v", d, err)
					return
				}
				i++
			}
		})
	})
}

func BenchmarkAllowRedis(b *testing.B)    { benchAllow(b, openRedis(b, clock.Real{})) }
func BenchmarkAllowSQLite(b *testing.B)   { benchAllow(b, openSQLite(b, clock.Real{})) }
func BenchmarkAllowPostgres(b *testing.B) { benchAllow(b, openPostgres(b, clock.Real{})) }
