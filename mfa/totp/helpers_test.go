package totp

import (
	"bytes"
	"errors"
	mathrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/internal/secretbox"
	"github.com/latchkeyid/latchkey/mfa"
)

var _ Sealer = (*secretbox.Keyring)(nil)

// keyring returns a keyring with one fixed KEK and a deterministic nonce
// source.
func keyring(t testing.TB) *secretbox.Keyring {
	t.Helper()
	k, err := secretbox.NewKeyring([]secretbox.Key{{ID: "k1", Secret: bytes.Repeat([]byte{7}, secretbox.KeySize)}},
		mathrand.NewChaCha8([32]byte{1}))
	if err != nil {
		t.Fatalf("keyring: %v", err)
	}
	return k
}

// factor returns a factor over a fake clock at now with deterministic
// randomness; o's zero fields take the defaults.
func factor(t testing.TB, o Options, now time.Time) (*Factor, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(now)
	if o.Issuer == "" {
		o.Issuer = "Latchkey"
	}
	if o.Sealer == nil {
		o.Sealer = keyring(t)
	}
	o.Clock = clk
	if o.Rand == nil {
		o.Rand = mathrand.NewChaCha8([32]byte{2})
	}
	f, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return f, clk
}

// withSeed makes a pending credential with a known seed.
func withSeed(t testing.TB, f *Factor, id string, seed []byte) mfa.Enrollment {
	t.Helper()
	e, err := f.enroll(id, mfa.EnrollmentRequest{UserID: "u1", AccountName: "alice"}, seed)
	if err != nil {
		t.Fatalf("enroll: %v", err)
	}
	return e
}

// lastStep reads the remembered step of a credential.
func lastStep(t testing.TB, c mfa.Credential) int64 {
	t.Helper()
	s, err := decode(c)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return s.LastStep
}

// wantErr checks err against a sentinel (nil: success) and that its text
// holds none of the secrets.
func wantErr(t *testing.T, err, want error, secrets ...string) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("err = %v, want nil", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Fatalf("error %q contains a secret", err)
		}
	}
}
