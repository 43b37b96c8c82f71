package mfa

import (
	"slices"
	"time"
)

// amr values (CONTRACTS.md "acr and amr"; RFC 8176 where it has one).
const (
	AMRPassword  = "pwd"
	AMROTP       = "otp"
	AMRSMS       = "sms"
	AMRMail      = "mail"
	AMRRecovery  = "rcode"
	AMRHardware  = "hwk"  // WebAuthn, credential not backup-eligible
	AMRSoftware  = "swk"  // WebAuthn, backup-eligible (synced passkey)
	AMRPresence  = "user" // WebAuthn user presence
	AMRFederated = "fed"
	AMRMFA       = "mfa"
)

// The acr values of CONTRACTS.md, lowest first. They are the same strings
// as broker/token's ACRPwd, ACRMFA and ACRPhr (mfa may not import broker).
const (
	ACRPwd = "urn:latchkey:acr:pwd"
	ACRMFA = "urn:latchkey:acr:mfa"
	ACRPhr = "urn:latchkey:acr:phr"
)

// ACRValuesSupported lists the acr values, lowest first (for discovery's
// acr_values_supported).
func ACRValuesSupported() []string { return []string{ACRPwd, ACRMFA, ACRPhr} }

// Step is one authentication step of a session: the primary login or one
// verified second factor.
type Step struct {
	// Factor is the factor type that verified the step (TypeTOTP, ...),
	// or "" for the primary login: the password, or the upstream
	// connector (whose trusted upstream amr values are in AMR too).
	Factor string
	// AMR lists the values the step contributed: ["pwd"], ["fed"],
	// ["fed", "pwd", "otp"], ["otp"], ["hwk", "user", "mfa"].
	AMR []string
	// At is when the step happened.
	At time.Time
}

// kind is what makes two steps "different kinds" of factor: the factor
// type, with every primary login one kind (a password and an upstream
// login are both the first factor, and upstream amr values describe that
// one login).
func (s Step) kind() string {
	if s.Factor == "" {
		return "primary"
	}
	return s.Factor
}

// AMR derives a session's amr from its steps: every value in order of
// first appearance without duplicates, plus "mfa" at the end when steps of
// two different kinds contributed values (the primary login is one kind;
// each factor type another) or a step carries "mfa" itself (a WebAuthn
// assertion with user verification; an upstream's "mfa" the connector
// trusts). Two TOTP steps are one kind. Empty values are ignored; a step
// with no values does not count.
func AMR(steps []Step) []string {
	var out, kinds []string
	for _, s := range steps {
		contributed := false
		for _, v := range s.AMR {
			if v == "" {
				continue
			}
			contributed = true
			if !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
		if contributed && !slices.Contains(kinds, s.kind()) {
			kinds = append(kinds, s.kind())
		}
	}
	if len(kinds) >= 2 && !slices.Contains(out, AMRMFA) {
		out = append(out, AMRMFA)
	}
	return out
}

// ACRFor returns the highest acr level the values in amr meet: ACRPhr when
// amr holds "mfa" and one of "hwk"/"swk", ACRMFA when it holds "mfa",
// ACRPwd when it holds any other value, and "" when it is empty. It is
// broker/token.ACRFor; the broker should call this one when it is wired.
func ACRFor(amr []string) string {
	mfa := slices.Contains(amr, AMRMFA)
	switch {
	case mfa && (slices.Contains(amr, AMRHardware) || slices.Contains(amr, AMRSoftware)):
		return ACRPhr
	case mfa:
		return ACRMFA
	case slices.ContainsFunc(amr, func(s string) bool { return s != "" }):
		return ACRPwd
	}
	return ""
}

// ACRSatisfies reports whether a session at level have meets a request for
// level want, in the order pwd < mfa < phr. An empty want is met by
// anything; a value outside the table (as have or want) meets and is met
// by nothing.
func ACRSatisfies(have, want string) bool {
	if want == "" {
		return true
	}
	h, w := ACRRank(have), ACRRank(want)
	return h >= 0 && w >= 0 && h >= w
}

// ACRRank ranks the acr values: 0 for ACRPwd, 1 for ACRMFA, 2 for ACRPhr,
// -1 for anything else.
func ACRRank(acr string) int {
	switch acr {
	case ACRPwd:
		return 0
	case ACRMFA:
		return 1
	case ACRPhr:
		return 2
	}
	return -1
}
