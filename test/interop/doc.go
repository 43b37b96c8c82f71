// Package interop runs independent relying-party libraries against a real
// `latchkey serve`. Its test builds the binary, creates users and clients
// with the latchkey CLI, starts the server on SQLite and runs panva's
// openid-client (Node.js, pinned in package-lock.json) against it with
// `node --test interop.test.mjs`. Without node and npm the test skips,
// unless LATCHKEY_TEST_REQUIRE_SERVICES=1 (CI), where it fails.
package interop
