// Package recovery is the recovery-code factor (amr "rcode"): a set of
// single-use codes the user prints or stores when enrolling another
// factor, to sign in when that factor is lost.
//
// A set is Count (10) codes of Length (10) characters from Crockford's
// base32 alphabet (no I, L, O or U), 50 random bits each, drawn from the
// injected random source and shown once as "XXXXX-XXXXX". The credential
// keeps only their SHA-256 hashes (high-entropy values we generate:
// DESIGN-NOTES "Secrets at rest"), each salted with the credential id, and
// the time each was used. Verify normalises what the user typed (case,
// dashes, spaces, and O/I/L read as 0/1/1), compares its hash with every
// stored hash in constant time, and returns the credential with that code
// marked used: a second use is refused with mfa.ErrReplay. Regenerate
// replaces the whole set, voiding the old codes.
//
// Credential Data (JSON): {"v":1,"codes":[{"hash":"<hex>","used_at":T}...]}.
// Errors never contain a code.
package recovery
