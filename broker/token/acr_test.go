package token_test

import (
	"testing"

	"github.com/latchkeyid/latchkey/broker/token"
)

func TestACRFor(t *testing.T) {
	tests := []struct {
		name string
		amr  []string
		want string
	}{
		{name: "nil", amr: nil, want: ""},
		{name: "empty strings only", amr: []string{""}, want: ""},
		{name: "password", amr: []string{"pwd"}, want: token.ACRPwd},
		{name: "federated", amr: []string{"fed"}, want: token.ACRPwd},
		{name: "two factors without mfa marker", amr: []string{"pwd", "otp"}, want: token.ACRPwd},
		{name: "password and totp", amr: []string{"pwd", "otp", "mfa"}, want: token.ACRMFA},
		{name: "password and sms", amr: []string{"pwd", "sms", "mfa"}, want: token.ACRMFA},
		{name: "federated and email code", amr: []string{"fed", "mail", "mfa"}, want: token.ACRMFA},
		{name: "password and recovery code", amr: []string{"pwd", "rcode", "mfa"}, want: token.ACRMFA},
		{name: "passkey with user verification", amr: []string{"swk", "user", "mfa"}, want: token.ACRPhr},
		{name: "security key with password", amr: []string{"pwd", "hwk", "user", "mfa"}, want: token.ACRPhr},
		{name: "webauthn without mfa", amr: []string{"hwk", "user"}, want: token.ACRPwd},
		{name: "mfa alone", amr: []string{"mfa"}, want: token.ACRMFA},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := token.ACRFor(tc.amr); got != tc.want {
				t.Fatalf("ACRFor(%q) = %q, want %q", tc.amr, got, tc.want)
			}
		})
	}
}

func TestACRSatisfies(t *testing.T) {
	const unknown = "urn:example:acr:gold"
	tests := []struct {
		have, want string
		ok         bool
	}{
		{token.ACRPwd, token.ACRPwd, true},
		{token.ACRPwd, token.ACRMFA, false},
		{token.ACRPwd, token.ACRPhr, false},
		{token.ACRMFA, token.ACRPwd, true},
		{token.ACRMFA, token.ACRMFA, true},
		{token.ACRMFA, token.ACRPhr, false},
		{token.ACRPhr, token.ACRPwd, true},
		{token.ACRPhr, token.ACRMFA, true},
		{token.ACRPhr, token.ACRPhr, true},
		{"", "", true},
		{token.ACRPwd, "", true},
		{"", token.ACRPwd, false},
		{token.ACRPhr, unknown, false},
		{unknown, token.ACRPwd, false},
		{unknown, unknown, false},
		{"0", token.ACRPwd, false},
	}
	for _, tc := range tests {
		t.Run(tc.have+" meets "+tc.want, func(t *testing.T) {
			if got := token.ACRSatisfies(tc.have, tc.want); got != tc.ok {
				t.Fatalf("ACRSatisfies(%q, %q) = %v, want %v", tc.have, tc.want, got, tc.ok)
			}
		})
	}
}
