package ldap_test

import (
	"testing"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/latchkeyid/latchkey/providers/ldap"
)

// FuzzExpandFilter: whatever the username (and the DN), the expanded
// filter compiles to the template's structure, with exactly the given
// values as assertion values: no input can add a clause, a wildcard or
// a presence test.
func FuzzExpandFilter(f *testing.F) {
	for _, s := range []string{"alice", "", "*", "al*", "admin)(|(uid=*", `\2a`, `d(a)v*e\`, "\x00", "\xff\xfe", "ünïcödé",
		"*)(objectClass=*", ")(", `\`, `\\`, "(uid=alice)"} {
		f.Add(s, "cn=Smith\\, Erin,ou=people,dc=example,dc=org")
	}
	f.Fuzz(func(t *testing.T, username, dn string) {
		const tmpl = "(&(objectClass=person)(uid={username}))"
		p, err := goldap.CompileFilter(ldap.ExpandFilter(tmpl, map[string]string{"{username}": username}))
		if err != nil {
			t.Fatalf("filter for %q does not compile: %v", username, err)
		}
		if p.Tag != goldap.FilterAnd || len(p.Children) != 2 {
			t.Fatalf("filter for %q: structure changed: tag %d, %d children", username, p.Tag, len(p.Children))
		}
		eq := p.Children[1]
		if eq.Tag != goldap.FilterEqualityMatch || len(eq.Children) != 2 || eq.Children[0].Value != "uid" || eq.Children[1].Value != username {
			t.Fatalf("filter for %q: not (uid=%q): %s", username, username, eq.Description)
		}

		const gtmpl = "(|(member={dn})(memberUid={username}))"
		g, err := goldap.CompileFilter(ldap.ExpandFilter(gtmpl, map[string]string{"{dn}": dn, "{username}": username}))
		if err != nil {
			t.Fatalf("group filter for %q/%q does not compile: %v", dn, username, err)
		}
		if g.Tag != goldap.FilterOr || len(g.Children) != 2 {
			t.Fatalf("group filter: structure changed")
		}
		for i, want := range []string{dn, username} {
			c := g.Children[i]
			if c.Tag != goldap.FilterEqualityMatch || len(c.Children) != 2 || c.Children[1].Value != want {
				t.Fatalf("group filter clause %d: not an equality match with %q", i, want)
			}
		}
	})
}
