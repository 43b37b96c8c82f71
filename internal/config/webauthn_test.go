package config

import (
	"strings"
	"testing"
)

func TestWebAuthnProblems(t *testing.T) {
	for _, tc := range []struct {
		name string
		w    WebAuthn
		want []string
	}{
		{"defaults", WebAuthn{}, nil},
		{"set", WebAuthn{RPID: "example.com", Origins: []string{"https://id.example.com", "http://localhost:5556"}, UserVerification: "required",
			ResidentKey: "discouraged", Attestation: "direct", AllowedAAGUIDs: []string{"ee882879-721c-4913-9775-3dfcce97072a"}}, nil},
		{"bad", WebAuthn{RPID: "127.0.0.1", Origins: []string{"http://id.example.com", "https://id.example.com/path"}, UserVerification: "always",
			ResidentKey: "yes", Attestation: "enterprise", AllowedAAGUIDs: []string{"yubikey"}}, []string{
			`mfa.webauthn.userVerification: "always" is not one of required, preferred, discouraged`,
			`mfa.webauthn.residentKey: "yes" is not one of required, preferred, discouraged`,
			`mfa.webauthn.attestation: "enterprise" is not one of none, indirect, direct`,
			`mfa.webauthn.rpID: "127.0.0.1" is not a domain name`,
			`mfa.webauthn.origins[0]: "http://id.example.com" is not an https origin (or http://localhost)`,
			`mfa.webauthn.origins[1]: "https://id.example.com/path" is not an https origin (or http://localhost)`,
			`mfa.webauthn.allowedAAGUIDs[0]: "yubikey" is not a UUID`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &checker{}
			c.webauthn(&tc.w)
			var got []string
			for _, p := range c.problems {
				got = append(got, p.Path+": "+p.Message)
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
