package github_test

import (
	"encoding/json"
	"os"
	"regexp"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/latchkeyid/latchkey/providers/github"
)

// TestDocumentedConfigsValidate checks that every github connector in
// docs/connectors/github.md passes Validate, CEL expressions and all.
func TestDocumentedConfigsValidate(t *testing.T) {
	doc, err := os.ReadFile("../../docs/connectors/github.md")
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
			v = m["connectors"]
		}
		list, _ := v.([]any)
		for _, e := range list {
			c, _ := e.(map[string]any)
			if c["type"] != github.TypeName {
				continue
			}
			raw, err := json.Marshal(c["config"])
			if err != nil {
				t.Fatal(err)
			}
			n++
			if probs := (github.Type{}).Validate(raw); len(probs) > 0 {
				t.Errorf("connector %v: %v", c["id"], probs)
			}
		}
	}
	if n != 4 {
		t.Fatalf("found %d github connectors in the docs, want 4", n)
	}
}
