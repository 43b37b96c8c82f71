package token

import "slices"

// The acr values of CONTRACTS.md, lowest first.
const (
	// ACRPwd is met by any one factor.
	ACRPwd = "urn:latchkey:acr:pwd"
	// ACRMFA is met when amr holds "mfa".
	ACRMFA = "urn:latchkey:acr:mfa"
	// ACRPhr is met by mfa including WebAuthn (hwk or swk): phishing
	// resistant.
	ACRPhr = "urn:latchkey:acr:phr"
)

// ACRFor returns the highest acr level the factors in amr meet: ACRPhr
// when amr holds "mfa" and one of "hwk"/"swk", ACRMFA when it holds "mfa",
// ACRPwd when it holds any other value, and "" when it is empty (empty
// strings are not factors).
func ACRFor(amr []string) string {
	mfa := slices.Contains(amr, "mfa")
	switch {
	case mfa && (slices.Contains(amr, "hwk") || slices.Contains(amr, "swk")):
		return ACRPhr
	case mfa:
		return ACRMFA
	case slices.ContainsFunc(amr, func(s string) bool { return s != "" }):
		return ACRPwd
	}
	return ""
}

// ACRSatisfies reports whether a session at level have meets a request for
// level want, following the order pwd < mfa < phr. An empty want is met by
// anything; a value outside the table (as have or want) meets and is met
// by nothing else.
func ACRSatisfies(have, want string) bool {
	if want == "" {
		return true
	}
	h, w := acrRank(have), acrRank(want)
	return h >= 0 && w >= 0 && h >= w
}

// acrRank ranks the acr values; a higher rank meets every lower one, and
// -1 is outside the table.
func acrRank(acr string) int {
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
