package oidc_test

import (
	"encoding/json"
	"testing"

	"github.com/latchkeyid/latchkey/providers/oidc"
	"github.com/latchkeyid/latchkey/providers/providertest"
)

// TestDocumentedConfigsValidate checks that every oidc connector in
// docs/connectors/oidc.md (the presets included) passes Validate, CEL
// expressions and all.
func TestDocumentedConfigsValidate(t *testing.T) {
	n := 0
	for _, c := range providertest.DocumentedConnectors(t, "../../docs/connectors/oidc.md", oidc.TypeName, map[string]any{"issuer": "https://idp.example.com", "clientID": "id", "clientSecret": "s"}) {
		raw, err := json.Marshal(c.Config)
		if err != nil {
			t.Fatal(err)
		}
		n++
		if probs := (oidc.Type{}).Validate(raw); len(probs) > 0 {
			t.Errorf("connector %v: %v", c.ID, probs)
		}
	}
	if n < 9 {
		t.Fatalf("found %d oidc connectors in the docs, want at least 9 (examples and presets)", n)
	}
}
