package mapping_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/mapping"
)

// FuzzApply runs typical expressions over upstream-controlled claims: a
// claim of an unexpected type must give an error, never a panic.
func FuzzApply(f *testing.F) {
	m, probs := mapping.Compile(mapping.Config{
		ClaimMapping: mapping.ClaimMapping{
			Email:    "claims.?email.orValue('')",
			Name:     "has(claims.given_name) ? claims.given_name + ' ' + claims.family_name : ''",
			Username: "claims.?preferred_username.orValue('').lowerAscii()",
			Groups:   "claims.?groups.orValue([]).map(g, 'x:' + g)",
		},
		Allow: []string{"email.endsWith('@example.com') || 'x:admins' in groups || claims.?level.orValue(0) > 3"},
		Deny:  []mapping.Rule{{Expr: "claims.?blocked.orValue(false) == true", Reason: "blocked"}},
	}, mapping.Options{})
	if probs != nil {
		f.Fatal(probs)
	}
	f.Add(`{"email": "a@example.com", "groups": ["admins"]}`)
	f.Add(`{"email": 1, "groups": "admins"}`)
	f.Add(`{"given_name": "A", "family_name": 2, "level": 4.5}`)
	f.Add(`{"groups": [1, null, {"a": []}], "blocked": "true"}`)
	f.Add(`{"preferred_username": "ÄÖ", "level": 99999999999999999999}`)
	f.Fuzz(func(t *testing.T, doc string) {
		d := json.NewDecoder(strings.NewReader(doc))
		d.UseNumber()
		var claims map[string]any
		if d.Decode(&claims) != nil {
			return
		}
		id := providers.Identity{Subject: "s"}
		_ = m.Apply(context.Background(), claims, &id)
	})
}
