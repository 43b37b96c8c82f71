package testenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// NodePackage returns the path of node with the npm package in dir
// installed (`npm ci` when node_modules is missing or from another lock
// file; a file lock keeps concurrent test runs apart). No node or npm, or
// no network for npm: skipped on a laptop, a failure in CI.
func NodePackage(t testing.TB, dir string) string {
	t.Helper()
	node := Program(t, "node")
	npm := Program(t, "npm")
	h := sha256.New()
	for _, name := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		h.Write(b)
	}
	want := hex.EncodeToString(h.Sum(nil))
	stamp := filepath.Join(dir, "node_modules", ".latchkey-lock-hash")
	if got, err := os.ReadFile(stamp); err == nil && strings.TrimSpace(string(got)) == want {
		return node
	}
	lf, err := os.OpenFile(filepath.Join(os.TempDir(), "latchkey-web-npm-ci.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			t.Fatalf("lock for npm ci: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
	if got, err := os.ReadFile(stamp); err == nil && strings.TrimSpace(string(got)) == want {
		return node
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := []string{"ci", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=warn"}
	if tools := os.Getenv("LATCHKEY_TOOLS"); tools != "" {
		args = append(args, "--cache", filepath.Join(tools, "npm-cache"))
	}
	cmd := exec.CommandContext(ctx, npm, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		Missing(t, "npm ci in %s: %v\n%s", dir, err, out)
	}
	if err := os.WriteFile(stamp, []byte(want+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return node
}
