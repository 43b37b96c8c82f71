package oauth2_test

import (
	"encoding/json"
	"os"
	"regexp"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/latchkeyid/latchkey/providers/oauth2"
)

// TestDocumentedConfigsValidate checks that every oauth2 connector in
// docs/connectors/oauth2.md passes Validate.
func TestDocumentedConfigsValidate(t *testing.T) {
	doc, err := os.ReadFile("../../docs/connectors/oauth2.md")
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
			if c["type"] != oauth2.TypeName {
				continue
			}
			raw, err := json.Marshal(c["config"])
			if err != nil {
				t.Fatal(err)
			}
			n++
			if probs := (oauth2.Type{}).Validate(raw); len(probs) > 0 {
				t.Errorf("connector %v: %v", c["id"], probs)
			}
		}
	}
	if n < 2 {
		t.Fatalf("found %d oauth2 connectors in the docs, want 2", n)
	}
}
