package oauth2_test

import (
	"encoding/json"
	"testing"

	"github.com/latchkeyid/latchkey/providers/oauth2"
	"github.com/latchkeyid/latchkey/providers/providertest"
)

// TestDocumentedConfigsValidate checks that every oauth2 connector in
// docs/connectors/oauth2.md passes Validate.
func TestDocumentedConfigsValidate(t *testing.T) {
	n := 0
	for _, c := range providertest.DocumentedConnectors(t, "../../docs/connectors/oauth2.md", oauth2.TypeName, nil) {
		raw, err := json.Marshal(c.Config)
		if err != nil {
			t.Fatal(err)
		}
		n++
		if probs := (oauth2.Type{}).Validate(raw); len(probs) > 0 {
			t.Errorf("connector %v: %v", c.ID, probs)
		}
	}
	if n < 2 {
		t.Fatalf("found %d oauth2 connectors in the docs, want 2", n)
	}
}
