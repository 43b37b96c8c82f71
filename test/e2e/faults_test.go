package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/internal/testenv"
)

// throwawayRedis starts redis-server on a free loopback port; stop kills
// it by PID, start brings it back on the same port.
type throwawayRedis struct {
	t    *testing.T
	bin  string
	dir  string
	port string
	cmd  *exec.Cmd
}

func newThrowawayRedis(t *testing.T) *throwawayRedis {
	r := &throwawayRedis{t: t, bin: testenv.Program(t, "redis-server"), dir: t.TempDir()}
	_, r.port, _ = net.SplitHostPort(freeAddr(t))
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *throwawayRedis) addr() string { return "127.0.0.1:" + r.port }

func (r *throwawayRedis) start() {
	r.t.Helper()
	r.cmd = exec.Command(r.bin, "--port", r.port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", r.dir)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis: %v", err)
	}
	waitTCP(r.t, r.addr())
}

func (r *throwawayRedis) stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(r.cmd.Process.Pid, syscall.SIGKILL)
	_ = r.cmd.Wait()
	r.cmd = nil
}

// throwawayPostgres runs its own cluster (initdb as the postgres user) on
// a free loopback port, with trust auth; stop and start use pg_ctl.
type throwawayPostgres struct {
	t       *testing.T
	bindir  string
	dir     string
	port    string
	running bool
}

func newThrowawayPostgres(t *testing.T) *throwawayPostgres {
	t.Helper()
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		testenv.Missing(t, "PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb) not found")
	}
	if _, err := exec.LookPath("runuser"); err != nil || os.Geteuid() != 0 {
		testenv.Missing(t, "a throwaway PostgreSQL needs root and runuser to run initdb as the postgres user")
	}
	p := &throwawayPostgres{t: t, bindir: filepath.Dir(matches[0])}
	dir, err := os.MkdirTemp("", "lk-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p.dir = dir
	_ = os.Chmod(dir, 0o777)
	_, p.port, _ = net.SplitHostPort(freeAddr(t))
	p.run("initdb", "-D", dir+"/data", "-U", "postgres", "--auth=trust", "-E", "UTF8")
	p.start()
	t.Cleanup(func() {
		p.stop()
		os.RemoveAll(dir)
	})
	return p
}

func (p *throwawayPostgres) run(tool string, args ...string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", filepath.Join(p.bindir, tool)}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		p.t.Fatalf("%s: %v\n%s", tool, err, out)
	}
}

func (p *throwawayPostgres) dsn() string {
	return "postgres://postgres@127.0.0.1:" + p.port + "/postgres?sslmode=disable&connect_timeout=3"
}

func (p *throwawayPostgres) start() {
	p.run("pg_ctl", "-D", p.dir+"/data", "-w", "-t", "30", "-l", p.dir+"/log", "-o",
		"-p "+p.port+" -k "+p.dir+" -c listen_addresses=127.0.0.1 -c fsync=off", "start")
	p.running = true
}

func (p *throwawayPostgres) stop() {
	if !p.running {
		return
	}
	p.run("pg_ctl", "-D", p.dir+"/data", "-w", "-t", "30", "-m", "immediate", "stop")
	p.running = false
}

