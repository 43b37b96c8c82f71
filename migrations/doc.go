// Package migrations owns the SQL schema of the durable store, one set of
// goose-format files per dialect (sqlite/ and postgres/), embedded in the
// binary. storage/sqlstore applies them with goose's Provider API under a
// lock (Store.Migrate); `latchkey migrate up|status` and `latchkey serve`
// call that.
//
// Both dialects hold the same tables with the same columns:
//
//   - clients, connectors, users: the columns needed for lookups and
//     listing, plus a JSON document (data) for the rest of the record.
//     Raw JSON the caller owns (a client's jwks, a connector's config, the
//     keys record's data) has a column of its own and is stored byte for
//     byte.
//   - keys: the single signing-keys row (id = 1) with its version for
//     compare-and-swap.
//   - audit_events: the audit log, ordered by (time, seq).
//   - ephemeral: TTL'd values for the SQL implementation of
//     storage.Ephemeral.
//
// Times are UTC. PostgreSQL stores them as timestamptz; SQLite as TEXT in
// the fixed-width form 2006-01-02T15:04:05.000000Z, so text order is time
// order. Both keep microseconds.
//
// A new migration is a new file NNNNN_name.sql in both directories with the
// same version number; applied files are never edited.
package migrations
