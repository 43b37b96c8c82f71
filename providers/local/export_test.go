package local

// Hooks for the external tests: swap the key derivation (to count or block
// hash computations) and lower the cost bounds Verify accepts (so the
// fuzzer cannot make one input allocate a gigabyte).

// KDF is the signature of the key derivation a Hasher calls.
type KDF = kdf

// RealKDF is argon2id itself.
func RealKDF(password, salt []byte, p Params) []byte { return argon2id(password, salt, p) }

// SetKDF makes h derive keys with f.
func SetKDF(h *Hasher, f KDF) { h.kdf = f }

// SetVerifyLimits bounds the memory (KiB) and iterations Verify accepts.
func SetVerifyLimits(h *Hasher, memory, iterations uint32) {
	h.maxVerifyMemory, h.maxVerifyIterations = memory, iterations
}

// Reencode decodes a PHC string and encodes it again.
func Reencode(s string) (string, error) {
	d, err := decode(s)
	if err != nil {
		return "", err
	}
	return encode(d.params, d.salt, d.key), nil
}
