package testenv

import (
	"fmt"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// StopGrace is how long a process Start began has to exit after SIGTERM
// before it gets SIGKILL.
const StopGrace = 5 * time.Second

// Start starts cmd (a peer a test runs: an IdP, an SMTP sink) and stops it
// by its PID when the test ends: SIGTERM, then SIGKILL after StopGrace.
// The returned channel is closed once the process has exited, so a caller
// waiting for it to be ready can tell an early exit. When the test failed,
// output (if not nil) is logged under name after the process is gone.
func Start(t testing.TB, name string, cmd *exec.Cmd, output fmt.Stringer) <-chan struct{} {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(StopGrace):
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() && output != nil {
			t.Logf("%s output:\n%s", name, output.String())
		}
	})
	return exited
}
