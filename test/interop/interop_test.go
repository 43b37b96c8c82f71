package interop

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchkeyid/latchkey/internal/testenv"
)

// devKey is a 32-byte key-encryption key for tests only.
const devKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// Bounds on every wait.
const (
	npmTimeout     = 3 * time.Minute
	buildTimeout   = 3 * time.Minute
	cliTimeout     = 60 * time.Second
	readyTimeout   = 60 * time.Second
	nodeTimeout    = 2 * time.Minute
	stopTimeout    = 25 * time.Second
	minNodeMajor   = 20 // openid-client 6 needs Node.js 20 or newer
	stampName      = ".latchkey-lock-sha256"
	npmLockName    = "latchkey-interop-npm-ci.lock"
	interopUser    = "alice"
	interopEmail   = "alice@example.com"
	interopGroup   = "admins"
	nodeTestScript = "interop.test.mjs"
	// refreshGrace is tokens.refreshGraceWindow in the test config: short,
	// so that the reuse test sleeps only just past it.
	refreshGrace = time.Second
)

// mfaUser signs in with acr_values=urn:latchkey:acr:mfa: it enrolls TOTP
// in the suite, so no other test may use it.
const (
	mfaUser  = "mfa-user"
	mfaEmail = "mfa-user@example.com"
)

