// Package storage owns Latchkey's records, the small interfaces through which
// the rest of the program reads and changes them, and the sentinel errors
// every backend returns.
//
// Two kinds of data live behind two interfaces:
//
//   - Durable: users, clients, connectors, signing keys, the audit log (and,
//     as later features arrive, identities, MFA credentials, refresh tokens,
//     API keys and the webhook outbox). Implemented by sqlstore on SQLite
//     and PostgreSQL.
//   - Ephemeral: TTL'd byte values keyed by string (auth requests, codes,
//     sessions, challenges, counters). Implemented by redisstore and, so the
//     embedded default needs nothing else, by sqlstore.
//
// Changes go through updater functions (UpdateClient(ctx, id, func(old)
// (new, error))) so a backend can make them atomic. Every backend passes the
// suites in storage/conformance. Backends return ErrNotFound and ErrConflict
// (wrapped), checked with errors.Is.
package storage
