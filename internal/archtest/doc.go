// Package archtest owns the tests that keep the code shaped like
// ARCHITECTURE.md. It has no code of its own: imports_test.go lists every
// package of the module with `go list -e -json ./...` and checks each direct
// import (and each test import) of a package in the module against the
// "Import rules" table, reporting every violation at once.
//
// The rules are written over package path prefixes relative to the module
// (cmd, web, api, broker, providers, mfa, session, webhook, storage,
// migrations, internal/config, other internal/*, and the test-support
// packages internal/testenv, internal/archtest and test/...). A change to
// the rules is a change to ARCHITECTURE.md and to the table in
// imports_test.go, in one commit.
package archtest
