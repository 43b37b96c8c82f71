package oauth2

import (
	"fmt"
	"strings"
)

// ParseScope splits a scope parameter (RFC 6749 §3.3) into its tokens, in
// order, without duplicates (the first occurrence is kept). Tokens are
// separated by spaces; runs of spaces and leading or trailing spaces are
// tolerated, any other whitespace is not. Each token must be made of
// %x21 / %x23-5B / %x5D-7E. An empty or all-space scope gives nil. Errors
// are invalid_scope.
func ParseScope(s string) ([]string, error) {
	tokens := splitSpaces(s)
	for _, t := range tokens {
		if !validScopeToken(t) {
			return nil, ErrInvalidScope("scope contains a character not allowed by RFC 6749 section 3.3", nil)
		}
	}
	return tokens, nil
}

// FormatScope joins scopes with single spaces.
func FormatScope(scopes []string) string {
	return strings.Join(scopes, " ")
}

// FilterScopes decides the granted scopes (CONTRACTS.md): when the client
// registered no scope, the requested scopes the server does not support are
// dropped; when it did, a requested scope outside its registration is
// invalid_scope, and the granted scopes are the requested ones the server
// supports. Order is that of requested. Whether openid is required is the
// broker's decision.
func FilterScopes(requested, supported, registered []string) (granted []string, err error) {
	if len(registered) > 0 {
		allowed := toSet(registered)
		for _, s := range requested {
			if _, ok := allowed[s]; !ok {
				return nil, ErrInvalidScope(fmt.Sprintf("scope %s is not allowed for this client", quoteForDescription(s)), nil)
			}
		}
	}
	known := toSet(supported)
	for _, s := range requested {
		if _, ok := known[s]; ok {
			granted = append(granted, s)
		}
	}
	return granted, nil
}

// splitSpaces splits s on runs of spaces and drops duplicates, keeping the
// first occurrence. It returns nil when there is no token.
func splitSpaces(s string) []string {
	var out []string
	var seen map[string]struct{}
	for _, t := range strings.Split(s, " ") {
		if t == "" {
			continue
		}
		if _, dup := seen[t]; dup {
			continue
		}
		if seen == nil {
			seen = make(map[string]struct{})
		}
		seen[t] = struct{}{}
		out = append(out, t)
	}
	return out
}

// validScopeToken: non-empty, %x21 / %x23-5B / %x5D-7E.
func validScopeToken(t string) bool {
	if t == "" {
		return false
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func toSet(ss []string) map[string]struct{} {
	m := make(map[string]struct{}, len(ss))
	for _, s := range ss {
		m[s] = struct{}{}
	}
	return m
}

// quoteForDescription puts a client-supplied name into an error
// description: in single quotes, cut to 64 bytes. JSON and Params sanitize
// the rest.
func quoteForDescription(s string) string {
	const limit = 64
	if len(s) > limit {
		s = s[:limit] + "..."
	}
	return "'" + s + "'"
}
