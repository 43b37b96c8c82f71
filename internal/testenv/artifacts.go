package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// EnvArtifacts names the directory tests save artifacts (screenshots) in;
// unset, $TMPDIR/latchkey-test-artifacts.
const EnvArtifacts = "LATCHKEY_TEST_ARTIFACTS"

// Artifacts returns an emptied directory name under the artifacts
// directory (not created: the test or its browser creates it).
func Artifacts(t testing.TB, name string) string {
	t.Helper()
	base := os.Getenv(EnvArtifacts)
	if base == "" {
		base = filepath.Join(os.TempDir(), "latchkey-test-artifacts")
	}
	dir := filepath.Join(base, name)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}
