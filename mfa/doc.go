// Package mfa owns second factors (TOTP, WebAuthn, SMS and email codes,
// recovery codes, each in a subpackage) and the policy that decides which
// factor a login must present for a client, connector and acr_values
// (mfa/policy).
//
// # The factor model
//
// A user's enrolled factor is a [Credential]: a small record whose Data is
// private to the factor that made it (for TOTP the sealed seed and the last
// accepted time step, for recovery codes the hashes of the codes). Every
// factor implements [Factor]:
//
//	BeginEnrollment  -> Enrollment{Pending credential, what to show once}
//	FinishEnrollment -> the confirmed credential, to store
//	BeginChallenge   -> Challenge{State to keep server-side, Options for the browser}
//	Verify           -> Verification{updated credential, amr values}
//
// The methods are pure with respect to storage: they take a credential and
// return the next one. The caller keeps a pending credential server-side
// (the auth request) until FinishEnrollment, then stores the result with
// [Store.CreateMFACredential]; it runs Verify inside
// [Store.UpdateMFACredential] so that the replay state a verification
// changes (the last TOTP step, a used recovery code) is written atomically:
// of two concurrent verifications with the same code, one wins and the
// other, retried on the new record, gets [ErrReplay]. Verify has no side
// effects and may be called more than once.
//
// The factors are collected in a [Registry], a plain map built in cmd and
// passed in; nothing registers itself.
//
// # amr and acr
//
// A session is a list of authentication [Step]s: the primary login (the
// password or the upstream connector) and each verified second factor,
// each with the amr values it contributed and its time. [AMR] derives the
// session's amr from its steps (adding "mfa" when two kinds of factor were
// used, or a step already carries it, as a WebAuthn assertion with user
// verification does) and [ACRFor] derives the acr level from the amr, as
// CONTRACTS.md "acr and amr" says. acr is never stored apart from the
// factors.
//
// Errors never carry a code, a seed or a recovery code; [Enrollment] and
// [Credential] print without their secrets.
package mfa
