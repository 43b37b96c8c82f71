// Package session owns the SSO session records: the cookie value that
// names a session (stored only as its SHA-256, rotated on every sign-in),
// the stable public sid, the factors used with their times (AMR), the
// clients signed into, the idle and absolute timeouts, and a per-user
// index so that every session of a user can be found and ended. It keeps
// state only; the broker decides sign-in, step-up and logout.
package session
