package oauth2

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

// PKCE (RFC 7636) constants.
const (
	// MethodS256 is the only code_challenge_method accepted.
	MethodS256 = "S256"
	// MethodPlain is refused (RFC 9700 §2.1.1).
	MethodPlain = "plain"

	minVerifierLen = 43
	maxVerifierLen = 128
	s256Len        = 43 // base64url, no padding, of 32 bytes
)

// ValidateChallenge checks a code_challenge and its method at /authorize.
// The method must be S256; plain is refused, and so is an empty method,
// which RFC 7636 §4.3 defines as plain. The challenge must be the unpadded
// base64url encoding of 32 bytes: 43 characters, the last of which carries
// no stray bits. Call it when a challenge or a method was sent; whether one
// is required is the client's policy (require_pkce), decided by the broker.
// Errors are invalid_request.
func ValidateChallenge(challenge, method string) error {
	switch {
	case challenge == "":
		return ErrInvalidRequest("code_challenge is required", nil)
	case method == "" || method == MethodPlain:
		return ErrInvalidRequest("code_challenge_method plain is not supported", nil)
	case method != MethodS256:
		return ErrInvalidRequest("code_challenge_method must be S256", nil)
	}
	if len(challenge) != s256Len {
		return ErrInvalidRequest("code_challenge must be 43 characters of base64url", nil)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(challenge)
	if err != nil || len(b) != sha256.Size {
		return ErrInvalidRequest("code_challenge must be 43 characters of base64url", err)
	}
	return nil
}

// ValidateVerifier checks a code_verifier at /token: 43 to 128 characters of
// [A-Za-z0-9-._~] (RFC 7636 §4.1). Errors are invalid_request; a verifier
// that is well formed but does not match is the caller's invalid_grant.
func ValidateVerifier(v string) error {
	if v == "" {
		return ErrInvalidRequest("code_verifier is required", nil)
	}
	if len(v) < minVerifierLen || len(v) > maxVerifierLen {
		return ErrInvalidRequest("code_verifier must be 43 to 128 characters", nil)
	}
	for i := 0; i < len(v); i++ {
		if !isUnreserved(v[i]) {
			return ErrInvalidRequest("code_verifier contains a character outside A-Z a-z 0-9 - . _ ~", nil)
		}
	}
	return nil
}

// VerifyS256 reports whether verifier is well formed (ValidateVerifier) and
// BASE64URL(SHA256(verifier)) equals challenge. The comparison is constant
// time.
func VerifyS256(verifier, challenge string) bool {
	if ValidateVerifier(verifier) != nil {
		return false
	}
	got := S256Challenge(verifier)
	return subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) == 1
}

// S256Challenge returns BASE64URL(SHA256(verifier)) without padding.
func S256Challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}
