package recovery_test

import (
	"path/filepath"
	"testing"

	"github.com/latchkeyid/latchkey/mfa"
	"github.com/latchkeyid/latchkey/mfa/recovery"
	"github.com/latchkeyid/latchkey/storage"
	"github.com/latchkeyid/latchkey/storage/sqlstore"
)

// TestIssue: the first call creates a set; the next regenerates it in
// place (same id, label kept, old codes refused); extra sets are deleted.
func TestIssue(t *testing.T) {
	ctx := t.Context()
	db, err := sqlstore.Open(ctx, sqlstore.Options{Dialect: sqlstore.DialectSQLite, DSN: filepath.Join(t.TempDir(), "l.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateUser(ctx, storage.User{ID: "u1", Username: "dave"}); err != nil {
		t.Fatal(err)
	}
	f := recovery.New(recovery.Options{})
	first, err := f.Issue(ctx, db, "u1")
	creds, _ := db.ListMFACredentials(ctx, "u1")
	if err != nil || len(first) != 10 || len(creds) != 1 || creds[0].Type != mfa.TypeRecovery || creds[0].Label != "recovery codes" {
		t.Fatalf("first: %v %d codes, %+v", err, len(first), creds)
	}
	if err := db.UpdateMFACredential(ctx, creds[0].ID, func(c storage.MFACredential) (storage.MFACredential, error) { c.Label = "drawer"; return c, nil }); err != nil {
		t.Fatal(err)
	}
	extra, _ := recovery.New(recovery.Options{}).BeginEnrollment(ctx, mfa.EnrollmentRequest{UserID: "u1", Label: "old"})
	extraCred, err := f.FinishEnrollment(ctx, extra.Pending, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateMFACredential(ctx, extraCred); err != nil {
		t.Fatal(err)
	}

	second, err := f.Issue(ctx, db, "u1")
	after, _ := db.ListMFACredentials(ctx, "u1")
	if err != nil || len(second) != 10 || len(after) != 1 || after[0].ID != creds[0].ID || after[0].Label != "drawer" {
		t.Fatalf("second: %v %d codes, %+v", err, len(second), after)
	}
	if _, err := f.Verify(ctx, after[0], nil, first[0]); err == nil {
		t.Fatal("an old code still works")
	}
	if _, err := f.Verify(ctx, after[0], nil, second[0]); err != nil {
		t.Fatalf("a new code is refused: %v", err)
	}
}