// TestOpenIDClient drives a running `latchkey serve` with openid-client v6:
// discovery, code + PKCE with the login form posted, ID token signature
// checked against jwks_uri, nonce/auth_time/acr/amr, userinfo, form_post,
// iss on the callback, a wrong PKCE verifier, client_secret_basic,
// client_secret_post and a public client; refresh rotation with the
// grace window and reuse detection, introspection, revocation,
// client_credentials and private_key_jwt; acr_values=urn:latchkey:acr:mfa
// with TOTP enrollment, then a TOTP challenge (interop.test.mjs).
func TestOpenIDClient(t *testing.T) {
	node := testenv.Program(t, "node")
	npm := testenv.Program(t, "npm")
	checkNodeVersion(t, node)
	pkgDir, err := os.Getwd() // go test runs in the package directory
	if err != nil {
		t.Fatal(err)
	}
	ensureNodeModules(t, npm, pkgDir)
	bin := buildLatchkey(t)

	dir := t.TempDir()
	addr := freeAddr(t)
	issuer := "http://" + addr
	// Nothing listens on the app's port: the test hands the callback URL to
	// openid-client instead of fetching it.
	redirectURI := "http://" + freeAddr(t) + "/cb"
	cfg := writeFile(t, dir, "latchkey.yaml", fmt.Sprintf(`issuer: %s
http:
  address: %s
storage:
  sqlite:
    path: %s
keys:
  encryptionKeys:
    - id: k1
      key: %s
tokens:
  refreshGraceWindow: %s
# The suite signs in dozens of times from one IP within a minute: raise the
# per-IP and per-account login limits (their defaults are tested in
# test/e2e/limits_test.go).
limits:
  loginPerIP: {limit: 1000, window: 1m}
  loginPerAccount: {limit: 1000, window: 1m}
# The TOTP parameters interop.test.mjs computes codes with (the defaults,
# pinned here so that the node side stays in step with them).
mfa:
  totp:
    algorithm: SHA1
    digits: 6
    period: 30s
logging:
  format: json
`, issuer, addr, filepath.Join(dir, "latchkey.db"), devKey, refreshGrace))

	lk := func(stdin string, args ...string) string {
		t.Helper()
		return runCLI(t, bin, stdin, append(args, "--config", cfg)...)
	}
	lk("", "migrate", "up")

	password := "pw-" + testenv.RandomSuffix(t, 12)
	lk(password+"\n", "users", "create", "--username", interopUser, "--email", interopEmail,
		"--email-verified", "--group", interopGroup, "--password-stdin")

	mfaPassword := "pw-" + testenv.RandomSuffix(t, 12)
	lk(mfaPassword+"\n", "users", "create", "--username", mfaUser, "--email", mfaEmail,
		"--email-verified", "--password-stdin")

	// Confidential client with a generated secret: stdout is the secret alone.
	defaultSecret := oneLine(t, "clients create rp-default",
		lk("", "clients", "create", "--id", "rp-default", "--redirect-uri", redirectURI))

	// Confidential client with the secret on stdin: nothing secret on stdout.
	stdinSecret := "stdin-" + testenv.RandomSuffix(t, 16)
	if out := lk(stdinSecret+"\n", "clients", "create", "--id", "rp-stdin", "--redirect-uri", redirectURI, "--secret-stdin"); strings.Contains(out, stdinSecret) {
		t.Errorf("clients create --secret-stdin echoed the secret on stdout")
	}

	// RFC 7591 metadata: one client per token endpoint auth method.
	basicMeta := writeFile(t, dir, "basic.json", `{"token_endpoint_auth_method":"client_secret_basic"}`)
	basicSecret := oneLine(t, "clients create rp-basic",
		lk("", "clients", "create", "--id", "rp-basic", "--redirect-uri", redirectURI, "--metadata", basicMeta))
	postMeta := writeFile(t, dir, "post.json", `{"token_endpoint_auth_method":"client_secret_post"}`)
	postSecret := jsonSecret(t, "clients create rp-post --json",
		lk("", "clients", "create", "--id", "rp-post", "--redirect-uri", redirectURI, "--metadata", postMeta, "--json"))

	// Public client: no secret at all.
	if out := strings.TrimSpace(lk("", "clients", "create", "--id", "rp-public", "--redirect-uri", redirectURI, "--public")); out != "" {
		t.Errorf("clients create --public printed %q on stdout, want nothing", out)
	}

	// A service: client_credentials only, no redirect URI, scopes limited
	// to its registration.
	serviceMeta := writeFile(t, dir, "service.json", `{"grant_types":["client_credentials"],"scope":"api:read api:write"}`)
	serviceSecret := oneLine(t, "clients create rp-service",
		lk("", "clients", "create", "--id", "rp-service", "--metadata", serviceMeta))

	// private_key_jwt: an ES256 key pair made here, the public JWK
	// registered in jwks; no secret, so nothing on stdout.
	privJWK, pubJWKS := es256KeyPair(t, "interop-es256")
	pkjwtMeta := writeFile(t, dir, "pkjwt.json",
		`{"token_endpoint_auth_method":"private_key_jwt","jwks":`+pubJWKS+`}`)
	if out := strings.TrimSpace(lk("", "clients", "create", "--id", "rp-pkjwt", "--redirect-uri", redirectURI, "--metadata", pkjwtMeta)); out != "" {
		t.Errorf("clients create (private_key_jwt) printed %q on stdout, want nothing", out)
	}
	// Another key pair, never registered: assertions signed with it must
	// be refused.
	strangerJWK, _ := es256KeyPair(t, "interop-es256")

	srv := startServe(t, bin, cfg, addr)
	srv.waitReady(t)

	env := append(os.Environ(),
		"INTEROP_ISSUER="+issuer,
		"INTEROP_REDIRECT_URI="+redirectURI,
		"INTEROP_USERNAME="+interopUser,
		"INTEROP_PASSWORD="+password,
		"INTEROP_EMAIL="+interopEmail,
		"INTEROP_GROUP="+interopGroup,
		"INTEROP_MFA_USERNAME="+mfaUser,
		"INTEROP_MFA_PASSWORD="+mfaPassword,
		"INTEROP_CLIENT_GENERATED_ID=rp-default",
		"INTEROP_CLIENT_GENERATED_SECRET="+defaultSecret,
		"INTEROP_CLIENT_STDIN_ID=rp-stdin",
		"INTEROP_CLIENT_STDIN_SECRET="+stdinSecret,
		"INTEROP_CLIENT_BASIC_ID=rp-basic",
		"INTEROP_CLIENT_BASIC_SECRET="+basicSecret,
		"INTEROP_CLIENT_POST_ID=rp-post",
		"INTEROP_CLIENT_POST_SECRET="+postSecret,
		"INTEROP_CLIENT_PUBLIC_ID=rp-public",
		"INTEROP_CLIENT_SERVICE_ID=rp-service",
		"INTEROP_CLIENT_SERVICE_SECRET="+serviceSecret,
		"INTEROP_CLIENT_PKJWT_ID=rp-pkjwt",
		"INTEROP_CLIENT_PKJWT_PRIVATE_JWK="+privJWK,
		"INTEROP_STRANGER_PRIVATE_JWK="+strangerJWK,
		"INTEROP_REFRESH_GRACE_MS="+strconv.FormatInt(refreshGrace.Milliseconds(), 10),
		"NODE_NO_WARNINGS=1",
	)
	if err := runLogged(t, nodeTimeout, pkgDir, env, node,
		"--test", "--test-reporter=spec", "--test-timeout=30000", nodeTestScript); err != nil {
		t.Errorf("node --test %s: %v", nodeTestScript, err)
	}
	if t.Failed() {
		t.Logf("serve logs:\n%s", srv.logs.String())
	}
}

// es256KeyPair returns a new P-256 key as a private JWK and a JWK Set
// holding only its public half (both JSON, with kid, alg ES256, use sig).
func es256KeyPair(t *testing.T, kid string) (private, publicSet string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk := jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"}
	priv, err := json.Marshal(jwk)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(pub, []byte(`"d"`)) {
		t.Fatal("the public JWK Set holds the private key")
	}
	return string(priv), string(pub)
}

// checkNodeVersion skips (or fails in CI) on a Node.js older than
// openid-client supports.
func checkNodeVersion(t *testing.T, node string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, "--version").Output()
	if err != nil {
		testenv.Missing(t, "node --version: %v", err)
	}
	v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	major, err := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
	if err != nil || major < minNodeMajor {
		testenv.Missing(t, "node %s is too old; openid-client 6 needs Node.js %d or newer", v, minNodeMajor)
	}
}

