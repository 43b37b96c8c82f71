package token

import "github.com/latchkeyid/latchkey/mfa"

// The acr values of CONTRACTS.md, lowest first (mfa owns them).
const (
	// ACRPwd is met by any one factor.
	ACRPwd = mfa.ACRPwd
	// ACRMFA is met when amr holds "mfa".
	ACRMFA = mfa.ACRMFA
	// ACRPhr is met by mfa including WebAuthn (hwk or swk): phishing
	// resistant.
	ACRPhr = mfa.ACRPhr
)

// ACRFor returns the highest acr level the factors in amr meet; it is
// mfa.ACRFor, so the token and the login's policy never disagree.
func ACRFor(amr []string) string { return mfa.ACRFor(amr) }

// ACRSatisfies reports whether a session at level have meets a request for
// level want (mfa.ACRSatisfies).
func ACRSatisfies(have, want string) bool { return mfa.ACRSatisfies(have, want) }
