// Package keys owns Latchkey's token signing keys: their generation,
// rotation across replicas, the published JWKS, signing and verification of
// the tokens Latchkey issues.
//
// All keys live in one record of the durable store (storage.Keys), a JSON
// document defined in record.go. For every algorithm (RS256 with RSA-2048,
// ES256 with P-256, optionally EdDSA with Ed25519) it holds
//
//   - the signing key, which signs every new token;
//   - the next key, generated at the previous rotation and published in the
//     JWKS ever since, so relying parties have it cached before it signs;
//   - retired keys, no longer signing but still published until their
//     retire time (rotation time + RetireAfter, which must cover the
//     longest token lifetime), then dropped;
//
// and, for the whole record, the next rotation time. Private keys are
// stored as PKCS#8 sealed with internal/secretbox, with the key id as
// additional data; public keys are derived from the decrypted private keys,
// so whoever can write the database but lacks the encryption key cannot
// slip a key of their own into the JWKS.
//
// Key ids are RFC 7638 JWK thumbprints (SHA-256, base64url).
//
// Rotation is a compare-and-swap from the record a replica read to the one
// it computed (Store.UpdateKeys): when two replicas rotate at once, one
// wins, the other gets storage.ErrConflict, reloads and signs with the
// winner's keys. Because the next key is created one rotation period before
// it signs and New requires RotationPeriod >= PrePublish, every key is in
// the JWKS at least PrePublish before it signs (a forced rotation, for a
// compromised key, may shorten that and logs a warning).
//
// A Manager keeps the decoded record in memory (an immutable snapshot behind
// an atomic pointer): Sign, Signer, JWKS, KeySet and Verify never touch the
// store. Refresh reloads when storage.Keys.Version changed; Run rotates when
// due and refreshes on a ticker. The JWKS bytes are prepared once per record
// version and rebuilt only when the record changes or a retired key's time
// has passed.
package keys