func waitTCP(t *testing.T, addr string) {
	t.Helper()
	for range 100 {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never accepted connections", addr)
}

// faultRig is a serving Latchkey with a user and a client.
type faultRig struct {
	t      *testing.T
	addr   string
	issuer string
	srv    *server
}

func newFaultRig(t *testing.T, storage, ephemeral string) *faultRig {
	t.Helper()
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := writeFile(t, dir, "l.yaml", fmt.Sprintf(`issuer: http://%s
http:
  address: %s
storage:
%s
%s
keys:
  encryptionKeys:
    - id: k1
      key: %s
logging:
  format: json
clients:
  - client_id: app
    client_secret: app-secret
    redirect_uris: [https://app.example/cb]
    require_pkce: false
`, addr, addr, storage, ephemeral, devKey))
	s := startServe(t, cfg, addr)
	s.waitReady(t)
	if r := latchkey(t, "pw-1\n", "users", "create", "--username", "alice", "--password-stdin", "--config", cfg); r.code != 0 {
		t.Fatalf("users create: %s", r.stderr)
	}
	return &faultRig{t: t, addr: addr, issuer: "http://" + addr, srv: s}
}

// login runs authorize + password and returns the code.
func (f *faultRig) login() (int, string) {
	f.t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if req.URL.Host == "app.example" {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	resp, page := fetch(f.t, c, "GET", f.issuer+"/authorize?client_id=app&response_type=code&scope=openid&state=s&redirect_uri="+url.QueryEscape("https://app.example/cb"), nil)
	if resp.StatusCode != 200 {
		return resp.StatusCode, page
	}
	form := url.Values{"username": {"alice"}, "password": {"pw-1"}}
	for _, m := range regexp.MustCompile(`name="(req|csrf)" value="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		form.Set(m[1], m[2])
	}
	resp, page = fetch(f.t, c, "POST", f.issuer+"/login", form)
	if resp.StatusCode != http.StatusSeeOther {
		return resp.StatusCode, page
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	return resp.StatusCode, loc.Query().Get("code")
}

func (f *faultRig) token(code string) (int, string) {
	f.t.Helper()
	req, _ := http.NewRequest("POST", f.issuer+"/token", strings.NewReader(url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"https://app.example/cb"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("app", "app-secret")
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (f *faultRig) ready() (int, string) {
	resp, err := http.Get(f.issuer + "/readyz")
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// within runs fn and fails if it takes longer than the bound (a generous
// bound on "answers within the configured timeout", not a benchmark).
func within(t *testing.T, bound time.Duration, what string, fn func()) {
	t.Helper()
	start := time.Now()
	fn()
	if d := time.Since(start); d > bound {
		t.Errorf("%s took %v, want under %v", what, d, bound)
	}
}

func assertOutage(t *testing.T, f *faultRig, store string) {
	t.Helper()
	code, body := f.ready()
	if code != 503 || !strings.Contains(body, `"`+store+`":"unavailable"`) {
		t.Errorf("readyz during %s outage: %d %s", store, code, body)
	}
	within(t, 15*time.Second, "authorize during outage", func() {
		status, page := f.login()
		if status != http.StatusServiceUnavailable || !strings.Contains(page, "temporarily unavailable") {
			t.Errorf("login during %s outage: %d, want 503 with a clear page:\n%.400s", store, status, page)
		}
	})
	within(t, 15*time.Second, "token during outage", func() {
		status, body := f.token("some-code-" + strconv.Itoa(int(time.Now().UnixNano())))
		if status != http.StatusServiceUnavailable || !strings.Contains(body, `"error":"temporarily_unavailable"`) {
			t.Errorf("token during %s outage: %d %s", store, status, body)
		}
	})
}

func assertRecovered(t *testing.T, f *faultRig, store string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _ := f.ready()
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready 30 s after %s returned", store)
		}
		time.Sleep(200 * time.Millisecond)
	}
	status, code := f.login()
	if status != http.StatusSeeOther {
		t.Fatalf("login after %s returned: %d %s", store, status, code)
	}
	if st, body := f.token(code); st != 200 || !strings.Contains(body, `"id_token"`) {
		t.Fatalf("token after %s returned: %d %s", store, st, body)
	}
}

// TestRedisOutage: Redis stopped while serving gives 503s with a clear
// body, /readyz names it, nothing is signed in, and service resumes when
// Redis returns, without a restart.
func TestRedisOutage(t *testing.T) {
	dsn := testenv.Postgres(t)
	r := newThrowawayRedis(t)
	f := newFaultRig(t, "  postgres:\n    dsn: "+dsn, "ephemeral:\n  redis:\n    addrs: ["+r.addr()+"]")
	// A code obtained before the outage...
	status, code := f.login()
	if status != http.StatusSeeOther {
		t.Fatalf("login: %d %s", status, code)
	}
	r.stop()
	assertOutage(t, f, "ephemeral")
	// ...cannot be redeemed while the store is down (never a half-written
	// token), and Redis lost it (no persistence), so after the outage it is
	// simply invalid.
	if st, body := f.token(code); st != http.StatusServiceUnavailable {
		t.Errorf("token with pre-outage code during outage: %d %s", st, body)
	}
	r.start()
	assertRecovered(t, f, "Redis")
	if st, body := f.token(code); st != 400 || !strings.Contains(body, `"invalid_grant"`) {
		t.Errorf("pre-outage code after a Redis restart: %d %s", st, body)
	}
}

// TestPostgresOutage: the same for the durable store.
func TestPostgresOutage(t *testing.T) {
	addrs, prefix := testenv.Redis(t)
	p := newThrowawayPostgres(t)
	f := newFaultRig(t, "  postgres:\n    dsn: "+p.dsn(), "ephemeral:\n  redis:\n    addrs: ["+strings.Join(addrs, ",")+"]\n  keyPrefix: \""+prefix+"\"")
	status, code := f.login()
	if status != http.StatusSeeOther {
		t.Fatalf("login: %d %s", status, code)
	}
	p.stop()
	assertOutage(t, f, "durable")
	// The code lives in Redis, but redeeming it needs the client and user
	// from PostgreSQL: refused with 503, the code not spent.
	if st, body := f.token(code); st != http.StatusServiceUnavailable {
		t.Errorf("token during PostgreSQL outage: %d %s", st, body)
	}
	p.start()
	assertRecovered(t, f, "PostgreSQL")
}
