//go:build !unix

package bench_test

import "testing"

// cpuPerOp reports nothing where getrusage is missing.
func cpuPerOp(b *testing.B) func() { return func() {} }
