// Package testenv is the one place tests reach things outside Go: a
// PostgreSQL database, a Redis server, an external program. Each helper
// skips the test with a message when the thing is missing, unless
// LATCHKEY_TEST_REQUIRE_SERVICES=1 (set by CI), where missing is a failure.
//
// Every test gets its own PostgreSQL database and Redis key prefix, dropped
// when the test ends, so packages can run in parallel against one server.
package testenv
