package migrations_test

import (
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/latchkeyid/latchkey/migrations"
)

// TestDialectsMatch: every migration exists for both dialects under the
// same name, is named NNNNN_name.sql with versions 1, 2, 3... and has an Up
// and a Down section.
func TestDialectsMatch(t *testing.T) {
	list := func(fsys fs.FS) []string {
		t.Helper()
		names, err := fs.Glob(fsys, "*")
		if err != nil {
			t.Fatal(err)
		}
		return names
	}
	sqlite, postgres := list(migrations.SQLite), list(migrations.Postgres)
	if !slices.Equal(sqlite, postgres) {
		t.Fatalf("sqlite has %q, postgres has %q: want the same files", sqlite, postgres)
	}
	if len(sqlite) == 0 {
		t.Fatal("no migrations embedded")
	}
	name := regexp.MustCompile(`^(\d{5})_[a-z0-9_]+\.sql$`)
	for i, n := range sqlite {
		m := name.FindStringSubmatch(n)
		if m == nil {
			t.Fatalf("%q is not named NNNNN_name.sql", n)
		}
		if want := fmt.Sprintf("%05d", i+1); m[1] != want {
			t.Fatalf("%q has version %s, want %s (no gaps)", n, m[1], want)
		}
		for _, fsys := range []fs.FS{migrations.SQLite, migrations.Postgres} {
			b, err := fs.ReadFile(fsys, n)
			if err != nil {
				t.Fatal(err)
			}
			up := strings.Index(string(b), "-- +goose Up\n")
			down := strings.Index(string(b), "-- +goose Down\n")
			if up < 0 || down < up {
				t.Fatalf("%s: want a -- +goose Up section followed by a -- +goose Down section", n)
			}
		}
	}
}
