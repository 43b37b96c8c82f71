package ldap_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/ldap"
)

// minimal is a valid config; each case changes it.
func minimal() map[string]any {
	return map[string]any{
		"url":          "ldaps://ldap.example.com",
		"bindDN":       "cn=latchkey,ou=system,dc=example,dc=org",
		"bindPassword": "s",
		"userSearch": map[string]any{
			"baseDN": "ou=people,dc=example,dc=org",
			"filter": "(uid={username})",
		},
	}
}

func TestValidate(t *testing.T) {
	p := func(path, msg string) providers.FieldProblem { return providers.FieldProblem{Path: path, Message: msg} }
	cases := []struct {
		name string
		edit func(m map[string]any)
		raw  string // used instead of minimal() when set
		want []providers.FieldProblem
	}{
		{name: "minimal", edit: func(map[string]any) {}},
		{name: "StartTLS with a CA file", edit: func(m map[string]any) {
			m["url"], m["startTLS"], m["rootCA"] = "ldap://ldap.example.com:10389/", true, "/etc/latchkey/ca.pem"
		}},
		{name: "anonymous search", edit: func(m map[string]any) { delete(m, "bindDN"); delete(m, "bindPassword") }},
		{name: "everything", edit: func(m map[string]any) {
			m["emailVerified"] = false
			m["connectTimeout"], m["requestTimeout"], m["maxIdleTime"], m["maxConnections"] = "2s", "1m", "30m", 20
			m["userSearch"].(map[string]any)["scope"] = "one"
			m["userSearch"].(map[string]any)["idAttr"] = "objectGUID"
			m["userSearch"].(map[string]any)["usernameAttr"] = "sAMAccountName"
			m["userSearch"].(map[string]any)["emailAttr"] = "userPrincipalName"
			m["userSearch"].(map[string]any)["nameAttr"] = "displayName"
			m["userSearch"].(map[string]any)["extraAttributes"] = []any{"department", "memberOf", "cn;lang-de", "2.5.4.3"}
			m["groupSearch"] = map[string]any{"baseDN": "dc=example,dc=org", "filter": "(member:1.2.840.113556.1.4.1941:={dn})", "scope": "sub", "nameAttr": "dn"}
			m["allowedGroups"] = []any{"staff"}
			m["claimMapping"] = map[string]any{"groups": "claims.groups.map(g, g.lowerAscii())"}
			m["allow"] = []any{"'staff' in groups"}
		}},
		{name: "empty object", raw: `{}`, want: []providers.FieldProblem{
			p("url", "required"), p("userSearch.baseDN", "required"), p("userSearch.filter", "required"),
		}},
		{name: "not an object", raw: `[]`, want: []providers.FieldProblem{
			p("", "must be an object"), p("url", "required"), p("userSearch.baseDN", "required"), p("userSearch.filter", "required"),
		}},
		{name: "unknown key and wrong types", edit: func(m map[string]any) {
			m["host"] = "ldap.example.com"
			m["startTLS"] = "yes"
			m["maxConnections"] = "5"
		}, want: []providers.FieldProblem{
			p("host", "unknown key"), p("maxConnections", "must be an integer"), p("startTLS", "must be true or false"),
		}},
		{name: "http URL", edit: func(m map[string]any) { m["url"] = "https://ldap.example.com" },
			want: []providers.FieldProblem{p("url", "must be an ldap:// or ldaps:// URL")}},
		{name: "URL with a base DN path", edit: func(m map[string]any) { m["url"] = "ldap://ldap.example.com/dc=example,dc=org?uid" },
			want: []providers.FieldProblem{p("url", "must not have a path, query or fragment (use userSearch for the base DN)")}},
		{name: "URL with credentials", edit: func(m map[string]any) { m["url"] = "ldaps://admin:pw@ldap.example.com" },
			want: []providers.FieldProblem{p("url", "must not hold credentials (use bindDN and bindPassword)")}},
		{name: "URL without host", edit: func(m map[string]any) { m["url"] = "ldaps:///" },
			want: []providers.FieldProblem{p("url", "must name a host: ldap://host[:port] or ldaps://host[:port]")}},
		{name: "plain ldap without TLS", edit: func(m map[string]any) { m["url"] = "ldap://ldap.example.com" },
			want: []providers.FieldProblem{p("url", "ldap:// without TLS sends passwords in clear text: use ldaps://, set startTLS: true, or (a directory on this host, tests) insecureNoTLS: true")}},
		{name: "plain ldap with insecureNoTLS", edit: func(m map[string]any) { m["url"], m["insecureNoTLS"] = "ldap://127.0.0.1:3890", true }},
		{name: "startTLS with ldaps", edit: func(m map[string]any) { m["startTLS"] = true },
			want: []providers.FieldProblem{p("startTLS", "ldaps:// is TLS from the start: startTLS is for ldap:// URLs")}},
		{name: "insecureNoTLS with ldaps and a CA", edit: func(m map[string]any) { m["insecureNoTLS"], m["rootCA"] = true, "/ca.pem" },
			want: []providers.FieldProblem{p("insecureNoTLS", "contradicts TLS (ldaps:// or startTLS)"), p("insecureNoTLS", "a CA is configured but TLS is off")}},
		{name: "both CA keys, relative path", edit: func(m map[string]any) { m["rootCA"], m["rootCAData"] = "ca.pem", "junk" },
			want: []providers.FieldProblem{p("rootCAData", "set rootCA or rootCAData, not both"), p("rootCA", "must be an absolute path"),
				p("rootCAData", "no PEM certificate found")}},
		{name: "bindDN without password (unauthenticated bind)", edit: func(m map[string]any) { delete(m, "bindPassword") },
			want: []providers.FieldProblem{p("bindPassword", "required with bindDN (an empty password would be an unauthenticated bind)")}},
		{name: "password without bindDN", edit: func(m map[string]any) { delete(m, "bindDN") },
			want: []providers.FieldProblem{p("bindDN", "required with bindPassword")}},
		{name: "bindDN not a DN", edit: func(m map[string]any) { m["bindDN"] = "latchkey" },
			want: []providers.FieldProblem{p("bindDN", "not a DN: DN ended with incomplete type, value pair")}},
		{name: "user filter without {username}", edit: func(m map[string]any) {
			m["userSearch"].(map[string]any)["filter"] = "(uid=alice)"
		}, want: []providers.FieldProblem{p("userSearch.filter", "must contain {username}")}},
		{name: "user filter with an unknown placeholder", edit: func(m map[string]any) {
			m["userSearch"].(map[string]any)["filter"] = "(&(uid={username})(o={org}))"
		}, want: []providers.FieldProblem{p("userSearch.filter", "unknown placeholder {org} (use {username})")}},
		{name: "user filter with {dn}", edit: func(m map[string]any) {
			m["userSearch"].(map[string]any)["filter"] = "(&(uid={username})(manager={dn}))"
		}, want: []providers.FieldProblem{p("userSearch.filter", "unknown placeholder {dn} (use {username})")}},
		{name: "user filter does not parse", edit: func(m map[string]any) {
			m["userSearch"].(map[string]any)["filter"] = "uid={username}"
		}, want: []providers.FieldProblem{p("userSearch.filter", `not an LDAP filter: LDAP Result Code 201 "Filter Compile Error": ldap: filter does not start with an '('`)}},
		{name: "bad scope, base DN, attributes", edit: func(m map[string]any) {
			us := m["userSearch"].(map[string]any)
			us["scope"], us["baseDN"], us["idAttr"], us["emailAttr"] = "base", "people", "entry UUID", "mail;"
			us["extraAttributes"] = []any{"groups", "x_y"}
		}, want: []providers.FieldProblem{
			p("userSearch.baseDN", "not a DN: DN ended with incomplete type, value pair"), p("userSearch.scope", "must be sub or one"),
			p("userSearch.idAttr", "not an attribute name"), p("userSearch.emailAttr", "not an attribute name"),
			p("userSearch.extraAttributes[0]", `"groups" is reserved (claims.dn and claims.groups are set by the connector)`),
			p("userSearch.extraAttributes[1]", "not an attribute name"),
		}},
		{name: "group search incomplete", edit: func(m map[string]any) { m["groupSearch"] = map[string]any{} },
			want: []providers.FieldProblem{p("groupSearch.baseDN", "required"), p("groupSearch.filter", "required")}},
		{name: "group filter without placeholder", edit: func(m map[string]any) {
			m["groupSearch"] = map[string]any{"baseDN": "dc=example,dc=org", "filter": "(objectClass=groupOfNames)"}
		}, want: []providers.FieldProblem{p("groupSearch.filter", "must contain {dn} or {username}: without it every user gets the same groups")}},
		{name: "group filter with {username} only", edit: func(m map[string]any) {
			m["groupSearch"] = map[string]any{"baseDN": "dc=example,dc=org", "filter": "(memberUid={username})"}
		}},
		{name: "allowedGroups without groupSearch", edit: func(m map[string]any) { m["allowedGroups"] = []any{"staff", " "} },
			want: []providers.FieldProblem{p("allowedGroups", "requires groupSearch"), p("allowedGroups[1]", "must not be empty")}},
		{name: "limits", edit: func(m map[string]any) {
			m["connectTimeout"], m["requestTimeout"], m["maxIdleTime"], m["maxConnections"] = "5", "0s", "2h", 101
		}, want: []providers.FieldProblem{
			p("connectTimeout", "must be a duration such as 5s"), p("requestTimeout", "must be more than 0 and at most 5m0s"),
			p("maxIdleTime", "must be more than 0 and at most 1h0m0s"), p("maxConnections", "must be between 1 and 100"),
		}},
		{name: "CEL problems come with their paths", edit: func(m map[string]any) {
			m["claimMapping"] = map[string]any{"groups": "'admins'"}
			m["deny"] = []any{map[string]any{"expr": "true"}}
		}, want: []providers.FieldProblem{
			p("claimMapping.groups", "must be of type list(string), not string"), p("deny[0].reason", "required"),
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := []byte(tc.raw)
			readsFile := false
			if tc.raw == "" {
				m := minimal()
				tc.edit(m)
				_, readsFile = m["rootCA"]
				var err error
				if raw, err = json.Marshal(m); err != nil {
					t.Fatal(err)
				}
			}
			got := ldap.Type{}.Validate(raw)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Validate =\n%s\nwant\n%s", fmtProblems(got), fmtProblems(tc.want))
			}
			if readsFile && len(tc.want) == 0 {
				return // Open would read the CA file (TestOpenReadsRootCA)
			}
			c, err := ldap.Type{}.Open(context.Background(), info, raw, providers.Deps{})
			if len(tc.want) > 0 {
				if _, ok := err.(*providers.ConfigError); !ok {
					t.Fatalf("Open error = %v, want *providers.ConfigError", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if c.ID() != info.ID || c.Name() != info.Name {
				t.Fatalf("ID/Name = %q/%q", c.ID(), c.Name())
			}
		})
	}
}

func fmtProblems(ps []providers.FieldProblem) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "  %s\n", p)
	}
	return b.String()
}

