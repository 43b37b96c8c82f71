package facebook_test

import (
	"encoding/json"
	"testing"

	"github.com/latchkeyid/latchkey/providers/facebook"
	"github.com/latchkeyid/latchkey/providers/providertest"
)

// TestDocumentedConfigsValidate checks that every facebook connector in
// docs/connectors/facebook.md passes Validate, CEL expressions and all.
func TestDocumentedConfigsValidate(t *testing.T) {
	n := 0
	for _, c := range providertest.DocumentedConnectors(t, "../../docs/connectors/facebook.md", facebook.TypeName, nil) {
		raw, err := json.Marshal(c.Config)
		if err != nil {
			t.Fatal(err)
		}
		n++
		if probs := (facebook.Type{}).Validate(raw); len(probs) > 0 {
			t.Errorf("connector %v: %v", c.ID, probs)
		}
	}
	if n != 2 {
		t.Fatalf("found %d facebook connectors in the docs, want 2", n)
	}
}
