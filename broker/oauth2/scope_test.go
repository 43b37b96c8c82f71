package oauth2

import (
	"slices"
	"strings"
	"testing"
)

func TestParseScope(t *testing.T) {
	const badChar = "scope contains a character not allowed by RFC 6749 section 3.3"
	tests := []struct {
		name string
		in   string
		want []string
		err  wantErr
	}{
		{"empty", "", nil, wantErr{}},
		{"only spaces", "   ", nil, wantErr{}},
		{"one", "openid", []string{"openid"}, wantErr{}},
		{"several in order", "openid email profile", []string{"openid", "email", "profile"}, wantErr{}},
		{"duplicates keep first", "email openid email profile openid", []string{"email", "openid", "profile"}, wantErr{}},
		{"repeated spaces", "openid  email", []string{"openid", "email"}, wantErr{}},
		{"leading and trailing spaces", " openid email ", []string{"openid", "email"}, wantErr{}},
		{"case is significant", "openid OpenID", []string{"openid", "OpenID"}, wantErr{}},
		{"edge characters", "! # [ ] ~ urn:x:y https://api.example/read", []string{"!", "#", "[", "]", "~", "urn:x:y", "https://api.example/read"}, wantErr{}},
		{"tab", "openid\temail", nil, wantErr{"invalid_scope", badChar, 400}},
		{"newline", "openid\nemail", nil, wantErr{"invalid_scope", badChar, 400}},
		{"double quote", `openid "email"`, nil, wantErr{"invalid_scope", badChar, 400}},
		{"backslash", `openid a\b`, nil, wantErr{"invalid_scope", badChar, 400}},
		{"non-ASCII", "openid émail", nil, wantErr{"invalid_scope", badChar, 400}},
		{"DEL", "openid\x7f", nil, wantErr{"invalid_scope", badChar, 400}},
		{"NUL", "openid\x00", nil, wantErr{"invalid_scope", badChar, 400}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseScope(tt.in)
			checkErr(t, err, tt.err)
			if !slices.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
				t.Fatalf("ParseScope(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestFormatScope(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want string
	}{
		{"nil", nil, ""},
		{"one", []string{"openid"}, "openid"},
		{"several", []string{"openid", "email", "profile"}, "openid email profile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FormatScope(tt.in); got != tt.want {
				t.Fatalf("FormatScope = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFilterScopes(t *testing.T) {
	supported := []string{"openid", "email", "profile", "groups", "offline_access"}
	tests := []struct {
		name                  string
		requested, registered []string
		want                  []string
		err                   wantErr
	}{
		{"nothing requested", nil, nil, nil, wantErr{}},
		{"all supported, unregistered client", []string{"openid", "email"}, nil, []string{"openid", "email"}, wantErr{}},
		{"unknown dropped, unregistered client", []string{"openid", "api:write", "email"}, nil, []string{"openid", "email"}, wantErr{}},
		{"only unknown", []string{"foo"}, nil, nil, wantErr{}},
		{"order of request kept", []string{"profile", "openid"}, nil, []string{"profile", "openid"}, wantErr{}},
		{"within registration", []string{"openid", "email"}, []string{"openid", "email", "groups"}, []string{"openid", "email"}, wantErr{}},
		{"outside registration but supported", []string{"openid", "groups"}, []string{"openid", "email"}, nil,
			wantErr{"invalid_scope", "scope 'groups' is not allowed for this client", 400}},
		{"outside registration and unknown", []string{"openid", "foo"}, []string{"openid"}, nil,
			wantErr{"invalid_scope", "scope 'foo' is not allowed for this client", 400}},
		{"first offending named", []string{"a", "b"}, []string{"openid"}, nil,
			wantErr{"invalid_scope", "scope 'a' is not allowed for this client", 400}},
		{"long name cut", []string{strings.Repeat("x", 70)}, []string{"openid"}, nil,
			wantErr{"invalid_scope", "scope '" + strings.Repeat("x", 64) + "...' is not allowed for this client", 400}},
		{"registered but unsupported dropped", []string{"openid", "legacy"}, []string{"openid", "legacy"}, []string{"openid"}, wantErr{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FilterScopes(tt.requested, supported, tt.registered)
			checkErr(t, err, tt.err)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("FilterScopes = %q, want %q", got, tt.want)
			}
		})
	}
}
