// Package totp is the TOTP factor (RFC 6238, amr "otp") over
// github.com/pquerna/otp.
//
// Enrollment: BeginEnrollment draws a random seed as long as the HMAC's
// output (20 bytes, 160 bits, for the default SHA1) from the injected
// random source, seals it with the injected [Sealer] (the credential id is
// the additional data, so a sealed seed copied into another credential does
// not open) and returns the pending credential together with what the user
// sees once: the otpauth:// URI, the seed as base32 text and the URI as a
// QR code PNG. FinishEnrollment accepts the pending credential only with a
// first valid code, and remembers that code's time step.
//
// Verification accepts a code for the current time step or one step either
// side (clock skew), and only for a step after the last step this
// credential accepted: a code is never accepted twice, and a code older
// than one already used is refused too (mfa.ErrReplay). The last step lives
// in the credential's Data, so the caller's atomic store update is what
// makes this hold across replicas.
//
// The parameters (algorithm SHA1/SHA256/SHA512, 6 or 8 digits, period) are
// configured per Factor and copied into each credential at enrollment:
// changing the configuration later does not break enrolled authenticators.
//
// Credential Data (JSON): {"v":1,"seed":"<sealed>","alg":"SHA1",
// "digits":6,"period":30,"last_step":N}, last_step -1 before the first
// code. Errors never contain a code or the seed.
package totp
