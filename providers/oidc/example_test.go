package oidc_test

import (
	"encoding/json"
	"fmt"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/oauth2"
	"github.com/latchkeyid/latchkey/providers/oidc"
)

// cmd builds the registry as a plain map and validates each connector's
// config with its type; the config loader prefixes the paths with
// "connectors[i].config.".
func ExampleType_Validate() {
	registry := providers.Registry{
		oidc.TypeName:   oidc.Type{},
		oauth2.TypeName: oauth2.Type{},
	}
	raw := json.RawMessage(`{
		"issuer": "https://accounts.google.com",
		"clientID": "1234.apps.googleusercontent.com",
		"scopes": ["email"],
		"claimMapping": {"groups": "size(claims)"},
		"allow": ["email.endsWith('@example.com')"]
	}`)
	for _, p := range registry["oidc"].Validate(raw) {
		fmt.Printf("connectors[0].config.%s\n", p)
	}
	// Output:
	// connectors[0].config.clientSecret: required
	// connectors[0].config.scopes: must include openid
	// connectors[0].config.claimMapping.groups: must be of type list(string), not int
}
