// Package bench holds Latchkey's benchmark suite (issue 17,
// docs/performance.md). It has no code of its own: the benchmarks are in
// its _test.go files, the load driver is the program bench/load, and
// bench/run.sh (make bench) runs both end to end.
//
// The Go benchmarks (go test -run '^$' -bench . -benchmem ./bench/) build
// the real stack in process through the packages' public constructors: a
// SQLite store (PostgreSQL when LATCHKEY_TEST_POSTGRES is set, Redis for
// the ephemeral store when LATCHKEY_TEST_REDIS is set; missing services
// skip, as in the tests, per internal/testenv), a key manager with RS256,
// ES256 and EdDSA keys, the token issuer and the broker. They measure
//
//   - raw signatures per algorithm (crypto.Signer, no JOSE), the JWS of
//     keys.Manager and the access and ID tokens of token.Issuer, so each
//     token's cost reads as a multiple of the bare signature;
//   - the token endpoint per grant (broker.Token: client_credentials,
//     authorization_code, refresh_token), refresh rotation per store,
//     serial and parallel, and 20 concurrent refreshes of one token inside
//     the grace window (any error fails the benchmark);
//   - introspection, the JWKS document, session create/load per store, the
//     memory 10,000 live sessions cost the process (they live in the
//     store), a whole authorize + password login + code + token exchange
//     with cheap argon2id parameters, and argon2id at the production
//     parameters on its own, so the login's cost without the hash is
//     read off directly.
//
// The in-process HTTP benchmarks that need the full handler (discovery,
// JWKS, token endpoint, introspection and the browser login through the
// real pages and cookies) live in web/bench_test.go, because only web's own
// tests may import web.
//
// No benchmark checks a duration: speed targets are reported as ratios in
// docs/performance.md (CONVENTIONS.md item 12).
package bench
