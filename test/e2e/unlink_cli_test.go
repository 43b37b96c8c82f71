package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/storage"
	"github.com/latchkeyid/latchkey/storage/sqlstore"
)

// TestUsersUnlinkCLI: `users unlink --username U --connector ID` removes
// the user's identities at that connector (identity.unlinked), and
// refuses to remove the last way in of a user without a password.
func TestUsersUnlinkCLI(t *testing.T) {
	cfg := migrated(t, "")
	if r := latchkey(t, "pw\n", "users", "create", "--username", "carol", "--password-stdin", "--config", cfg); r.code != 0 {
		t.Fatal(r.stderr)
	}
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, sqlstore.Options{Dialect: sqlstore.DialectSQLite, DSN: filepath.Join(filepath.Dir(cfg), "latchkey.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	carol, err := db.GetUserByUsername(ctx, "carol")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	// dave signed up through github and also linked google: no password.
	dave := storage.User{ID: "u-dave", Username: "dave", CreatedAt: now, UpdatedAt: now}
	if err := db.CreateUser(ctx, dave); err != nil {
		t.Fatal(err)
	}
	for _, id := range []storage.Identity{
		{ConnectorID: "github", Subject: "c-1", UserID: carol.ID, CreatedAt: now},
		{ConnectorID: "github", Subject: "d-1", UserID: dave.ID, CreatedAt: now},
		{ConnectorID: "google", Subject: "d-2", UserID: dave.ID, CreatedAt: now},
	} {
		if err := db.CreateIdentity(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	run := func(wantCode int, wantStderr string, args ...string) {
		t.Helper()
		r := latchkey(t, "", append(append([]string{"users", "unlink"}, args...), "--config", cfg)...)
		if r.code != wantCode || lastLine(r.stderr) != wantStderr || r.stdout != "" {
			t.Fatalf("unlink %v: %d %q %q; want %d %q", args, r.code, r.stdout, r.stderr, wantCode, wantStderr)
		}
	}
	run(1, "latchkey: --connector is required", "--username", "carol")
	run(1, `latchkey: no user "nobody"`, "--username", "nobody", "--connector", "github")
	run(1, `latchkey: user "carol" has no identity at connector "google"`, "--username", "carol", "--connector", "google")
	// carol keeps her password.
	run(0, `carol: unlinked 1 identity(ies) at "github"`, "--username", "carol", "--connector", "github")
	// dave keeps google.
	run(0, `dave: unlinked 1 identity(ies) at "github"`, "--username", "dave", "--connector", "github")
	// google is dave's last way in.
	run(1, `latchkey: user "dave": not unlinking "google": it is the user's last way to sign in (no password and no other linked identity); set a password or link another connector first`,
		"--username", "dave", "--connector", "google")
	if ids, _ := db.ListUserIdentities(ctx, dave.ID); len(ids) != 1 || ids[0].ConnectorID != "google" {
		t.Fatalf("dave's identities %v", ids)
	}
	if ids, _ := db.ListUserIdentities(ctx, carol.ID); len(ids) != 0 {
		t.Fatalf("carol's identities %v", ids)
	}
	r := latchkey(t, "", "audit", "list", "--type", "identity.unlinked", "--json", "--config", cfg)
	if strings.Count(r.stdout, `"identity.unlinked"`) != 2 || !strings.Contains(r.stdout, `"d-1"`) || !strings.Contains(r.stdout, `"c-1"`) {
		t.Errorf("events: %s", r.stdout)
	}
}
