// Package webauthn is the WebAuthn factor (security keys and passkeys)
// over github.com/go-webauthn/webauthn: registration of several named
// authenticators per user, assertions as a second factor, and
// discoverable-credential (passkey) assertions as a passwordless first
// factor.
//
// # Data flow
//
// Every ceremony has two halves. Begin* returns a [Ceremony]: Options, the
// JSON the browser passes to navigator.credentials.create or .get, and
// State, the go-webauthn SessionData with the ceremony's kind and user,
// which the caller keeps server-side (the broker keeps it in the auth
// request, which is bound to the browser) and hands back exactly once to
// FinishRegistration or Verify. State never goes to the browser.
//
// A credential's Data is a JSON document of the go-webauthn credential
// (id, COSE public key, flags, AAGUID, sign counter). The WebAuthn user
// handle is the Latchkey user id, so a passkey assertion names its user
// and the caller finds the credential among that user's credentials: no
// index by credential id is needed.
//
// Verify refuses an assertion whose signature counter did not increase
// ([ErrSignCount]: a cloned authenticator or a replay) and otherwise
// returns the credential with its new counter, to be stored inside
// mfa.Store.UpdateMFACredential like every factor. The amr values are
// "hwk" (credential not backup-eligible) or "swk" (backup-eligible, a
// synced passkey), "user" for user presence, and "mfa" when the
// authenticator verified the user (PIN or biometric).
package webauthn
