// Package upstream makes the outbound HTTP client a connector uses to talk
// to its upstream identity provider resilient, and turns failures to reach
// the upstream into providers.ErrUpstreamUnavailable.
//
// New wraps the Transport of the hardened client from internal/httpclient
// (which keeps its dialer guard, body limit, redirect policy and timeout:
// the wrapper adds behaviour around it and replaces nothing):
//
//	request ──> retry (GET/HEAD only) ──> circuit breaker ──> hardened transport ──> upstream
//
// The parts:
//
//   - Every attempt passes one circuit breaker per connector
//     (sony/gobreaker). Transport errors, 5xx and 429 answers count as
//     failures; a request the caller cancelled counts as neither. After
//     Settings.FailuresToTrip consecutive failures the breaker opens for
//     Settings.OpenFor: requests then fail at once with ErrCircuitOpen
//     instead of each waiting for a timeout, and one probe request is let
//     through afterwards.
//   - Idempotent requests (GET and HEAD without a body: discovery, JWKS,
//     userinfo) are retried with exponential backoff (cenkalti/backoff)
//     after a transport error or a 429/500/502/503/504 answer, up to
//     Settings.MaxAttempts attempts. Refused addresses, an open breaker and
//     a cancelled request are never retried. POSTs (the token endpoint)
//     are never retried: a code must not be spent twice.
//   - All attempts of one request share the client's Timeout (the whole of
//     http.Client.Do is bounded by it), so an upstream that hangs yields an
//     error within the timeout, retries included.
//
// Client.Unavailable wraps an error in a *providers.UnavailableError naming
// the connector; IsUnavailable tells which errors mean "could not reach the
// upstream" (anything http.Client.Do returned, a 5xx from the token
// endpoint, an open breaker) as opposed to an answer the upstream gave.
//
// The breaker and backoff use the real clock: neither library takes an
// injected one, and both only pace retries, never decide validity.
package upstream
