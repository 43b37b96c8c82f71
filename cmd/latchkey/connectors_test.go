package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/latchkeyid/latchkey/internal/secretbox"
	"github.com/latchkeyid/latchkey/storage"
)

// TestConnectorSecretsSealed: clientSecret is stored sealed (bound to the
// connector id), opens back to the same config, and other keys stay as
// they were.
func TestConnectorSecretsSealed(t *testing.T) {
	ring, err := secretbox.NewKeyring([]secretbox.Key{{ID: "k1", Secret: make([]byte, 32)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := storage.Connector{ID: "op", Type: "oidc", Config: json.RawMessage(`{"clientID":"x","clientSecret":"s3cret","issuer":"https://op.example"}`)}
	sealed, err := sealConnectorSecrets(ring, c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(sealed.Config), "s3cret") || !strings.Contains(string(sealed.Config), `"clientSecret":"sealed:`) {
		t.Fatalf("sealed config %s", sealed.Config)
	}
	again, _ := sealConnectorSecrets(ring, sealed)
	if string(again.Config) != string(sealed.Config) {
		t.Fatal("sealing twice changed the config")
	}
	plain, err := unsealConnectorSecrets(ring, sealed)
	if err != nil {
		t.Fatal(err)
	}
	var got, want map[string]any
	_ = json.Unmarshal(plain, &got)
	_ = json.Unmarshal(c.Config, &want)
	if got["clientSecret"] != "s3cret" || got["clientID"] != "x" || len(got) != len(want) {
		t.Fatalf("unsealed %s", plain)
	}
	moved := sealed
	moved.ID = "other"
	if _, err := unsealConnectorSecrets(ring, moved); err == nil {
		t.Fatal("a sealed secret copied to another connector opened")
	}
}
