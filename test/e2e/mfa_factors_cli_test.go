package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/mfa"
	"github.com/latchkeyid/latchkey/storage"
	"github.com/latchkeyid/latchkey/storage/sqlstore"
)

// TestMFAListRemoveCLI: `mfa list` shows a user's named authenticators
// without their data; `mfa remove` removes one (event mfa.removed) and
// refuses an id of another user.
func TestMFAListRemoveCLI(t *testing.T) {
	cfg := migrated(t, "")
	for _, name := range []string{"dave", "erin"} {
		if r := latchkey(t, "pw\n", "users", "create", "--username", name, "--password-stdin", "--config", cfg); r.code != 0 {
			t.Fatal(r.stderr)
		}
	}
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, sqlstore.Options{Dialect: sqlstore.DialectSQLite, DSN: filepath.Join(filepath.Dir(cfg), "latchkey.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dave, _ := db.GetUserByUsername(ctx, "dave")
	erin, _ := db.GetUserByUsername(ctx, "erin")
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []storage.MFACredential{
		{ID: "wa-laptop", UserID: dave.ID, Type: mfa.TypeWebAuthn, Label: "Laptop", Data: []byte(`{"secret":"s3cr3t"}`), CreatedAt: at},
		{ID: "wa-yubikey", UserID: dave.ID, Type: mfa.TypeWebAuthn, Label: "YubiKey", Data: []byte("{}"), CreatedAt: at.Add(time.Hour), LastUsedAt: at.Add(2 * time.Hour)},
		{ID: "wa-erin", UserID: erin.ID, Type: mfa.TypeWebAuthn, Label: "Phone", Data: []byte("{}"), CreatedAt: at},
		{ID: "rc-erin", UserID: erin.ID, Type: mfa.TypeRecovery, Label: "recovery codes", Data: []byte("{}"), CreatedAt: at},
	} {
		if err := db.CreateMFACredential(ctx, c); err != nil {
			t.Fatal(err)
		}
	}

	r := latchkey(t, "", "mfa", "list", "--username", "dave", "--config", cfg)
	want := "ID          TYPE      NAME     CREATED               LAST USED\n" +
		"wa-laptop   webauthn  Laptop   2026-01-02T03:04:05Z  -\n" +
		"wa-yubikey  webauthn  YubiKey  2026-01-02T04:04:05Z  2026-01-02T05:04:05Z\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("mfa list: %d\n%s\nwant\n%s%s", r.code, r.stdout, want, r.stderr)
	}
	r = latchkey(t, "", "mfa", "list", "--username", "dave", "--json", "--config", cfg)
	var out struct {
		Factors []map[string]any `json:"factors"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &out) != nil || len(out.Factors) != 2 || out.Factors[1]["label"] != "YubiKey" || strings.Contains(r.stdout, "s3cr3t") {
		t.Fatalf("mfa list --json: %d %s", r.code, r.stdout)
	}

	r = latchkey(t, "", "mfa", "remove", "--username", "dave", "--id", "wa-erin", "--config", cfg)
	if r.code != 1 || lastLine(r.stderr) != `latchkey: user "dave" has no second factor "wa-erin"` {
		t.Fatalf("removing another user's factor: %d %q", r.code, r.stderr)
	}
	r = latchkey(t, "", "mfa", "remove", "--username", "dave", "--id", "wa-laptop", "--config", cfg)
	if r.code != 0 || lastLine(r.stderr) != `removed webauthn "Laptop" (wa-laptop) of user "dave"` {
		t.Fatalf("mfa remove: %d %q", r.code, r.stderr)
	}
	creds, _ := db.ListMFACredentials(ctx, dave.ID)
	if len(creds) != 1 || creds[0].ID != "wa-yubikey" {
		t.Fatalf("dave's factors after remove: %v", creds)
	}
	if left, _ := db.ListMFACredentials(ctx, erin.ID); len(left) != 2 {
		t.Fatalf("erin's factors: %v", left)
	}
	es, err := db.ListEvents(ctx, storage.EventFilter{Type: "mfa.removed"})
	if err != nil || len(es) != 1 || es[0].Data["credential_id"] != "wa-laptop" || es[0].Data["label"] != "Laptop" {
		t.Fatalf("mfa.removed events %+v %v", es, err)
	}
	// Erin's last factor but recovery codes: the codes go too.
	r = latchkey(t, "", "mfa", "remove", "--username", "erin", "--id", "wa-erin", "--json", "--config", cfg)
	var removed map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &removed) != nil || removed["removed"] != "wa-erin" || fmt.Sprint(removed["alsoRemoved"]) != "[rc-erin]" {
		t.Fatalf("mfa remove erin: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if left, _ := db.ListMFACredentials(ctx, erin.ID); len(left) != 0 {
		t.Fatalf("erin's factors: %v", left)
	}
	es, _ = db.ListEvents(ctx, storage.EventFilter{Type: "mfa.removed", UserID: erin.ID})
	if len(es) != 2 || es[0].Data["credential_id"] != "rc-erin" || es[0].Data["reason"] != "last_factor_removed" || es[1].Data["credential_id"] != "wa-erin" {
		t.Fatalf("erin's mfa.removed events %+v", es)
	}
}
