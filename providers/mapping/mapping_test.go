package mapping_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/mapping"
)

func TestCompileProblems(t *testing.T) {
	tests := []struct {
		name string
		cfg  mapping.Config
		want []providers.FieldProblem
	}{
		{
			name: "valid",
			cfg: mapping.Config{
				ClaimMapping: mapping.ClaimMapping{
					Email:    "claims.upn",
					Name:     "claims.given_name + ' ' + claims.family_name",
					Username: "claims.email.split('@')[0]",
					Groups:   "claims.groups.map(g, 'corp:' + g)",
				},
				Allow: []string{"email.endsWith('@example.com')", "sets.intersects(groups, ['admins'])"},
				Deny:  []mapping.Rule{{Expr: "'contractors' in groups", Reason: "no contractors"}},
			},
		},
		{
			name: "wrong output types",
			cfg: mapping.Config{
				ClaimMapping: mapping.ClaimMapping{
					Email:  "size(claims)",
					Groups: "'admins'",
				},
				Allow: []string{"email"},
			},
			want: []providers.FieldProblem{
				{Path: "claimMapping.email", Message: "must be of type string, not int"},
				{Path: "claimMapping.groups", Message: "must be of type list(string), not string"},
				{Path: "allow[0]", Message: "must be of type bool, not string"},
			},
		},
		{
			name: "syntax and unknown variables",
			cfg: mapping.Config{
				ClaimMapping: mapping.ClaimMapping{Name: "claims.name +"},
				Deny:         []mapping.Rule{{Expr: "group == 'x'", Reason: "r"}, {Expr: "", Reason: ""}},
				Allow:        []string{" "},
			},
			want: []providers.FieldProblem{
				{Path: "claimMapping.name", Message: "does not compile: 1:14: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}"},
				{Path: "allow[0]", Message: "required"},
				{Path: "deny[0].expr", Message: "does not compile: 1:1: undeclared reference to 'group' (in container '')"},
				{Path: "deny[1].reason", Message: "required"},
				{Path: "deny[1].expr", Message: "required"},
			},
		},
		{
			name: "mapping expressions see only claims",
			cfg:  mapping.Config{ClaimMapping: mapping.ClaimMapping{Username: "email"}},
			want: []providers.FieldProblem{
				{Path: "claimMapping.username", Message: "does not compile: 1:1: undeclared reference to 'email' (in container '')"},
			},
		},
		{
			name: "too long",
			cfg:  mapping.Config{ClaimMapping: mapping.ClaimMapping{Name: "'" + strings.Repeat("a", mapping.MaxExpressionLength) + "'"}},
			want: []providers.FieldProblem{
				{Path: "claimMapping.name", Message: "longer than 4096 bytes"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, probs := mapping.Compile(tt.cfg, mapping.Options{})
			if !reflect.DeepEqual(probs, tt.want) {
				t.Fatalf("problems:\n got %#v\nwant %#v", probs, tt.want)
			}
			if (m == nil) != (len(tt.want) > 0) {
				t.Fatalf("mapper nil = %v with %d problems", m == nil, len(probs))
			}
		})
	}
}

func claimsJSON(t *testing.T, s string) map[string]any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestApply(t *testing.T) {
	base := providers.Identity{
		Subject: "s1", Email: "alice@example.com", EmailVerified: true,
		Name: "Alice", Username: "alice", Groups: []string{"staff"}, AMR: []string{"fed"},
	}
	claims := `{"sub":"s1","email":"alice@example.com","upn":"alice@corp.example","given_name":"Alice","family_name":"Example",
		"groups":["staff","admins"],"age":42,"level":1.5,"dept":{"name":"R&D"}}`
	tests := []struct {
		name    string
		cfg     mapping.Config
		opts    mapping.Options
		want    providers.Identity
		wantErr string
		denied  string
	}{
		{
			name: "no mapping keeps the identity",
			want: base,
		},
		{
			name: "all fields mapped",
			cfg: mapping.Config{ClaimMapping: mapping.ClaimMapping{
				Name:     "claims.given_name + ' ' + claims.family_name",
				Username: "claims.email.split('@')[0].upperAscii()",
				Groups:   "claims.groups.map(g, 'corp:' + g)",
				Email:    "claims.email",
			}},
			want: providers.Identity{
				Subject: "s1", Email: "alice@example.com", EmailVerified: true,
				Name: "Alice Example", Username: "ALICE", Groups: []string{"corp:staff", "corp:admins"}, AMR: []string{"fed"},
			},
		},
		{
			name: "another email is not verified",
			cfg:  mapping.Config{ClaimMapping: mapping.ClaimMapping{Email: "claims.upn"}},
			want: providers.Identity{
				Subject: "s1", Email: "alice@corp.example", EmailVerified: false,
				Name: "Alice", Username: "alice", Groups: []string{"staff"}, AMR: []string{"fed"},
			},
		},
		{
			name: "another email stays verified with trustEmail",
			cfg:  mapping.Config{ClaimMapping: mapping.ClaimMapping{Email: "claims.upn"}},
			opts: mapping.Options{TrustEmail: true},
			want: providers.Identity{
				Subject: "s1", Email: "alice@corp.example", EmailVerified: true,
				Name: "Alice", Username: "alice", Groups: []string{"staff"}, AMR: []string{"fed"},
			},
		},
		{
			name: "numbers, nested maps and optionals",
			cfg: mapping.Config{ClaimMapping: mapping.ClaimMapping{
				Name:     "claims.dept.name + '/' + string(claims.age)",
				Username: "claims.?nickname.orValue('none')",
			}, Allow: []string{"claims.age > 40 && claims.level < 2"}},
			want: providers.Identity{
				Subject: "s1", Email: "alice@example.com", EmailVerified: true,
				Name: "R&D/42", Username: "none", Groups: []string{"staff"}, AMR: []string{"fed"},
			},
		},
		{
			name: "optional chains as in the docs",
			cfg: mapping.Config{ClaimMapping: mapping.ClaimMapping{
				Groups:   "claims.?realm_access.roles.orValue([])",
				Username: "claims[?'https://example.com/nick'].orValue('none')",
				Name:     "claims.?dept.name.orValue('')",
			}},
			want: providers.Identity{
				Subject: "s1", Email: "alice@example.com", EmailVerified: true,
				Name: "R&D", Username: "none", Groups: []string{}, AMR: []string{"fed"},
			},
		},
		{
			name:   "deny rule refuses with its reason",
			cfg:    mapping.Config{Deny: []mapping.Rule{{Expr: "false", Reason: "never"}, {Expr: "'admins' in claims.groups", Reason: "admins use the admin portal"}}},
			denied: "admins use the admin portal",
		},
		{
			name:   "deny wins over allow",
			cfg:    mapping.Config{Allow: []string{"true"}, Deny: []mapping.Rule{{Expr: "emailVerified", Reason: "verified users elsewhere"}}},
			denied: "verified users elsewhere",
		},
		{
			name:   "no allow rule matched: default reason",
			cfg:    mapping.Config{Allow: []string{"'admins' in groups", "email.endsWith('@other.example')"}},
			denied: mapping.DefaultNotAllowedReason,
		},
		{
			name:   "no allow rule matched: configured reason",
			cfg:    mapping.Config{Allow: []string{"username == 'bob'"}, NotAllowedReason: "Only Bob."},
			denied: "Only Bob.",
		},
		{
			name: "rules see mapped values",
			cfg: mapping.Config{
				ClaimMapping: mapping.ClaimMapping{Groups: "claims.groups"},
				Allow:        []string{"'admins' in groups"},
			},
			want: providers.Identity{
				Subject: "s1", Email: "alice@example.com", EmailVerified: true,
				Name: "Alice", Username: "alice", Groups: []string{"staff", "admins"}, AMR: []string{"fed"},
			},
		},
		{
			name:    "missing claim fails closed",
			cfg:     mapping.Config{ClaimMapping: mapping.ClaimMapping{Name: "claims.nickname"}},
			wantErr: "mapping: evaluate claimMapping.name: no such key: nickname",
		},
		{
			name:    "dyn of the wrong type",
			cfg:     mapping.Config{ClaimMapping: mapping.ClaimMapping{Email: "claims.age"}},
			wantErr: "mapping: evaluate claimMapping.email: got int, want string",
		},
		{
			name:    "groups of the wrong element type",
			cfg:     mapping.Config{ClaimMapping: mapping.ClaimMapping{Groups: "[claims.age]"}},
			wantErr: "mapping: evaluate claimMapping.groups: got list, want list(string)",
		},
		{
			name:    "cost limit",
			cfg:     mapping.Config{Allow: []string{"claims.groups.all(a, claims.groups.all(b, claims.groups.all(c, claims.groups.all(d, [1,2,3,4,5,6,7,8,9,10].all(x, [1,2,3,4,5,6,7,8,9,10].all(y, [1,2,3,4,5,6,7,8,9,10].all(z, [1,2,3,4,5,6,7,8,9,10].all(w, true))))))))"}},
			wantErr: "mapping: evaluate allow[0]: operation cancelled: actual cost limit exceeded",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, probs := mapping.Compile(tt.cfg, tt.opts)
			if probs != nil {
				t.Fatalf("compile: %v", probs)
			}
			id := base
			id.Groups = append([]string(nil), base.Groups...)
			err := m.Apply(context.Background(), claimsJSON(t, claims), &id)
			var denied *providers.DeniedError
			switch {
			case tt.denied != "":
				if !errors.As(err, &denied) || denied.Reason != tt.denied {
					t.Fatalf("err = %v, want denied %q", err, tt.denied)
				}
				return
			case tt.wantErr != "":
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if errors.As(err, &denied) {
					t.Fatalf("evaluation error reported as denial: %v", err)
				}
				return
			case err != nil:
				t.Fatalf("apply: %v", err)
			}
			if !reflect.DeepEqual(id, tt.want) {
				t.Fatalf("identity:\n got %#v\nwant %#v", id, tt.want)
			}
		})
	}
}

func TestApplyHonoursContext(t *testing.T) {
	m, probs := mapping.Compile(mapping.Config{Allow: []string{"claims.groups.exists(g, g == 'x')"}}, mapping.Options{})
	if probs != nil {
		t.Fatal(probs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	groups := make([]any, 5000)
	for i := range groups {
		groups[i] = "g"
	}
	id := providers.Identity{Subject: "s"}
	err := m.Apply(ctx, map[string]any{"groups": groups}, &id)
	if err == nil || !strings.Contains(err.Error(), "operation interrupted") {
		t.Fatalf("err = %v, want interrupted", err)
	}
}
