package token

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
)

// Scopes that release claims.
const (
	ScopeOpenID  = "openid"
	ScopeProfile = "profile" // name, preferred_username
	ScopeEmail   = "email"   // email, email_verified
	ScopeGroups  = "groups"  // groups
)

// claimSet is a set of the profile claims Latchkey knows.
type claimSet uint8

const (
	claimName claimSet = 1 << iota
	claimPreferredUsername
	claimEmail
	claimEmailVerified
	claimGroups
)

// claimByName maps a claim name to its bit; 0 for claims Latchkey does not
// release.
func claimByName(name string) claimSet {
	switch name {
	case "name":
		return claimName
	case "preferred_username":
		return claimPreferredUsername
	case "email":
		return claimEmail
	case "email_verified":
		return claimEmailVerified
	case "groups":
		return claimGroups
	}
	return 0
}

// claimsForScopes returns the claims the scopes release.
func claimsForScopes(scopes []string) claimSet {
	var c claimSet
	for _, s := range scopes {
		switch s {
		case ScopeProfile:
			c |= claimName | claimPreferredUsername
		case ScopeEmail:
			c |= claimEmail | claimEmailVerified
		case ScopeGroups:
			c |= claimGroups
		}
	}
	return c
}

// idTokenClaimsRequested returns the known claims named in the id_token
// member of the claims request parameter (OIDC Core §5.5). Each member's
// value (null, essential, value, values) does not change whether the claim
// is released; unknown names are ignored.
func idTokenClaimsRequested(raw json.RawMessage) (claimSet, error) {
	names, err := claimsRequestedNames(raw, "id_token")
	if err != nil {
		return 0, err
	}
	return claimSetOf(names), nil
}

// claimsRequestedNames returns the known claim names in one member
// ("id_token" or "userinfo") of the claims request parameter, sorted.
func claimsRequestedNames(raw json.RawMessage, member string) ([]string, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var req map[string]map[string]json.RawMessage
	if err := json.Unmarshal(raw, &req); err != nil {
		return nil, fmt.Errorf("decode claims parameter: %w", err)
	}
	var names []string
	for name := range req[member] {
		if claimByName(name) != 0 {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}

func claimSetOf(names []string) claimSet {
	var c claimSet
	for _, n := range names {
		c |= claimByName(n)
	}
	return c
}

// profileClaims are the user claims of an ID token. Empty values are
// omitted (OIDC Core §5.3.2); email_verified only accompanies an email.
type profileClaims struct {
	Name              string   `json:"name,omitempty"`
	PreferredUsername string   `json:"preferred_username,omitempty"`
	Email             string   `json:"email,omitempty"`
	EmailVerified     *bool    `json:"email_verified,omitempty"`
	Groups            []string `json:"groups,omitempty"`
}

// profile returns the claims of s that want selects.
func profile(s Subject, want claimSet) profileClaims {
	var p profileClaims
	if want&claimName != 0 {
		p.Name = s.Name
	}
	if want&claimPreferredUsername != 0 {
		p.PreferredUsername = s.Username
	}
	if want&claimEmail != 0 {
		p.Email = s.Email
	}
	if want&claimEmailVerified != 0 && s.Email != "" {
		v := s.EmailVerified
		p.EmailVerified = &v
	}
	if want&claimGroups != 0 && len(s.Groups) > 0 {
		p.Groups = slices.Clone(s.Groups)
	}
	return p
}

// UserInfo returns the userinfo response claims (OIDC Core §5.3.2) for s
// under the granted scopes: sub always, and the profile, email and groups
// claims by scope, empty ones omitted as in the ID token.
//
// requested are claim names the claims request parameter's userinfo member
// asked for (AccessClaims.UserinfoClaims); they are released too.
func (i *Issuer) UserInfo(s Subject, scopes []string, requested ...string) map[string]any {
	p := profile(s, claimsForScopes(scopes)|claimSetOf(requested))
	out := map[string]any{"sub": s.UserID}
	if p.Name != "" {
		out["name"] = p.Name
	}
	if p.PreferredUsername != "" {
		out["preferred_username"] = p.PreferredUsername
	}
	if p.Email != "" {
		out["email"] = p.Email
	}
	if p.EmailVerified != nil {
		out["email_verified"] = *p.EmailVerified
	}
	if p.Groups != nil {
		out["groups"] = p.Groups
	}
	return out
}

// tokenHash is the at_hash (or c_hash) of value for an ID token signed
// with alg: base64url of the left half of the hash of value's octets. The
// hash is SHA-256 for RS256 and ES256 (JWA) and SHA-512 for EdDSA with
// Ed25519, the only EdDSA curve Latchkey uses (OpenID Connect Token Hash
// Algorithms 1.0). alg must be supported.
func tokenHash(alg, value string) string {
	var sum []byte
	switch alg {
	case EdDSA:
		h := sha512.Sum512([]byte(value))
		sum = h[:]
	default: // RS256, ES256
		h := sha256.Sum256([]byte(value))
		sum = h[:]
	}
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}