func TestOpenReadsRootCA(t *testing.T) {
	m := minimal()
	m["rootCA"] = "/nonexistent/latchkey-ca.pem"
	raw, _ := json.Marshal(m)
	_, err := ldap.Type{}.Open(t.Context(), info, raw, providers.Deps{})
	const want = "ldap: read rootCA: open /nonexistent/latchkey-ca.pem: no such file or directory"
	if err == nil || err.Error() != want {
		t.Fatalf("Open error = %v, want %s", err, want)
	}
	_, err = ldap.Type{}.Open(t.Context(), providers.Info{}, json.RawMessage(`{"url":"ldaps://h","userSearch":{"baseDN":"dc=x","filter":"(uid={username})"}}`), providers.Deps{})
	if err == nil || err.Error() != "ldap: connector id is empty" {
		t.Fatalf("Open without id: %v", err)
	}
}

// TestConfigHidesPassword: the bind password does not leak through
// fmt verbs.
func TestConfigHidesPassword(t *testing.T) {
	cfg := ldap.Config{URL: "ldaps://h", BindDN: "cn=x", BindPassword: "hunter2-secret"}
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg)} {
		if strings.Contains(s, "hunter2-secret") {
			t.Fatalf("formatted config shows the password: %s", s)
		}
	}
}
