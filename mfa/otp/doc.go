// Package otp is the SMS and e-mail one-time-code factor (mfa.TypeSMS,
// mfa.TypeEmail): one Factor type, two instances, each with a Deliverer
// that sends a code to the credential's address (notify/sms, notify/email).
//
// A code is 6 digits from the injected random source, valid for 5
// minutes. It is never stored: only HMAC-SHA256(key, credential id,
// challenge id, code), so a leaked challenge cannot be brute-forced
// without the key (cmd derives it from the first key-encryption key, so
// every replica shares it).
//
//	BeginEnrollment(Address)  validates the address (E.164 for SMS), sends a
//	                          code, returns a pending credential whose Data
//	                          holds the address and the hashed code
//	FinishEnrollment(code)    the address is proven: the credential to store
//	BeginChallenge(cred)      sends a new code; State (hash, expiry) is kept
//	                          server-side by the caller (ephemeral store)
//	Verify(cred, state, code) checks it; no side effects
//
// The caller bounds attempts (MaxAttempts per code, then the code is void)
// and sends (internal/ratelimit), and keeps the challenge single-use (it
// takes the state on success). Phone numbers are shown masked
// (MaskPhone); codes, addresses and states never appear in errors.
package otp
