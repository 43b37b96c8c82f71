package e2e

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestTokenEventsDrainedOnSIGTERM: serve writes token.issued events in the
// background (batched); every grant answered before SIGTERM has its event
// in the audit log after serve exits, with the grant's jti.
func TestTokenEventsDrainedOnSIGTERM(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := writeFile(t, dir, "e.yaml", sqliteConfig(dir, addr)+`clients:
  - client_id: svc
    client_secret: svc-secret
    redirect_uris: []
    grant_types: [client_credentials]
    scope: api
`)
	s := startServe(t, cfg, addr)
	s.waitReady(t)
	const n = 200
	client := &http.Client{Timeout: 10 * time.Second}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		jtis = map[string]bool{}
	)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				req, _ := http.NewRequest("POST", "http://"+addr+"/token", strings.NewReader("grant_type=client_credentials"))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth("svc", "svc-secret")
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				var tok struct {
					AccessToken string `json:"access_token"`
				}
				err = json.NewDecoder(resp.Body).Decode(&tok)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					t.Errorf("token: %d %v", resp.StatusCode, err)
					return
				}
				jti := jwtClaim(t, tok.AccessToken, "jti")
				mu.Lock()
				jtis[jti] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	s.stop(t) // right after the last answer: events may still be queued
	if s.exitErr != nil {
		t.Fatalf("serve exit after SIGTERM: %v", s.exitErr)
	}
	r := latchkey(t, "", "audit", "list", "--type", "token.issued", "--json", "--config", cfg)
	var out struct {
		Events []struct {
			ClientID string         `json:"client_id"`
			Data     map[string]any `json:"data"`
		} `json:"events"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("audit list: %v %s", err, r.stderr)
	}
	if len(out.Events) != n || len(jtis) != n {
		t.Fatalf("%d token.issued events for %d grants (%d jtis)", len(out.Events), n, len(jtis))
	}
	for _, e := range out.Events {
		jti, _ := e.Data["jti"].(string)
		if e.ClientID != "svc" || !jtis[jti] {
			t.Fatalf("event %+v does not match a grant", e)
		}
	}
}

// jwtClaim is a string claim of a compact JWT's payload (unverified: the
// test only matches tokens to events).
func jwtClaim(t *testing.T, tok, name string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWT: %q", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	if err == nil {
		err = json.Unmarshal(raw, &claims)
	}
	if err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	v, _ := claims[name].(string)
	return v
}
