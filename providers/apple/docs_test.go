package apple_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/latchkeyid/latchkey/providers/apple"
	"github.com/latchkeyid/latchkey/providers/apple/appletest"
)

// TestDocumentedConfigsValidate checks that every apple connector in
// docs/connectors/apple.md passes Validate, CEL expressions and all. A
// privateKey file: reference is replaced by a key, as the config loader
// replaces it by the file's content; a fragment showing some keys gets the
// required ones.
func TestDocumentedConfigsValidate(t *testing.T) {
	doc, err := os.ReadFile("../../docs/connectors/apple.md")
	if err != nil {
		t.Fatal(err)
	}
	p8, _ := appletest.NewKey(t)
	n := 0
	for _, block := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(doc, -1) {
		var v any
		if err := yaml.Unmarshal(block[1], &v); err != nil {
			t.Fatalf("YAML block does not parse: %v\n%s", err, block[1])
		}
		if m, ok := v.(map[string]any); ok {
			if cs, ok := m["connectors"]; ok {
				v = cs
			} else if frag, ok := m["config"].(map[string]any); ok {
				for k, def := range map[string]any{"clientID": "com.example.signin", "teamID": "A1B2C3D4E5", "keyID": "KEY123ABCD", "privateKey": "file:/k.p8"} {
					if _, set := frag[k]; !set {
						frag[k] = def
					}
				}
				v = []any{map[string]any{"id": "fragment", "type": apple.TypeName, "config": frag}}
			}
		}
		list, _ := v.([]any)
		for _, e := range list {
			c, _ := e.(map[string]any)
			if c["type"] != apple.TypeName {
				continue
			}
			cfg, _ := c["config"].(map[string]any)
			if k, _ := cfg["privateKey"].(string); strings.HasPrefix(k, "file:") {
				cfg["privateKey"] = p8
			} else {
				t.Errorf("connector %v: privateKey should be a file: reference in the docs", c["id"])
			}
			raw, err := json.Marshal(cfg)
			if err != nil {
				t.Fatal(err)
			}
			n++
			if probs := (apple.Type{}).Validate(raw); len(probs) > 0 {
				t.Errorf("connector %v: %v", c["id"], probs)
			}
		}
	}
	if n != 3 {
		t.Fatalf("found %d apple connectors in the docs, want 3", n)
	}
}
