package upstream_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/latchkeyid/latchkey/providers/upstream"
)

// FuzzLookup feeds upstream-controlled user documents and paths to the
// claim readers: they must never panic.
func FuzzLookup(f *testing.F) {
	f.Add(`{"id": 1, "user": {"emails": [{"address": "a@example.com"}]}}`, "user.emails.0.address")
	f.Add(`{"groups": ["a", 2, null, {"x": 1}]}`, "groups")
	f.Add(`{"a": [[1, 2], [3]]}`, "a.1.0")
	f.Add(`{"n": 1e400}`, "n")
	f.Add(`{"": {"": 1}}`, ".")
	f.Fuzz(func(t *testing.T, doc, path string) {
		d := json.NewDecoder(strings.NewReader(doc))
		d.UseNumber()
		var m map[string]any
		if d.Decode(&m) != nil {
			return
		}
		v, _ := upstream.Lookup(m, path)
		_ = upstream.AsString(v)
		_ = upstream.AsStrings(v)
		_ = upstream.AsBool(v)
	})
}
