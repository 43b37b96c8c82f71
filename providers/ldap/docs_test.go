package ldap_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/ldap"
	"github.com/latchkeyid/latchkey/providers/mapping"
	"github.com/latchkeyid/latchkey/providers/providertest"
)

// documentedConnectors returns every ldap connector in
// docs/connectors/ldap.md by id; fragments (a `config:` block alone) get
// the required keys they leave out and the id "fragment-N".
func documentedConnectors(t *testing.T) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, c := range providertest.DocumentedConnectors(t, "../../docs/connectors/ldap.md", ldap.TypeName, map[string]any{
		"url":        "ldaps://ldap.example.org",
		"userSearch": map[string]any{"baseDN": "dc=example,dc=org", "filter": "(uid={username})"},
	}) {
		if _, dup := out[c.ID]; dup {
			t.Fatalf("connector id %q appears twice in the docs", c.ID)
		}
		out[c.ID] = c.Config
	}
	return out
}

// TestDocumentedConfigsValidate checks that every ldap connector in
// docs/connectors/ldap.md passes Validate, CEL expressions and all, and
// that the Active Directory and OpenLDAP examples are there.
func TestDocumentedConfigsValidate(t *testing.T) {
	conns := documentedConnectors(t)
	for _, id := range []string{"ldap", "openldap", "corp-ad"} {
		if _, ok := conns[id]; !ok {
			t.Errorf("docs lack the example connector %q", id)
		}
	}
	if len(conns) < 4 {
		t.Errorf("found %d ldap connectors in the docs, want at least 4 (intro, CEL fragment, OpenLDAP, AD)", len(conns))
	}
	for id, cfg := range conns {
		raw, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if probs := (ldap.Type{}).Validate(raw); len(probs) > 0 {
			t.Errorf("connector %s: %v", id, probs)
		}
	}
}

// TestDocumentedOpenLDAPExample signs in against a real slapd with the
// documented OpenLDAP config, changing only where the server is and the
// secrets.
func TestDocumentedOpenLDAPExample(t *testing.T) {
	d := startDirectory(t)
	cfg := documentedConnectors(t)["openldap"]
	if cfg == nil {
		t.Fatal("docs lack the openldap example")
	}
	cfg["url"], cfg["rootCA"], cfg["bindPassword"] = d.ldapURL(), d.caFile, servicePassword
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := ldap.Type{}.Open(t.Context(), info, raw, providers.Deps{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	c := pc.(*ldap.Connector)
	t.Cleanup(func() { c.Close() })
	for _, tc := range []struct {
		user, pw string
		want     providers.Identity
		denied   bool
	}{
		{user: "alice", pw: alicePassword, want: alice()},
		{user: "bob", pw: bobPassword, want: bob()},
		{user: "carol", pw: carolPassword, denied: true}, // not in staff
	} {
		got, err := c.Login(t.Context(), tc.user, tc.pw)
		if tc.denied {
			var de *providers.DeniedError
			if !errors.As(err, &de) || de.Reason != mapping.DefaultNotAllowedReason {
				t.Errorf("%s: Login error = %v, want DeniedError", tc.user, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: Login: %v", tc.user, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: identity =\n%#v\nwant\n%#v", tc.user, got, tc.want)
		}
	}
}
