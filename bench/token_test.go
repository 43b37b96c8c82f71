package bench_test

import (
	"context"
	"net/url"
	"sync"
	"testing"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/providers/local"
)

// BenchmarkTokenEndpoint is broker.Token per grant on SQLite (client
// authentication, the grant, the signatures, the audit event), without
// HTTP; web's BenchmarkHTTP adds the handler.
func BenchmarkTokenEndpoint(b *testing.B) {
	s := newStack(b, sqliteBackend)
	ctx := context.Background()

	// One ES256 access token.
	b.Run("client_credentials", func(b *testing.B) {
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {ccScope}}
		b.ReportAllocs()
		stop := cpuPerOp(b)
		for b.Loop() {
			if _, oerr := s.broker.Token(ctx, form, ccCreds, meta); oerr != nil {
				b.Fatal(oerr.Code, oerr.Description, oerr.Cause)
			}
		}
		stop()
	})

	// Take the code, load the user, ES256 access and ID tokens, a new
	// refresh family, the redeemed-code marker, the audit event. The
	// codes are made (authorize + login) before the timer starts.
	b.Run("authorization_code", func(b *testing.B) {
		type pair struct{ code, verifier string }
		codes := make([]pair, b.N)
		for i := range codes {
			c, v, err := s.login(ctx)
			if err != nil {
				b.Fatal(err)
			}
			codes[i] = pair{c, v}
		}
		b.ReportAllocs()
		b.ResetTimer()
		stop := cpuPerOp(b)
		for i := 0; i < b.N; i++ {
			if _, err := s.exchange(ctx, codes[i].code, codes[i].verifier); err != nil {
				b.Fatal(err)
			}
		}
		stop()
	})

	// Rotation compare-and-swap with the audit event in one transaction,
	// ES256 access and ID tokens.
	b.Run("refresh_token", func(b *testing.B) {
		rt := s.refreshToken(b)
		b.ReportAllocs()
		b.ResetTimer()
		stop := cpuPerOp(b)
		for b.Loop() {
			var err error
			if rt, err = s.refresh(ctx, rt); err != nil {
				b.Fatal(err)
			}
		}
		stop()
	})
}

// BenchmarkClientCredentialsParallel is the client_credentials grant from
// 8 goroutines per CPU, as under load: the audit events of concurrent
// grants share SQLite commits (storage/sqlstore group commit).
func BenchmarkClientCredentialsParallel(b *testing.B) {
	for _, be := range []backend{sqliteBackend, postgresBackend} {
		b.Run(be.name, func(b *testing.B) {
			s := newStack(b, be)
			ctx := context.Background()
			form := url.Values{"grant_type": {"client_credentials"}, "scope": {ccScope}}
			b.SetParallelism(8)
			b.ReportAllocs()
			stop := cpuPerOp(b)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, oerr := s.broker.Token(ctx, form, ccCreds, meta); oerr != nil {
						b.Error(oerr.Code, oerr.Description, oerr.Cause)
						return
					}
				}
			})
			stop()
		})
	}
}

// BenchmarkRefreshRotation is refresh with rotation per durable store:
// one chain refreshed serially, and one chain per goroutine in parallel
// (8 goroutines per CPU, the way many clients refresh at once).
func BenchmarkRefreshRotation(b *testing.B) {
	for _, be := range []backend{sqliteBackend, postgresBackend, productionBackend} {
		b.Run(be.name, func(b *testing.B) {
			s := newStack(b, be)
			ctx := context.Background()
			b.Run("serial", func(b *testing.B) {
				rt := s.refreshToken(b)
				b.ReportAllocs()
				b.ResetTimer()
				stop := cpuPerOp(b)
				for b.Loop() {
					var err error
					if rt, err = s.refresh(ctx, rt); err != nil {
						b.Fatal(err)
					}
				}
				stop()
			})
			b.Run("parallel", func(b *testing.B) {
				const perCPU = 8
				b.SetParallelism(perCPU)
				chains := make(chan string, perCPU*64)
				for range cap(chains) {
					chains <- s.refreshToken(b)
				}
				b.ReportAllocs()
				b.ResetTimer()
				stop := cpuPerOp(b)
				b.RunParallel(func(pb *testing.PB) {
					rt := <-chains
					for pb.Next() {
						var err error
						if rt, err = s.refresh(ctx, rt); err != nil {
							b.Error(err)
							return
						}
					}
				})
				stop()
			})
		})
	}
}

