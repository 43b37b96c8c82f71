// Package ratelimit owns Latchkey's defences against guessing and floods:
// named rate limits (Limiter) and account lockout with exponential backoff
// (Lockout). Both keep their state in a storage.Ephemeral, so one
// implementation serves Redis (production, several replicas share the
// counters) and the SQL store (the embedded single-binary default).
//
// # Limits
//
// A Rule names a limit: at most Limit events per Window for one key (an IP
// from clientip, an account name, a client id). Limiter.Allow counts one
// event and answers whether it is within the limit, how many remain and,
// when refused, after how long a new attempt would pass (Retry-After).
//
// Counting approximates a sliding window with two fixed windows (the
// technique Cloudflare and nginx-style limiters use): the store keeps one
// counter per key and window (Ephemeral.Incr, the counter of window k lives
// until the end of window k+1), and an event at elapsed time e into window k
// is allowed when
//
//	count(k-1)·(Window−e)/Window + count(k) ≤ Limit
//
// i.e. the previous window's events weigh less the further the current
// window has run. Unlike a bare fixed window, this never lets 2×Limit
// through around a window boundary. The comparison is exact integer
// arithmetic (128-bit products), so tests can predict every decision.
// Every call is counted, refused ones too: a client that keeps hammering
// while refused stays refused, and RetryAfter is the wait assuming it stops.
// Of N concurrent calls on one fresh key exactly Limit are allowed, because
// Incr hands out each count once.
//
// Each Allow is one Incr, plus one Get of the previous window's counter
// when the current count alone does not already refuse; both touch one key
// each, so a Redis Cluster can spread them. An ended window's count is
// final once the current window has run for a quarter of its length (at
// most 2 s; calls that computed their window just before the boundary and
// replicas with lagging clocks have landed by then): from that point the
// Limiter keeps it in process, so a busy key costs one round trip per call.
//
// # Keys
//
// Keys in the store are "rl:<rule>:<h>:<window>" and "lockout:<h>", where h
// is the first 16 bytes of SHA-256 of the caller's key in hex: no account
// name, e-mail address or IP address appears in Redis or in the ephemeral
// table. Callers pass canonical keys (IPKey for addresses; a lower-cased,
// trimmed login name for accounts, whether or not the account exists, so
// that limits and locks do not reveal which accounts exist).
//
// # Store failures
//
// Each Rule says what a store error means (Rule.FailOpen). A fail-closed
// rule (logins, code checks, recovery, registration, enrollment) returns
// an error wrapping ErrUnavailable: the caller answers 503, so guessing
// protection never silently switches off during an outage. A fail-open rule
// (the token endpoint, where clients authenticate with high-entropy secrets
// and the limit protects capacity rather than secrets) logs a warning and
// allows the call, with Decision.FailedOpen set. Lockout always fails
// closed: its errors wrap ErrUnavailable too.
//
// # Lockout
//
// Lockout counts consecutive failed authentications per account. After
// Threshold failures the account is locked for Base, doubling with every
// further failure up to Max; it is never locked permanently. The state is
// one value per account ("<failures> <locked-until>") changed by
// compare-and-swap, so of concurrent failures exactly one starts a lock:
// Fail returns a positive duration only to that caller, which writes the
// single "user.locked" audit event. The counter is forgotten after
// QuietPeriod without failures, counted from the end of the last lock;
// Succeed forgets it at once.
package ratelimit
