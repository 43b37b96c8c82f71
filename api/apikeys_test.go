package api

import (
	"strings"
	"testing"
)

func TestScopes(t *testing.T) {
	tests := []struct {
		scope string
		valid bool
	}{
		{"clients:read", true}, {"clients:write", true}, {"clients:*", true},
		{"connectors:write", true}, {"users:*", true}, {"keys:read", true}, {"audit:read", true}, {"audit:*", true},
		{"audit:write", false}, {"clients", false}, {"clients:delete", false}, {"*", false}, {"*:read", false},
		{"Clients:read", false}, {"", false}, {"clients:read ", false},
	}
	for _, tc := range tests {
		if got := ValidScope(tc.scope); got != tc.valid {
			t.Errorf("ValidScope(%q) = %v, want %v", tc.scope, got, tc.valid)
		}
	}
	allow := []struct {
		granted []string
		need    string
		want    bool
	}{
		{[]string{"clients:read"}, "clients:read", true},
		{[]string{"clients:read"}, "clients:write", false},
		{[]string{"clients:write"}, "clients:read", false},
		{[]string{"clients:*"}, "clients:write", true},
		{[]string{"users:*"}, "clients:read", false},
		{nil, "audit:read", false},
	}
	for _, tc := range allow {
		if got := scopeAllows(tc.granted, tc.need); got != tc.want {
			t.Errorf("scopeAllows(%q, %q) = %v, want %v", tc.granted, tc.need, got, tc.want)
		}
	}
}

func TestParseKey(t *testing.T) {
	good := "lk_0123456789_" + strings.Repeat("A", 43)
	if p, ok := parseKey(good); !ok || p != "lk_0123456789" {
		t.Fatalf("parseKey(good) = %q %v", p, ok)
	}
	for _, bad := range []string{"", "lk_", good + "A", good[:len(good)-1], "xx" + good[2:],
		"lk_012345678g_" + strings.Repeat("A", 43), "lk_0123456789-" + strings.Repeat("A", 43),
		"lk_0123456789_" + strings.Repeat("+", 43)} {
		if _, ok := parseKey(bad); ok {
			t.Errorf("parseKey(%q) accepted", bad)
		}
	}
}

// FuzzParseKey: any string either is refused or yields the prefix the key
// starts with, of the prefix's length.
func FuzzParseKey(f *testing.F) {
	f.Add("lk_0123456789_" + strings.Repeat("A", 43))
	f.Add("lk_")
	f.Add("Bearer lk_x")
	f.Fuzz(func(t *testing.T, s string) {
		p, ok := parseKey(s)
		if ok && (len(p) != prefixLen || !strings.HasPrefix(s, p) || len(s) != keyLen) {
			t.Fatalf("parseKey(%q) = %q", s, p)
		}
	})
}
