package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
)

// TestServeAdminAPI: `latchkey serve` with admin.enabled answers the admin
// API on its own listener with a key from `latchkey apikeys create`; the
// public listener does not serve it; a revoked key is refused; SIGTERM
// stops both listeners.
func TestServeAdminAPI(t *testing.T) {
	dir := t.TempDir()
	addr, admin := freeAddr(t), freeAddr(t)
	cfg := writeFile(t, dir, "latchkey.yaml", sqliteConfig(dir, addr)+"admin:\n  enabled: true\n  listen: "+admin+"\n")
	s := startServe(t, cfg, addr)
	s.waitReady(t)

	r := latchkey(t, "", "apikeys", "create", "--scopes", "clients:read", "--config", cfg)
	key := strings.TrimSpace(r.stdout)
	if r.code != 0 || !strings.HasPrefix(key, "lk_") {
		t.Fatalf("apikeys create: %d %q %q", r.code, r.stdout, r.stderr)
	}
	get := func(base, path, key string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://"+base+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// The built-in clients of the account page and the admin console.
	code, body := get(admin, "/api/v1/clients", key)
	var list struct {
		Clients []struct {
			ID string `json:"client_id"`
		} `json:"clients"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &list) != nil || len(list.Clients) != 2 || list.Clients[0].ID != "latchkey-account" || list.Clients[1].ID != "latchkey-admin" {
		t.Fatalf("GET /api/v1/clients: %d %s", code, body)
	}
	if code, _ := get(addr, "/api/v1/clients", key); code != 404 {
		t.Fatalf("the public listener answered the admin API: %d", code)
	}
	jar, _ := cookiejar.New(nil)
	resp, err := (&http.Client{Jar: jar}).Get("http://" + admin + "/admin/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Request.URL.Host != addr || !strings.Contains(string(page), `name="password"`) {
		t.Fatalf("the console did not lead to Latchkey's login page: %d %s", resp.StatusCode, resp.Request.URL)
	}
	if r := latchkey(t, "", "apikeys", "revoke", "--prefix", key[:13], "--config", cfg); r.code != 0 {
		t.Fatalf("revoke: %s", r.stderr)
	}
	if code, _ := get(admin, "/api/v1/clients", key); code != 401 {
		t.Fatalf("revoked key: %d", code)
	}
	if strings.Contains(s.logs.String(), key[14:]) {
		t.Fatal("the API key reached the server log")
	}
}
