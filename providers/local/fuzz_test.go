package local_test

import (
	"errors"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/providers/local"
)

// FuzzVerify feeds arbitrary stored strings and passwords to Verify: it
// never panics, every error is ErrMalformedHash, and every string it
// accepts is canonical (decoding and encoding again gives it back).
func FuzzVerify(f *testing.F) {
	f.Add(referenceVector, "password")
	f.Add("$argon2id$v=19$m=64,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "pw")
	f.Add("$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ$AAAAAA", "")
	f.Add("$argon2id$v=19$m=16,t=2,p=2$c29tZXNhbHQ$AAAAAA", "x")
	f.Add("$argon2i$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$9sTbSlTio3Biev89thdrlKKiCaYsjjYVJxGAL3swxpQ", "password")
	f.Add("$argon2id$v=19$m=4294967295,t=4294967295,p=255$c29tZXNhbHQ$AAAAAA", "x")
	f.Add("$argon2id$v=19$m=64,t=1,p=1$$", "")
	f.Add("$$$$$", "")
	f.Add("", "")

	h := local.NewHasher(local.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}, 1, time.Second, nil)
	// Accept at most 256 KiB and 2 passes, so an accepted input stays
	// cheap; the parser in front of the limit is the same.
	local.SetVerifyLimits(h, 256, 2)
	f.Fuzz(func(t *testing.T, encoded, password string) {
		_, err := h.Verify(t.Context(), encoded, password)
		if err != nil {
			if !errors.Is(err, local.ErrMalformedHash) {
				t.Fatalf("Verify error %v is not ErrMalformedHash", err)
			}
			return
		}
		again, err := local.Reencode(encoded)
		if err != nil || again != encoded {
			t.Fatalf("accepted %q but re-encodes as %q, %v", encoded, again, err)
		}
		_ = h.NeedsRehash(encoded)
	})
}
