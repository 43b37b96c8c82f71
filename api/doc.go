// Package api is the admin API (openapi.yaml and its handlers) and the
// admin console, both served on the admin listener.
//
// Requests carry an API key (`Authorization: Bearer lk_...`). The key is
// looked up by its public prefix, compared by SHA-256 in constant time,
// checked for expiry, revocation and the route's scope, rate limited per
// key, and every use is written to the audit log with the route, the
// status and the key's prefix (never the key). Handlers work on the
// durable store and on the small interfaces in Options, which cmd fills
// with the same logic the CLI uses (client and connector validation by
// internal/config and the connector registry, connector secrets sealed
// with the keyring, the key manager, the broker's session ending).
//
// Errors are RFC 9457 problem details (application/problem+json); a
// request body that fails validation answers 422 with every problem at
// once in "errors" (field, message). The routes are the table in
// routes.go; a test holds them equal to openapi.yaml's paths.
package api