// BenchmarkRefreshGraceRace presents one refresh token 20 times at once
// (a client with 20 threads that all saw it expire) inside the grace
// window: every request must succeed with the same successor, on every
// store. One op is the 20 requests; any error or a second successor fails
// the benchmark.
func BenchmarkRefreshGraceRace(b *testing.B) {
	const parallel = 20
	for _, be := range []backend{sqliteBackend, postgresBackend, productionBackend} {
		b.Run(be.name, func(b *testing.B) {
			s := newStack(b, be)
			ctx := context.Background()
			tokens := make([]string, b.N)
			for i := range tokens {
				tokens[i] = s.refreshToken(b)
			}
			b.ReportAllocs()
			b.ResetTimer()
			stop := cpuPerOp(b)
			for i := 0; i < b.N; i++ {
				var (
					wg   sync.WaitGroup
					mu   sync.Mutex
					errs []error
					got  = map[string]bool{}
				)
				for range parallel {
					wg.Add(1)
					go func() {
						defer wg.Done()
						next, err := s.refresh(ctx, tokens[i])
						mu.Lock()
						defer mu.Unlock()
						if err != nil {
							errs = append(errs, err)
						} else {
							got[next] = true
						}
					}()
				}
				wg.Wait()
				if len(errs) > 0 || len(got) != 1 {
					b.Fatalf("%d of %d concurrent refreshes failed (first: %v); %d distinct successors", len(errs), parallel, first(errs), len(got))
				}
			}
			stop()
			b.ReportMetric(parallel, "refreshes/op")
		})
	}
}

func first(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return errs[0]
}

// BenchmarkIntrospect is broker.Introspect (client authentication, then
// the token): a client_credentials JWT access token (signature check,
// denylist lookup) and an opaque refresh token (store lookup, user).
func BenchmarkIntrospect(b *testing.B) {
	s := newStack(b, sqliteBackend)
	ctx := context.Background()
	at, err := s.clientCredentials(ctx)
	if err != nil {
		b.Fatal(err)
	}
	rt := s.refreshToken(b)
	for _, c := range []struct {
		name, token string
		creds       broker.ClientCredentials
	}{{"access_token", at, ccCreds}, {"refresh_token", rt, appCreds}} {
		b.Run(c.name, func(b *testing.B) {
			form := url.Values{"token": {c.token}}
			b.ReportAllocs()
			stop := cpuPerOp(b)
			for b.Loop() {
				res, oerr := s.broker.Introspect(ctx, form, c.creds, meta)
				if oerr != nil {
					b.Fatal(oerr.Code, oerr.Description, oerr.Cause)
				}
				if !res.Active {
					b.Fatal("inactive")
				}
			}
			stop()
		})
	}
}

// BenchmarkLogin is a whole login at the broker on SQLite: /authorize
// (client, PKCE, auth request stored), the password step, the session,
// the code, and the code exchange with ES256 ID and access tokens and a
// refresh token; with cheap argon2id parameters (the login without the
// hash) and with the production ones (local.DefaultParams: subtract
// BenchmarkPasswordHash/default to see what the hash costs inside a
// login, allocation and GC included).
func BenchmarkLogin(b *testing.B) {
	for _, be := range []backend{{name: "bench-hash"}, {name: "default-hash", hash: local.DefaultParams}} {
		b.Run(be.name, func(b *testing.B) {
			s := newStack(b, be)
			ctx := context.Background()
			b.ReportAllocs()
			stop := cpuPerOp(b)
			for b.Loop() {
				code, verifier, err := s.login(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.exchange(ctx, code, verifier); err != nil {
					b.Fatal(err)
				}
			}
			stop()
		})
	}
}