// ensureNodeModules runs `npm ci` in dir when node_modules is missing or
// was installed from another package-lock.json (a stamp file holds the
// lock's hash). A file lock keeps concurrent test runs from installing at
// the same time.
func ensureNodeModules(t *testing.T, npm, dir string) {
	t.Helper()
	want := lockHash(t, dir)
	stamp := filepath.Join(dir, "node_modules", stampName)
	if got, err := os.ReadFile(stamp); err == nil && strings.TrimSpace(string(got)) == want {
		return
	}

	lf, err := os.OpenFile(filepath.Join(os.TempDir(), npmLockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	if err := flockTimeout(lf, npmTimeout); err != nil {
		t.Fatalf("waiting for another npm ci: %v", err)
	}
	defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
	if got, err := os.ReadFile(stamp); err == nil && strings.TrimSpace(string(got)) == want {
		return // another run installed it meanwhile
	}

	args := []string{"ci", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=warn"}
	if tools := os.Getenv("LATCHKEY_TOOLS"); tools != "" {
		args = append(args, "--cache", filepath.Join(tools, "npm-cache"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), npmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, args...)
	cmd.Dir = dir
	setProcessGroup(cmd)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		// Most often no network on a laptop: skip there, fail in CI.
		testenv.Missing(t, "npm %s in %s failed after %v: %v\n%s", strings.Join(args, " "), dir, time.Since(start).Round(time.Second), err, out)
	}
	t.Logf("npm ci in %v", time.Since(start).Round(time.Millisecond))
	if err := os.WriteFile(stamp, []byte(want+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func lockHash(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	for _, name := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func flockTimeout(f *os.File, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lock %s held for more than %v", f.Name(), d)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// setProcessGroup puts cmd in its own process group so that a timeout
// stops its children (npm's and node --test's workers) too.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
}

func buildLatchkey(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "latchkey")
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/latchkeyid/latchkey/cmd/latchkey").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LATCHKEY_CONFIG=") {
			env = append(env, kv)
		}
	}
	return env
}

// runCLI runs one latchkey command to completion and returns its stdout;
// a non-zero exit fails the test (stderr is logged, stdout is not: it may
// hold a secret).
func runCLI(t *testing.T, bin, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = cleanEnv()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("latchkey %s: %v\nstderr:\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// oneLine returns the single non-empty line of out (a generated secret).
func oneLine(t *testing.T, what, out string) string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 1 || strings.TrimSpace(lines[0]) == "" || strings.ContainsAny(lines[0], " \t") {
		t.Fatalf("%s: stdout should be the secret alone on one line, got %d lines", what, len(lines))
	}
	return lines[0]
}

// jsonSecret reads the client secret from the one JSON object that --json
// prints.
func jsonSecret(t *testing.T, what, out string) string {
	t.Helper()
	var v map[string]any
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s: stdout is not one JSON object: %v", what, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("%s: more than one JSON value on stdout", what)
	}
	s, _ := v["client_secret"].(string)
	if s == "" {
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		t.Fatalf("%s: no client_secret in the JSON object (keys %v)", what, keys)
	}
	return s
}

// runLogged runs a program and streams its output, line by line, into t.Log.
func runLogged(t *testing.T, timeout time.Duration, dir string, env []string, name string, args ...string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	setProcessGroup(cmd)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			t.Log(sc.Text())
		}
		io.Copy(io.Discard, pr)
	}()
	err := cmd.Run()
	pw.Close()
	wg.Wait()
	if ctx.Err() != nil {
		return fmt.Errorf("%w (timeout %v)", err, timeout)
	}
	return err
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// server is a running `latchkey serve`, stopped by its PID when the test
// ends.
type server struct {
	cmd     *exec.Cmd
	addr    string
	logs    *syncBuffer
	done    chan struct{}
	exitErr error
}

func startServe(t *testing.T, bin, cfg, addr string) *server {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--config", cfg)
	cmd.Env = cleanEnv()
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start serve: %v", err)
	}
	s := &server{cmd: cmd, addr: addr, logs: logs, done: make(chan struct{})}
	go func() { s.exitErr = cmd.Wait(); close(s.done) }()
	t.Cleanup(func() { s.stop(t) })
	return s
}

func (s *server) stop(t *testing.T) {
	select {
	case <-s.done:
		return
	default:
	}
	_ = syscall.Kill(s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
		if s.exitErr != nil {
			t.Errorf("serve exit after SIGTERM: %v, want status 0\n%s", s.exitErr, s.logs.String())
		}
	case <-time.After(stopTimeout):
		_ = syscall.Kill(s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
		t.Errorf("serve %s did not stop within %v of SIGTERM", s.addr, stopTimeout)
	}
}

func (s *server) waitReady(t *testing.T) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			t.Fatalf("serve %s exited early: %v\n%s", s.addr, s.exitErr, s.logs.String())
		default:
		}
		resp, err := client.Get("http://" + s.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("serve %s not ready after %v\n%s", s.addr, readyTimeout, s.logs.String())
}
