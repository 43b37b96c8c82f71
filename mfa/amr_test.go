package mfa_test

import (
	"slices"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/mfa"
)

func TestAMR(t *testing.T) {
	at := time.Unix(1700000000, 0)
	primary := func(amr ...string) mfa.Step { return mfa.Step{AMR: amr, At: at} }
	factor := func(typ string, amr ...string) mfa.Step { return mfa.Step{Factor: typ, AMR: amr, At: at} }
	tests := []struct {
		name  string
		steps []mfa.Step
		want  []string
	}{
		{"no steps", nil, nil},
		{"password", []mfa.Step{primary("pwd")}, []string{"pwd"}},
		{"upstream", []mfa.Step{primary("fed")}, []string{"fed"}},
		{"password and totp", []mfa.Step{primary("pwd"), factor("totp", "otp")}, []string{"pwd", "otp", "mfa"}},
		{"upstream and totp", []mfa.Step{primary("fed"), factor("totp", "otp")}, []string{"fed", "otp", "mfa"}},
		{"password and recovery code", []mfa.Step{primary("pwd"), factor("recovery", "rcode")}, []string{"pwd", "rcode", "mfa"}},
		{"password and security key", []mfa.Step{primary("pwd"), factor("webauthn", "hwk", "user")}, []string{"pwd", "hwk", "user", "mfa"}},
		{"passkey with user verification alone", []mfa.Step{factor("webauthn", "swk", "user", "mfa")}, []string{"swk", "user", "mfa"}},
		{"security key without verification alone", []mfa.Step{factor("webauthn", "hwk", "user")}, []string{"hwk", "user"}},
		{"trusted upstream values are one login", []mfa.Step{primary("fed", "pwd", "otp")}, []string{"fed", "pwd", "otp"}},
		{"trusted upstream mfa", []mfa.Step{primary("fed", "pwd", "otp", "mfa")}, []string{"fed", "pwd", "otp", "mfa"}},
		{"trusted upstream mfa and totp: no second mfa", []mfa.Step{primary("fed", "mfa"), factor("totp", "otp")}, []string{"fed", "mfa", "otp"}},
		{"two totp steps are one kind", []mfa.Step{factor("totp", "otp"), factor("totp", "otp")}, []string{"otp"}},
		{"two primary logins are one kind", []mfa.Step{primary("pwd"), primary("fed")}, []string{"pwd", "fed"}},
		{"totp and sms", []mfa.Step{factor("totp", "otp"), factor("sms", "sms")}, []string{"otp", "sms", "mfa"}},
		{"repeated values once", []mfa.Step{primary("pwd"), factor("totp", "otp"), factor("totp", "otp"), factor("email", "mail")}, []string{"pwd", "otp", "mail", "mfa"}},
		{"a step without values does not count", []mfa.Step{primary("pwd"), factor("totp")}, []string{"pwd"}},
		{"empty values are ignored", []mfa.Step{primary("pwd", ""), factor("totp", "")}, []string{"pwd"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mfa.AMR(tt.steps); !slices.Equal(got, tt.want) {
				t.Fatalf("AMR = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestACRFor(t *testing.T) {
	tests := []struct {
		name string
		amr  []string
		want string
	}{
		{"nil", nil, ""},
		{"empty strings only", []string{""}, ""},
		{"password", []string{"pwd"}, mfa.ACRPwd},
		{"federated", []string{"fed"}, mfa.ACRPwd},
		{"two factors without mfa marker", []string{"pwd", "otp"}, mfa.ACRPwd},
		{"password and totp", []string{"pwd", "otp", "mfa"}, mfa.ACRMFA},
		{"password and sms", []string{"pwd", "sms", "mfa"}, mfa.ACRMFA},
		{"federated and email code", []string{"fed", "mail", "mfa"}, mfa.ACRMFA},
		{"password and recovery code", []string{"pwd", "rcode", "mfa"}, mfa.ACRMFA},
		{"passkey with user verification", []string{"swk", "user", "mfa"}, mfa.ACRPhr},
		{"security key with password", []string{"pwd", "hwk", "user", "mfa"}, mfa.ACRPhr},
		{"webauthn without mfa", []string{"hwk", "user"}, mfa.ACRPwd},
		{"mfa alone", []string{"mfa"}, mfa.ACRMFA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mfa.ACRFor(tt.amr); got != tt.want {
				t.Fatalf("ACRFor(%q) = %q, want %q", tt.amr, got, tt.want)
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
		{mfa.ACRPwd, mfa.ACRPwd, true},
		{mfa.ACRPwd, mfa.ACRMFA, false},
		{mfa.ACRPwd, mfa.ACRPhr, false},
		{mfa.ACRMFA, mfa.ACRPwd, true},
		{mfa.ACRMFA, mfa.ACRMFA, true},
		{mfa.ACRMFA, mfa.ACRPhr, false},
		{mfa.ACRPhr, mfa.ACRPwd, true},
		{mfa.ACRPhr, mfa.ACRMFA, true},
		{mfa.ACRPhr, mfa.ACRPhr, true},
		{"", "", true},
		{mfa.ACRPwd, "", true},
		{"", mfa.ACRPwd, false},
		{mfa.ACRPhr, unknown, false},
		{unknown, mfa.ACRPwd, false},
		{unknown, unknown, false},
	}
	for _, tt := range tests {
		t.Run(tt.have+" meets "+tt.want, func(t *testing.T) {
			if got := mfa.ACRSatisfies(tt.have, tt.want); got != tt.ok {
				t.Fatalf("ACRSatisfies(%q, %q) = %v, want %v", tt.have, tt.want, got, tt.ok)
			}
		})
	}
	if got := mfa.ACRValuesSupported(); !slices.Equal(got, []string{"urn:latchkey:acr:pwd", "urn:latchkey:acr:mfa", "urn:latchkey:acr:phr"}) {
		t.Fatalf("ACRValuesSupported = %q", got)
	}
}
