package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/mfa"
	"github.com/latchkeyid/latchkey/mfa/recovery"
	"github.com/latchkeyid/latchkey/storage"
	"github.com/latchkeyid/latchkey/storage/sqlstore"
)

// TestMFARecoveryCodesCLI: `mfa recovery-codes` prints a new set of 10
// codes alone on stdout and voids the old set; a user without a second
// factor gets none; `mfa reset` removes everything.
func TestMFARecoveryCodesCLI(t *testing.T) {
	cfg := migrated(t, "")
	if r := latchkey(t, "pw\n", "users", "create", "--username", "carol", "--password-stdin", "--config", cfg); r.code != 0 {
		t.Fatal(r.stderr)
	}
	r := latchkey(t, "", "mfa", "recovery-codes", "--username", "carol", "--config", cfg)
	if r.code != 1 || lastLine(r.stderr) != `latchkey: user "carol" has no second factor: recovery codes back one up (enroll a factor first)` || r.stdout != "" {
		t.Fatalf("without a factor: %d %q %q", r.code, r.stdout, r.stderr)
	}

	ctx := context.Background()
	db, err := sqlstore.Open(ctx, sqlstore.Options{Dialect: sqlstore.DialectSQLite, DSN: filepath.Join(filepath.Dir(cfg), "latchkey.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	u, err := db.GetUserByUsername(ctx, "carol")
	if err != nil {
		t.Fatal(err)
	}
	// A TOTP credential stands in for an enrolled factor (the command only
	// needs one to exist).
	if err := db.CreateMFACredential(ctx, storage.MFACredential{ID: "totp-1", UserID: u.ID, Type: mfa.TypeTOTP, Data: []byte("{}"), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}

	first := latchkey(t, "", "mfa", "recovery-codes", "--username", "carol", "--config", cfg)
	codes1 := strings.Fields(first.stdout)
	if first.code != 0 || len(codes1) != 10 || strings.Count(first.stdout, "\n") != 10 {
		t.Fatalf("first set: %d %q %q", first.code, first.stdout, first.stderr)
	}
	second := latchkey(t, "", "mfa", "recovery-codes", "--username", "carol", "--json", "--config", cfg)
	var out struct {
		Codes []string `json:"recovery_codes"`
	}
	if second.code != 0 || json.Unmarshal([]byte(second.stdout), &out) != nil || len(out.Codes) != 10 {
		t.Fatalf("second set: %d %q", second.code, second.stdout)
	}

	creds, err := db.ListMFACredentials(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	var rc storage.MFACredential
	for _, c := range creds {
		if c.Type == mfa.TypeRecovery {
			rc = c
		}
	}
	if rc.ID == "" || len(creds) != 2 {
		t.Fatalf("credentials after regenerating twice: %+v", creds)
	}
	f := recovery.New(recovery.Options{})
	if _, err := f.Verify(ctx, rc, nil, codes1[0]); !errors.Is(err, mfa.ErrInvalidCode) {
		t.Errorf("a code of the voided set: err = %v, want ErrInvalidCode", err)
	}
	if _, err := f.Verify(ctx, rc, nil, out.Codes[3]); err != nil {
		t.Errorf("a code of the new set: %v", err)
	}
	if strings.Contains(first.stderr, codes1[0]) {
		t.Error("a recovery code reached stderr")
	}

	r = latchkey(t, "", "audit", "list", "--type", "mfa.recovery.regenerated", "--json", "--config", cfg)
	if strings.Count(r.stdout, `"mfa.recovery.regenerated"`) != 2 {
		t.Errorf("events: %s", r.stdout)
	}
	if r = latchkey(t, "", "mfa", "reset", "--username", "carol", "--config", cfg); r.code != 0 {
		t.Fatalf("reset: %s", r.stderr)
	}
	if creds, _ := db.ListMFACredentials(ctx, u.ID); len(creds) != 0 {
		t.Errorf("after reset: %d credentials", len(creds))
	}
}
