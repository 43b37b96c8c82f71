package oidc_test

import (
	"encoding/json"
	"os"
	"regexp"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/latchkeyid/latchkey/providers/oidc"
)

// TestDocumentedConfigsValidate checks that every oidc connector in
// docs/connectors/oidc.md (the presets included) passes Validate, CEL
// expressions and all.
func TestDocumentedConfigsValidate(t *testing.T) {
	doc, err := os.ReadFile("../../docs/connectors/oidc.md")
	if err != nil {
		t.Fatal(err)
	}
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
				// A fragment showing some keys: complete the required ones.
				for k, def := range map[string]any{"issuer": "https://idp.example.com", "clientID": "id", "clientSecret": "s"} {
					if _, set := frag[k]; !set {
						frag[k] = def
					}
				}
				v = []any{map[string]any{"id": "fragment", "type": oidc.TypeName, "config": frag}}
			}
		}
		list, _ := v.([]any)
		for _, e := range list {
			c, _ := e.(map[string]any)
			if c["type"] != oidc.TypeName {
				continue
			}
			raw, err := json.Marshal(c["config"])
			if err != nil {
				t.Fatal(err)
			}
			n++
			if probs := (oidc.Type{}).Validate(raw); len(probs) > 0 {
				t.Errorf("connector %v: %v", c["id"], probs)
			}
		}
	}
	if n < 9 {
		t.Fatalf("found %d oidc connectors in the docs, want at least 9 (examples and presets)", n)
	}
}
