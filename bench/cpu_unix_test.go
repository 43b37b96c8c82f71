//go:build unix

package bench_test

import (
	"syscall"
	"testing"
	"time"
)

// cpuPerOp starts counting the process's CPU time (user + system, every
// goroutine); the function it returns reports it per op as cpu-ns/op.
// On a shared machine the wall time of an op (ns/op) grows with everybody
// else's load; the CPU it costs hardly does, so that is the figure the
// ratios in docs/performance.md use. The CPU of other processes the op
// makes work (PostgreSQL, Redis) is not in it.
func cpuPerOp(b *testing.B) func() {
	t0 := processCPU()
	return func() {
		b.ReportMetric(float64(processCPU()-t0)/float64(b.N), "cpu-ns/op")
	}
}

// processCPU is the CPU time this process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
