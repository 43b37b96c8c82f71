package ldap_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/ldap"
	"github.com/latchkeyid/latchkey/providers/mapping"
)

// documentedConnectors returns every ldap connector in
// docs/connectors/ldap.md by id; fragments (a `config:` block alone) get
// the required keys they leave out and the id "fragment-N".
func documentedConnectors(t *testing.T) map[string]map[string]any {
	t.Helper()
	doc, err := os.ReadFile("../../docs/connectors/ldap.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for i, block := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(doc, -1) {
		var v any
		if err := yaml.Unmarshal(block[1], &v); err != nil {
			t.Fatalf("YAML block does not parse: %v\n%s", err, block[1])
		}
		if m, ok := v.(map[string]any); ok {
			if cs, ok := m["connectors"]; ok {
				v = cs
			} else if frag, ok := m["config"].(map[string]any); ok {
				for k, def := range map[string]any{
					"url":        "ldaps://ldap.example.org",
					"userSearch": map[string]any{"baseDN": "dc=example,dc=org", "filter": "(uid={username})"},
				} {
					if _, set := frag[k]; !set {
						frag[k] = def
					}
				}
				v = []any{map[string]any{"id": fmt.Sprintf("fragment-%d", i), "type": ldap.TypeName, "config": frag}}
			}
		}
		list, _ := v.([]any)
		for _, e := range list {
			c, _ := e.(map[string]any)
			if c["type"] != ldap.TypeName {
				continue
			}
			id, _ := c["id"].(string)
			if _, dup := out[id]; dup {
				t.Fatalf("connector id %q appears twice in the docs", id)
			}
			cfg, _ := c["config"].(map[string]any)
			out[id] = cfg
		}
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
