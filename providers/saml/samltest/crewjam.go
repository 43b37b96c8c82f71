// Package samltest runs crewjam/saml's example IdP (PEERS.md) for tests
// of the saml connector: installed at the pinned version, started on
// 127.0.0.1, stopped by its PID, and given an SP's metadata through its
// unauthenticated admin API.
package samltest

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/providers/providertest"
)

// CrewjamIdP is the peer: crewjam/saml's example IdP at the version this
// module uses. .ci/tools.sh installs it into $LATCHKEY_TOOLS/bin.
const CrewjamIdP = "github.com/crewjam/saml/example/idp@v0.6.3"

// Users are the IdP's seeded accounts (alice and bob); Password is theirs.
const Password = "hunter2"

// InstallCrewjamIdP returns the IdP binary: $LATCHKEY_TOOLS/bin/idp when
// it is this version, else `go install` into that directory (or a
// temporary one) within 3 minutes. A failed install follows testenv's
// skip-or-fail rule.
func InstallCrewjamIdP(t testing.TB) string {
	t.Helper()
	goBin := testenv.Program(t, "go")
	dir := t.TempDir()
	if tools := os.Getenv("LATCHKEY_TOOLS"); tools != "" {
		dir = filepath.Join(tools, "bin")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "idp")
	if out, err := exec.Command(goBin, "version", "-m", bin).Output(); err == nil &&
		bytes.Contains(out, []byte("github.com/crewjam/saml\tv0.6.3")) && bytes.Contains(out, []byte("path\tgithub.com/crewjam/saml/example/idp")) {
		return bin
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "install", CrewjamIdP)
	cmd.Dir = t.TempDir() // outside this module: install at the pinned version
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-buildvcs=false")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		testenv.Missing(t, "go install %s failed: %v\n%s", CrewjamIdP, err, out)
	}
	return bin
}

// StartCrewjamIdP runs the IdP on a free 127.0.0.1 port and returns its
// base URL and the PEM certificate it signs with. It is stopped by its
// PID when the test ends.
func StartCrewjamIdP(t testing.TB, bin string) (string, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	base := "http://" + addr
	work := t.TempDir()
	certFile := filepath.Join(work, "idp-cert.pem")
	cmd := exec.Command(bin, "-listen", addr, "-idp", base, "-cert-out", certFile)
	cmd.Dir = work
	var logs providertest.LogBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	// The IdP logs usernames and request paths, no passwords.
	exited := testenv.Start(t, "IdP", cmd, &logs)
	deadline := time.Now().Add(20 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-exited:
			t.Fatalf("the IdP exited:\n%s", logs.String())
		default:
		}
		resp, err := client.Get(base + "/metadata")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the IdP did not answer within 20s (%v):\n%s", err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	cert, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatalf("the IdP wrote no certificate: %v", err)
	}
	return base, string(cert)
}

// RegisterSP gives the IdP an SP's metadata (PUT /services/{id}).
func RegisterSP(ctx context.Context, t testing.TB, base, id string, metadata []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+"/services/"+id, bytes.NewReader(metadata))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/samlmetadata+xml")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("PUT /services/%s: %d %s", id, resp.StatusCode, body)
	}
}
