package apple_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/latchkeyid/latchkey/providers/apple"
	"github.com/latchkeyid/latchkey/providers/apple/appletest"
	"github.com/latchkeyid/latchkey/providers/providertest"
)

// TestDocumentedConfigsValidate checks that every apple connector in
// docs/connectors/apple.md passes Validate, CEL expressions and all. A
// privateKey file: reference is replaced by a key, as the config loader
// replaces it by the file's content; a fragment showing some keys gets the
// required ones.
func TestDocumentedConfigsValidate(t *testing.T) {
	p8, _ := appletest.NewKey(t)
	n := 0
	for _, c := range providertest.DocumentedConnectors(t, "../../docs/connectors/apple.md", apple.TypeName, map[string]any{"clientID": "com.example.signin", "teamID": "A1B2C3D4E5", "keyID": "KEY123ABCD", "privateKey": "file:/k.p8"}) {
		if k, _ := c.Config["privateKey"].(string); strings.HasPrefix(k, "file:") {
			c.Config["privateKey"] = p8
		} else {
			t.Errorf("connector %v: privateKey should be a file: reference in the docs", c.ID)
		}
		raw, err := json.Marshal(c.Config)
		if err != nil {
			t.Fatal(err)
		}
		n++
		if probs := (apple.Type{}).Validate(raw); len(probs) > 0 {
			t.Errorf("connector %v: %v", c.ID, probs)
		}
	}
	if n != 3 {
		t.Fatalf("found %d apple connectors in the docs, want 3", n)
	}
}
