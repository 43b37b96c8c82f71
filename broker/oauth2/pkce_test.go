package oauth2

import (
	"strings"
	"testing"
)

// RFC 7636 Appendix B.
const (
	rfcVerifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	rfcChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)

func TestS256Challenge(t *testing.T) {
	tests := []struct {
		name, verifier, want string
	}{
		{"RFC 7636 appendix B", rfcVerifier, rfcChallenge},
		{"empty", "", "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := S256Challenge(tt.verifier); got != tt.want {
				t.Fatalf("S256Challenge = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestValidateChallenge(t *testing.T) {
	const badLen = "code_challenge must be 43 characters of base64url"
	tests := []struct {
		name, challenge, method string
		want                    wantErr
	}{
		{"valid", rfcChallenge, "S256", wantErr{}},
		{"missing challenge", "", "S256", wantErr{"invalid_request", "code_challenge is required", 400}},
		{"missing both", "", "", wantErr{"invalid_request", "code_challenge is required", 400}},
		{"plain", rfcChallenge, "plain", wantErr{"invalid_request", "code_challenge_method plain is not supported", 400}},
		{"empty method means plain", rfcChallenge, "", wantErr{"invalid_request", "code_challenge_method plain is not supported", 400}},
		{"lowercase s256", rfcChallenge, "s256", wantErr{"invalid_request", "code_challenge_method must be S256", 400}},
		{"unknown method", rfcChallenge, "S512", wantErr{"invalid_request", "code_challenge_method must be S256", 400}},
		{"42 chars", rfcChallenge[:42], "S256", wantErr{"invalid_request", badLen, 400}},
		{"44 chars", rfcChallenge + "A", "S256", wantErr{"invalid_request", badLen, 400}},
		{"padded", rfcChallenge[:42] + "=", "S256", wantErr{"invalid_request", badLen, 400}},
		{"standard base64 plus", "+" + rfcChallenge[1:], "S256", wantErr{"invalid_request", badLen, 400}},
		{"standard base64 slash", "/" + rfcChallenge[1:], "S256", wantErr{"invalid_request", badLen, 400}},
		{"verifier sent as challenge", strings.Repeat("a", 43) + "~", "S256", wantErr{"invalid_request", badLen, 400}},
		{"stray bits in last char", rfcChallenge[:42] + "N", "S256", wantErr{"invalid_request", badLen, 400}},
		{"canonical last char", rfcChallenge[:42] + "E", "S256", wantErr{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, ValidateChallenge(tt.challenge, tt.method), tt.want)
		})
	}
}

func TestValidateVerifier(t *testing.T) {
	const badLen = "code_verifier must be 43 to 128 characters"
	const badChar = "code_verifier contains a character outside A-Z a-z 0-9 - . _ ~"
	tests := []struct {
		name, verifier string
		want           wantErr
	}{
		{"RFC example", rfcVerifier, wantErr{}},
		{"43 chars", strings.Repeat("a", 43), wantErr{}},
		{"128 chars", strings.Repeat("Z", 128), wantErr{}},
		{"all unreserved", "ABCXYZabcxyz0189-._~" + strings.Repeat("0", 23), wantErr{}},
		{"empty", "", wantErr{"invalid_request", "code_verifier is required", 400}},
		{"42 chars", strings.Repeat("a", 42), wantErr{"invalid_request", badLen, 400}},
		{"129 chars", strings.Repeat("a", 129), wantErr{"invalid_request", badLen, 400}},
		{"plus", strings.Repeat("a", 42) + "+", wantErr{"invalid_request", badChar, 400}},
		{"slash", "/" + strings.Repeat("a", 42), wantErr{"invalid_request", badChar, 400}},
		{"equals", strings.Repeat("a", 42) + "=", wantErr{"invalid_request", badChar, 400}},
		{"space", strings.Repeat("a", 21) + " " + strings.Repeat("a", 21), wantErr{"invalid_request", badChar, 400}},
		{"non-ASCII", strings.Repeat("a", 41) + "é", wantErr{"invalid_request", badChar, 400}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, ValidateVerifier(tt.verifier), tt.want)
		})
	}
}

func TestVerifyS256(t *testing.T) {
	short := "abc"
	tests := []struct {
		name, verifier, challenge string
		want                      bool
	}{
		{"RFC example", rfcVerifier, rfcChallenge, true},
		{"other verifier", strings.Repeat("a", 43), rfcChallenge, false},
		{"verifier as challenge (plain)", rfcVerifier, rfcVerifier, false},
		{"empty challenge", rfcVerifier, "", false},
		{"challenge off by one char", rfcVerifier, rfcChallenge[:42] + "N", false},
		{"malformed verifier with its own hash", short, S256Challenge(short), false},
		{"empty verifier with its own hash", "", S256Challenge(""), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VerifyS256(tt.verifier, tt.challenge); got != tt.want {
				t.Fatalf("VerifyS256 = %v, want %v", got, tt.want)
			}
		})
	}
}
