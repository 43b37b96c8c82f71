package github_test

import (
	"encoding/json"
	"testing"

	"github.com/latchkeyid/latchkey/providers/github"
	"github.com/latchkeyid/latchkey/providers/providertest"
)

// TestDocumentedConfigsValidate checks that every github connector in
// docs/connectors/github.md passes Validate, CEL expressions and all.
func TestDocumentedConfigsValidate(t *testing.T) {
	n := 0
	for _, c := range providertest.DocumentedConnectors(t, "../../docs/connectors/github.md", github.TypeName, nil) {
		raw, err := json.Marshal(c.Config)
		if err != nil {
			t.Fatal(err)
		}
		n++
		if probs := (github.Type{}).Validate(raw); len(probs) > 0 {
			t.Errorf("connector %v: %v", c.ID, probs)
		}
	}
	if n != 4 {
		t.Fatalf("found %d github connectors in the docs, want 4", n)
	}
}
