// Package local is the connector for Latchkey's own password database.
//
// Login trims the username, rejects overlong input without hashing (a
// denial-of-service guard: MaxUsernameLength, MaxPasswordLength), looks the
// account up through the small Accounts interface this package owns (cmd
// adapts the storage to it), and verifies the password against the
// account's argon2id hash. Every attempt within the length limits costs
// exactly one hash verification, whatever its outcome: an unknown user, an
// empty username (not looked up), an account without a password or with an
// unreadable hash is verified against a dummy hash computed once in New
// with the same parameters; a disabled account and an empty password are
// verified against the stored hash as usual and then refused, so an empty
// password never signs in even where the stored hash matches it. The
// response time therefore does not tell which usernames exist or which
// accounts are disabled (except that an account whose hash was made under
// older, different parameters costs what those parameters cost), and every
// failure the user caused is the one providers.ErrInvalidCredentials.
//
// Hashes are stored in the PHC string format of the argon2 reference
// implementation,
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
//
// (standard base64 without padding). Verify reads the parameters from the
// stored string, so hashes made under older parameters keep verifying;
// NeedsRehash tells which ones to replace.
//
// A Hasher bounds the number of hashes computed at once with a semaphore
// (default: GOMAXPROCS, which follows the CPU count or the container's CPU
// limit), since each one holds Params.Memory KiB: at most maxConcurrent ×
// Memory is in use for hashing. A caller waits up to the queue wait for a
// slot and then gets providers.ErrBusy, which the web layer answers with
// 503 and Retry-After. This also blunts a login flood.
//
// Passwords and hashes never appear in logs or error messages.
package local
