// Package conformance holds one test suite per store kind, which every
// backend runs from its own test file in a few lines:
//
//   - RunDurable (durable.go): storage.Durable. CRUD with exact round trips
//     of every field, the sentinel errors, updaters (their errors, and no
//     lost update under 20 goroutines), the keys compare-and-swap (exactly
//     one of 20 racing writers wins), transactions (commit, rollback,
//     nesting) and the audit-log filters. Run by storage/sqlstore on
//     SQLite and PostgreSQL.
//   - RunEphemeral (ephemeral.go): storage.Ephemeral. TTL expiry,
//     single-use Take with exactly one winner, create-if-absent,
//     compare-and-swap and counters. Run by storage/redisstore and by
//     storage/sqlstore on both dialects.
//
// The suites use real databases, never mocks, and assert exact outcomes
// with errors.Is on the storage sentinels.
package conformance
