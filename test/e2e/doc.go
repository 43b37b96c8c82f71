// Package e2e runs the latchkey binary as a user or operator would: built
// once per test run, started as real processes against real stores, driven
// over HTTP and the command line, and stopped by PID. Tests that need
// PostgreSQL or Redis follow internal/testenv's skip-or-fail rule.
package e2e
