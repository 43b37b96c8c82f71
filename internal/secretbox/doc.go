// Package secretbox encrypts the secrets Latchkey must read back (signing
// keys, upstream client secrets and refresh tokens, TOTP seeds) with
// AES-256-GCM under key-encryption keys (KEKs) from the config.
//
// A Keyring holds the configured KEKs in order: the first seals, every one
// opens. A sealed value names the KEK that sealed it,
//
//	v1.<kek id>.<base64url(nonce || ciphertext || tag)>
//
// so a KEK can be rotated by putting a new key first and keeping the old one
// second until `latchkey keys rewrap` has re-sealed every value (NeedsRewrap,
// Rewrap). Callers pass the id of the record a value belongs to as
// additional data, which binds the ciphertext to that record: a value
// copied into another record does not open.
//
// Errors name KEK ids, never key bytes or plaintext.
package secretbox
