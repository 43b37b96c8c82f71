package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemoLogin is `make run` in miniature: serve with the quickstart's
// demo settings prints the demo password once; the demo app signs in as
// demo through Latchkey and shows the ID token claims and userinfo.
func TestDemoLogin(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	demoAddr := freeAddr(t)
	cfg := writeFile(t, dir, "quick.yaml", fmt.Sprintf(`issuer: http://%s
http:
  address: %s
storage:
  sqlite:
    path: %s
keys:
  encryptionKeys:
    - id: dev
      key: %s
demo:
  createUser: true
clients:
  - client_id: demo-app
    client_secret: demo-app-secret
    redirect_uris: [http://%s/callback]
`, addr, addr, filepath.Join(dir, "l.db"), devKey, demoAddr))

	s := startServe(t, cfg, addr)
	s.waitReady(t)
	// The password is the only line on stdout... which startServe merges
	// with stderr: find the line that is neither a log record nor empty.
	password := ""
	for _, line := range strings.Split(s.logs.String(), "\n") {
		if line != "" && !strings.HasPrefix(line, "{") && !strings.HasPrefix(line, "time=") {
			password = line
		}
	}
	if len(password) != 22 {
		t.Fatalf("demo password not printed once on its own line:\n%s", s.logs.String())
	}

	demo := exec.Command(binary(t), "demo-app", "--config", cfg, "--listen", demoAddr, "--base-url", "http://"+demoAddr)
	demo.Env = cleanEnv()
	if err := demo.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(demo.Process.Pid, syscall.SIGTERM)
		_ = demo.Wait()
	})
	waitHTTP(t, "http://"+demoAddr+"/")

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, page := fetch(t, browser, "GET", "http://"+demoAddr+"/login", nil)
	if resp.StatusCode != 200 || !strings.Contains(page, `name="password"`) {
		t.Fatalf("login page: %d\n%s", resp.StatusCode, page)
	}
	form := url.Values{"username": {"demo"}, "password": {password}}
	for _, m := range regexp.MustCompile(`name="(req|csrf)" value="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		form.Set(m[1], m[2])
	}
	resp, page = fetch(t, browser, "POST", "http://"+addr+"/login", form)
	if resp.StatusCode != 200 || !strings.Contains(page, "Signed in as <strong>demo</strong>") {
		t.Fatalf("after login: %d %s\n%s", resp.StatusCode, resp.Request.URL, page)
	}
	for _, want := range []string{`&#34;amr&#34;: [`, `&#34;email&#34;: &#34;demo@example.com&#34;`, `urn:latchkey:acr:pwd`} {
		if !strings.Contains(page, want) {
			t.Errorf("demo page lacks %s:\n%s", want, page)
		}
	}
}

func waitHTTP(t *testing.T, u string) {
	t.Helper()
	for range 100 {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never answered", u)
}

func fetch(t *testing.T, c *http.Client, method, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}
