package providertest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/internal/testenv"
)

// StartOIDCProvider runs panva's oidc-provider (the real peer of
// ../shared/PEERS.md) as an upstream on 127.0.0.1 and returns its issuer.
// dir holds the server: package.json and package-lock.json (the pinned
// version) and server.mjs, which reads cfg as JSON from $OP_CONFIG and
// prints {"issuer": ...} on its first stdout line once it listens. node
// and npm follow testenv's skip-or-fail rule; `npm ci` runs once per
// lockfile into the user cache directory. The process is stopped by its
// PID when the test ends.
func StartOIDCProvider(t testing.TB, dir string, cfg map[string]any) string {
	t.Helper()
	node := testenv.Program(t, "node")
	npm := testenv.Program(t, "npm")
	modules := installOIDCProvider(t, npm, dir)
	work := t.TempDir()
	script, err := os.ReadFile(filepath.Join(dir, "server.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "server.mjs"), script, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(modules, filepath.Join(work, "node_modules")); err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "server.mjs")
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "OP_CONFIG="+string(raw), "NODE_ENV=test")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	exited := testenv.Start(t, "oidc-provider", cmd, &stderr)
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		if s.Scan() {
			line <- s.Text()
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case l := <-line:
		var ready struct{ Issuer string }
		if err := json.Unmarshal([]byte(l), &ready); err != nil || ready.Issuer == "" {
			t.Fatalf("oidc-provider said %q", l)
		}
		return ready.Issuer
	case <-exited:
		t.Fatalf("oidc-provider exited early:\n%s", stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("oidc-provider did not start within 20s:\n%s", stderr.String())
	}
	return ""
}

// installOIDCProvider runs `npm ci` for dir once per lockfile into the
// user cache directory and returns the node_modules path.
func installOIDCProvider(t testing.TB, npm, dir string) string {
	t.Helper()
	pkg, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(append(pkg, lock...))
	root, err := os.UserCacheDir()
	if err != nil {
		root = os.TempDir()
	}
	parent := filepath.Join(root, "latchkey-test")
	cache := filepath.Join(parent, "oidc-provider-"+hex.EncodeToString(sum[:8]))
	modules := filepath.Join(cache, "node_modules")
	if _, err := os.Stat(filepath.Join(modules, "oidc-provider", "package.json")); err == nil {
		return modules
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(parent, "install-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	for name, data := range map[string][]byte{"package.json": pkg, "package-lock.json": lock} {
		if err := os.WriteFile(filepath.Join(tmp, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error")
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "npm_config_update_notifier=false")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		testenv.Missing(t, "npm ci for oidc-provider failed: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, cache); err != nil {
		// Another test process installed it meanwhile.
		if _, serr := os.Stat(filepath.Join(modules, "oidc-provider", "package.json")); serr != nil {
			t.Fatalf("install oidc-provider: %v", err)
		}
	}
	return modules
}
