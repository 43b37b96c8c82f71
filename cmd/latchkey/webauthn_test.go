package main

import (
	"reflect"
	"testing"

	"github.com/latchkeyid/latchkey/internal/config"
	"github.com/latchkeyid/latchkey/mfa"
	"github.com/latchkeyid/latchkey/mfa/webauthn"
)

func TestWebAuthnOptions(t *testing.T) {
	for _, tc := range []struct {
		name   string
		issuer string
		w      config.WebAuthn
		want   webauthn.Options
		on     bool
	}{
		{"https issuer", "https://id.example.com", config.WebAuthn{}, webauthn.Options{RPID: "id.example.com", Origins: []string{"https://id.example.com"}}, true},
		{"localhost", "http://localhost:5556", config.WebAuthn{UserVerification: "required"},
			webauthn.Options{RPID: "localhost", Origins: []string{"http://localhost:5556"}, UserVerification: "required"}, true},
		{"configured", "https://id.example.com:8443/tenant", config.WebAuthn{RPID: "example.com", Origins: []string{"https://login.example.com"}, AllowedAAGUIDs: []string{"ee882879-721c-4913-9775-3dfcce97072a"}},
			webauthn.Options{RPID: "example.com", Origins: []string{"https://login.example.com"}, AllowedAAGUIDs: []string{"ee882879-721c-4913-9775-3dfcce97072a"}}, true},
		{"IP issuer", "http://127.0.0.1:5556", config.WebAuthn{}, webauthn.Options{}, false},
		{"disabled", "https://id.example.com", config.WebAuthn{Disabled: true}, webauthn.Options{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &config.Config{Issuer: tc.issuer, MFA: config.MFA{WebAuthn: tc.w}}
			got, on := webauthnOptions(cfg)
			if on != tc.on || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v %v, want %+v %v", got, on, tc.want, tc.on)
			}
			types := mfaFactorTypes(cfg)
			if has := types[len(types)-1] == mfa.TypeWebAuthn; has != tc.on {
				t.Errorf("factor types %v", types)
			}
			reg := mfa.Registry{}
			if err := addWebAuthn(reg, cfg, nil); err != nil || (reg[mfa.TypeWebAuthn] != nil) != tc.on {
				t.Errorf("registry %v, %v", reg, err)
			}
		})
	}
}
