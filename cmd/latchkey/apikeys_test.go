package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkeyid/latchkey/api"
)

// TestAPIKeysCLI: create prints the key alone on stdout and stores only
// its hash; list shows prefixes and states; rotate prints the successor;
// revoke ends a key; bad flags are clear errors.
func TestAPIKeysCLI(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "latchkey.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(adminTestConfig, 10, fmt.Sprintf("storage: {sqlite: {path: %s}}\n", filepath.Join(dir, "lk.db")))), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(string) (string, bool) { return "", false }
	latchkey := func(args ...string) (string, string, int) {
		var out, errOut bytes.Buffer
		code := run(t.Context(), append([]string{"--config", cfg}, args...), strings.NewReader(""), &out, &errOut, env)
		return out.String(), errOut.String(), code
	}
	if _, e, code := latchkey("migrate", "up"); code != 0 {
		t.Fatal(e)
	}
	out, e, code := latchkey("apikeys", "create", "--scopes", "clients:read,audit:read", "--expires", "30d", "--name", "ci")
	key := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(key, "lk_") || len(key) != 57 || strings.Count(out, "\n") != 1 || !strings.Contains(e, key[:13]) {
		t.Fatalf("create: %d %q %q", code, out, e)
	}
	db := filepath.Join(dir, "lk.db")
	raw, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	wal, _ := os.ReadFile(db + "-wal") // recent writes may still be in the log
	raw = append(raw, wal...)
	if bytes.Contains(raw, []byte(key[14:])) || !bytes.Contains(raw, []byte(api.HashKey(key))) {
		t.Fatal("the database holds the key, or not its hash")
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"apikeys", "create"}, "--scopes: at least one scope is required"},
		{[]string{"apikeys", "create", "--scopes", "clients:delete,audit:write"}, `--scopes[0]: "clients:delete" is not a scope`},
		{[]string{"apikeys", "create", "--scopes", "users:*", "--expires", "soon"}, `--expires "soon": want a duration from now`},
		{[]string{"apikeys", "revoke"}, "--prefix is required"},
		{[]string{"apikeys", "revoke", "--prefix", "lk_0000000000"}, `no API key "lk_0000000000"`},
		{[]string{"apikeys", "rotate", "--prefix", key[:13], "--overlap", "-1h"}, `--overlap "-1h"`},
	} {
		_, e, code := latchkey(tc.args...)
		if code != 1 || !strings.Contains(e, tc.want) {
			t.Errorf("%v: %d %q, want %q", tc.args, code, e, tc.want)
		}
	}

	out, e, code = latchkey("--json", "apikeys", "rotate", "--prefix", key[:13], "--overlap", "1h")
	var rotated struct{ Key, Prefix, Replaces string }
	if code != 0 || json.Unmarshal([]byte(out), &rotated) != nil || rotated.Replaces != key[:13] || !strings.HasPrefix(rotated.Key, rotated.Prefix+"_") {
		t.Fatalf("rotate: %d %q %q", code, out, e)
	}
	if _, e, code = latchkey("apikeys", "revoke", "--prefix", rotated.Prefix); code != 0 {
		t.Fatal(e)
	}
	out, _, _ = latchkey("apikeys", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], key[:13]) || !strings.Contains(lines[1], "rotated") ||
		!strings.Contains(lines[2], rotated.Prefix) || !strings.Contains(lines[2], "revoked") || strings.Contains(out, key[14:]) {
		t.Fatalf("list:\n%s", out)
	}
	out, _, _ = latchkey("--json", "apikeys", "list")
	if strings.Contains(out, "hash") || strings.Contains(out, api.HashKey(key)) {
		t.Fatalf("list --json shows hashes: %s", out)
	}
}
