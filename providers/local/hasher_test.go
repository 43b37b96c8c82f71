package local_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/local"
)

// small are cheap parameters for tests that are not about cost.
var small = local.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}

func newSmallHasher(t testing.TB) *local.Hasher {
	t.Helper()
	return local.NewHasher(small, 2, time.Second, nil)
}

// The vector from the argon2 reference implementation's test suite
// (phc-winner-argon2 src/test.c): argon2id, v=19, t=2, m=2^16, p=1,
// password "password", salt "somesalt", 32-byte tag.
const referenceVector = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"

func TestVerifyReferenceVector(t *testing.T) {
	h := local.NewHasher(local.DefaultParams, 1, time.Second, nil)
	// One 64 MiB verification; wrong passwords are covered under cheap
	// parameters below.
	ok, err := h.Verify(t.Context(), referenceVector, "password")
	if err != nil || !ok {
		t.Fatalf("Verify(reference, \"password\") = %v, %v; want true, nil", ok, err)
	}
}

// TestVerifyIndependentVector builds a PHC string with argon2.IDKey
// directly (not through the package) under parameters other than the
// hasher's: old hashes keep verifying.
func TestVerifyIndependentVector(t *testing.T) {
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte("s3cret pässword"), salt, 3, 128, 2, 24)
	enc := "$argon2id$v=19$m=128,t=3,p=2$" + base64.RawStdEncoding.EncodeToString(salt) + "$" + base64.RawStdEncoding.EncodeToString(key)
	h := newSmallHasher(t)
	tests := []struct {
		name, password string
		want           bool
	}{
		{"right", "s3cret pässword", true},
		{"wrong", "s3cret password", false},
		{"empty", "", false},
		{"prefix", "s3cret", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := h.Verify(t.Context(), enc, tc.password)
			if err != nil || ok != tc.want {
				t.Fatalf("Verify = %v, %v; want %v, nil", ok, err, tc.want)
			}
		})
	}
	if !h.NeedsRehash(enc) {
		t.Error("NeedsRehash(old params) = false, want true")
	}
}

func TestHashFormat(t *testing.T) {
	// A fixed "random" source makes the salt and so the whole string known.
	salt := bytes.Repeat([]byte{0xA5}, 16)
	h := local.NewHasher(small, 1, time.Second, bytes.NewReader(salt))
	got, err := h.Hash(t.Context(), "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	key := argon2.IDKey([]byte("correct horse"), salt, 1, 64, 1, 32)
	want := "$argon2id$v=19$m=64,t=1,p=1$" + base64.RawStdEncoding.EncodeToString(salt) + "$" + base64.RawStdEncoding.EncodeToString(key)
	if got != want {
		t.Fatalf("Hash = %s\nwant   %s", got, want)
	}

	// The salt source running dry is an error, not a weak salt.
	if _, err := h.Hash(t.Context(), "again"); !errors.Is(err, io.EOF) || err.Error() != "local: read salt: EOF" {
		t.Fatalf("Hash with an exhausted rand source: %v; want local: read salt: EOF", err)
	}
}

func TestHashDefaultParamsRoundTrip(t *testing.T) {
	h := local.NewHasher(local.Params{}, 0, 0, nil) // every default
	if h.Params() != local.DefaultParams {
		t.Fatalf("Params() = %+v, want DefaultParams %+v", h.Params(), local.DefaultParams)
	}
	enc, err := h.Hash(t.Context(), "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") || len(enc) != len("$argon2id$v=19$m=19456,t=2,p=1$")+22+1+43 {
		t.Fatalf("Hash = %q: not a DefaultParams PHC string with a 16-byte salt and 32-byte key", enc)
	}
	ok, err := h.Verify(t.Context(), enc, "correct horse battery staple")
	if err != nil || !ok {
		t.Fatalf("Verify(own hash) = %v, %v; want true, nil", ok, err)
	}
	if h.NeedsRehash(enc) {
		t.Error("NeedsRehash(own hash) = true, want false")
	}
	// Two hashes of one password differ (fresh salt).
	enc2, err := h.Hash(t.Context(), "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if enc2 == enc {
		t.Error("two hashes of one password are equal: salt not random")
	}
}

func TestNeedsRehash(t *testing.T) {
	h := newSmallHasher(t)
	own, err := h.Hash(t.Context(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	salt16 := base64.RawStdEncoding.EncodeToString(make([]byte, 16))
	key32 := base64.RawStdEncoding.EncodeToString(make([]byte, 32))
	tests := []struct {
		name, encoded string
		want          bool
	}{
		{"own hash", own, false},
		{"same params, other salt", "$argon2id$v=19$m=64,t=1,p=1$" + salt16 + "$" + key32, false},
		{"other memory", "$argon2id$v=19$m=128,t=1,p=1$" + salt16 + "$" + key32, true},
		{"other iterations", "$argon2id$v=19$m=64,t=2,p=1$" + salt16 + "$" + key32, true},
		{"other parallelism", "$argon2id$v=19$m=64,t=1,p=2$" + salt16 + "$" + key32, true},
		{"shorter salt", "$argon2id$v=19$m=64,t=1,p=1$" + base64.RawStdEncoding.EncodeToString(make([]byte, 8)) + "$" + key32, true},
		{"shorter key", "$argon2id$v=19$m=64,t=1,p=1$" + salt16 + "$" + base64.RawStdEncoding.EncodeToString(make([]byte, 16)), true},
		{"reference vector", referenceVector, true},
		{"malformed", "$argon2i$v=19$m=64,t=1,p=1$" + salt16 + "$" + key32, true},
		{"empty", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := h.NeedsRehash(tc.encoded); got != tc.want {
				t.Fatalf("NeedsRehash = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestVerifyMalformed(t *testing.T) {
	salt := base64.RawStdEncoding.EncodeToString([]byte("0123456789abcdef"))
	key := base64.RawStdEncoding.EncodeToString(make([]byte, 32))
	ok := "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key
	tests := []struct {
		name, encoded, wantErr string
	}{
		{"empty", "", "local: malformed password hash: want $argon2id$v=19$m=..,t=..,p=..$salt$hash"},
		{"garbage", "not a hash", "local: malformed password hash: want $argon2id$v=19$m=..,t=..,p=..$salt$hash"},
		{"no leading dollar", "argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "$", "local: malformed password hash: want $argon2id$v=19$m=..,t=..,p=..$salt$hash"},
		{"too few parts", "$argon2id$v=19$m=64,t=1,p=1$" + salt, "local: malformed password hash: want $argon2id$v=19$m=..,t=..,p=..$salt$hash"},
		{"extra part", ok + "$", "local: malformed password hash: want $argon2id$v=19$m=..,t=..,p=..$salt$hash"},
		{"argon2i", strings.Replace(ok, "argon2id", "argon2i", 1), "local: malformed password hash: not argon2id"},
		{"argon2d", strings.Replace(ok, "argon2id", "argon2d", 1), "local: malformed password hash: not argon2id"},
		{"bcrypt", "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", "local: malformed password hash: want $argon2id$v=19$m=..,t=..,p=..$salt$hash"},
		{"no version", "$argon2id$m=64,t=1,p=1$" + salt + "$" + key + "$x", "local: malformed password hash: missing version"},
		{"version 16", strings.Replace(ok, "v=19", "v=16", 1), "local: malformed password hash: unsupported version"},
		{"version leading zero", strings.Replace(ok, "v=19", "v=019", 1), "local: malformed password hash: unsupported version"},
		{"params out of order", strings.Replace(ok, "m=64,t=1,p=1", "t=1,m=64,p=1", 1), "local: malformed password hash: want parameters m,t,p"},
		{"missing param", strings.Replace(ok, "m=64,t=1,p=1", "m=64,t=1", 1), "local: malformed password hash: want parameters m,t,p"},
		{"extra param", strings.Replace(ok, "m=64,t=1,p=1", "m=64,t=1,p=1,keyid=x", 1), "local: malformed password hash: want parameters m,t,p"},
		{"empty memory", strings.Replace(ok, "m=64", "m=", 1), "local: malformed password hash: parameter m is not a number"},
		{"negative memory", strings.Replace(ok, "m=64", "m=-64", 1), "local: malformed password hash: parameter m is not a number"},
		{"plus sign", strings.Replace(ok, "t=1", "t=+1", 1), "local: malformed password hash: parameter t is not a number"},
		{"leading zero", strings.Replace(ok, "m=64", "m=064", 1), "local: malformed password hash: parameter m is not a number"},
		{"memory overflows uint32", strings.Replace(ok, "m=64", "m=4294967296", 1), "local: malformed password hash: parameter m is not a number"},
		{"parallelism 256", strings.Replace(ok, "p=1", "p=256", 1), "local: malformed password hash: parallelism above 255"},
		{"zero iterations", strings.Replace(ok, "t=1", "t=0", 1), "local: malformed password hash: argon2id parameters: iterations must be at least 1"},
		{"zero parallelism", strings.Replace(ok, "p=1", "p=0", 1), "local: malformed password hash: argon2id parameters: parallelism must be at least 1"},
		{"memory below 8p", strings.Replace(ok, "m=64,t=1,p=1", "m=64,t=1,p=9", 1), "local: malformed password hash: argon2id parameters: memory must be at least 8 KiB per degree of parallelism"},
		{"memory above limit", strings.Replace(ok, "m=64", "m=4294967295", 1), "local: malformed password hash: cost parameters above the accepted maximum"},
		{"iterations above limit", strings.Replace(ok, "t=1", "t=4294967295", 1), "local: malformed password hash: cost parameters above the accepted maximum"},
		{"salt not base64", "$argon2id$v=19$m=64,t=1,p=1$sa!t$" + key, "local: malformed password hash: salt is not base64"},
		{"salt padded", "$argon2id$v=19$m=64,t=1,p=1$" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef")) + "$" + key, "local: malformed password hash: salt is not base64"},
		{"salt url alphabet", "$argon2id$v=19$m=64,t=1,p=1$" + base64.RawURLEncoding.EncodeToString([]byte{0xfb, 0xff, 0xfe, 0xfb, 0xff, 0xfe, 0xfb, 0xff, 0xfe}) + "$" + key, "local: malformed password hash: salt is not base64"},
		{"salt non-zero trailing bits", "$argon2id$v=19$m=64,t=1,p=1$" + salt[:len(salt)-1] + "B$" + key, "local: malformed password hash: salt is not base64"},
		{"line break in salt", "$argon2id$v=19$m=64,t=1,p=1$" + salt[:4] + "\r\n" + salt[4:] + "$" + key, "local: malformed password hash: line break in salt or hash"},
		{"line break in hash", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "\n", "local: malformed password hash: line break in salt or hash"},
		{"hash not base64", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$h@sh", "local: malformed password hash: hash is not base64"},
		{"salt too short", "$argon2id$v=19$m=64,t=1,p=1$" + base64.RawStdEncoding.EncodeToString(make([]byte, 7)) + "$" + key, "local: malformed password hash: argon2id parameters: salt length must be 8 to 64 bytes"},
		{"empty salt", "$argon2id$v=19$m=64,t=1,p=1$$" + key, "local: malformed password hash: argon2id parameters: salt length must be 8 to 64 bytes"},
		{"key too short", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + base64.RawStdEncoding.EncodeToString(make([]byte, 3)), "local: malformed password hash: argon2id parameters: key length must be 4 to 128 bytes"},
		{"empty key", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$", "local: malformed password hash: argon2id parameters: key length must be 4 to 128 bytes"},
		{"too long", ok + strings.Repeat("A", 512), "local: malformed password hash: too long"},
	}
	h := newSmallHasher(t)
	var calls atomic.Int64
	local.SetKDF(h, func(pw, salt []byte, p local.Params) []byte {
		calls.Add(1)
		return local.RealKDF(pw, salt, p)
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := h.Verify(t.Context(), tc.encoded, "password")
			if ok || err == nil || err.Error() != tc.wantErr {
				t.Fatalf("Verify = %v, %v; want false, %q", ok, err, tc.wantErr)
			}
			if !errors.Is(err, local.ErrMalformedHash) {
				t.Fatalf("error %v does not wrap ErrMalformedHash", err)
			}
		})
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("malformed strings cost %d hash computations, want 0", n)
	}
	// The well-formed base the cases were derived from does verify.
	if _, err := h.Verify(t.Context(), ok, "password"); err != nil {
		t.Fatalf("Verify(well-formed base) error: %v", err)
	}
}

// blockingKDF returns a KDF that signals entered and then waits for
// release; it lets a test hold a hashing slot as long as it likes.
func blockingKDF(entered chan<- struct{}, release <-chan struct{}) local.KDF {
	return func(pw, salt []byte, p local.Params) []byte {
		entered <- struct{}{}
		<-release
		return local.RealKDF(pw, salt, p)
	}
}

func TestSemaphoreBusy(t *testing.T) {
	h := local.NewHasher(small, 1, 50*time.Millisecond, nil)
	entered, release := make(chan struct{}, 1), make(chan struct{})
	local.SetKDF(h, blockingKDF(entered, release))

	first := make(chan error, 1)
	go func() {
		_, err := h.Hash(t.Context(), "first")
		first <- err
	}()
	<-entered // the first call holds the only slot

	_, err := h.Hash(t.Context(), "second")
	if !errors.Is(err, providers.ErrBusy) || err.Error() != "local: no hashing slot free after 50ms: too many concurrent logins, try again later" {
		t.Fatalf("Hash while the slot is taken: %v; want ErrBusy", err)
	}
	_, err = h.Verify(t.Context(), referenceVector, "password")
	if !errors.Is(err, providers.ErrBusy) {
		t.Fatalf("Verify while the slot is taken: %v; want ErrBusy", err)
	}

	close(release)
	if err := <-first; err != nil {
		t.Fatalf("first Hash: %v", err)
	}
	// The slot is free again.
	if _, err := h.Hash(t.Context(), "third"); err != nil {
		t.Fatalf("Hash after release: %v", err)
	}
}

func TestSemaphoreContext(t *testing.T) {
	h := local.NewHasher(small, 1, time.Minute, nil)
	entered, release := make(chan struct{}, 1), make(chan struct{})
	var calls atomic.Int64
	block := blockingKDF(entered, release)
	local.SetKDF(h, func(pw, salt []byte, p local.Params) []byte {
		calls.Add(1)
		return block(pw, salt, p)
	})
	first := make(chan error, 1)
	go func() {
		_, err := h.Hash(t.Context(), "first")
		first <- err
	}()
	<-entered

	t.Run("cancelled while waiting", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			_, err := h.Hash(ctx, "waiting")
			done <- err
		}()
		time.Sleep(20 * time.Millisecond) // let it queue; either way the answer is the same
		cancel()
		err := <-done
		if !errors.Is(err, context.Canceled) || err.Error() != "local: wait for a hashing slot: context canceled" {
			t.Fatalf("Hash = %v; want context.Canceled", err)
		}
	})
	t.Run("deadline while waiting", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
		defer cancel()
		_, err := h.Verify(ctx, referenceVector, "password")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Verify = %v; want context.DeadlineExceeded", err)
		}
	})
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("first Hash: %v", err)
	}

	t.Run("cancelled before the call, slot free", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		before := calls.Load()
		_, err := h.Hash(ctx, "late")
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Hash = %v; want context.Canceled", err)
		}
		if calls.Load() != before {
			t.Fatal("a cancelled call computed a hash")
		}
	})
}

func TestParamsValidate(t *testing.T) {
	tests := []struct {
		name    string
		p       local.Params
		wantErr string
	}{
		{"defaults", local.DefaultParams, ""},
		{"small", small, ""},
		{"zero", local.Params{}, "argon2id parameters: iterations must be at least 1; parallelism must be at least 1; salt length must be 8 to 64 bytes; key length must be 4 to 128 bytes"},
		{"memory below 8p", local.Params{Memory: 31, Iterations: 1, Parallelism: 4, SaltLength: 16, KeyLength: 32}, "argon2id parameters: memory must be at least 8 KiB per degree of parallelism"},
		{"key too long", local.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 129}, "argon2id parameters: key length must be 4 to 128 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.wantErr {
				t.Fatalf("Validate = %q, want %q", got, tc.wantErr)
			}
		})
	}
}

func TestNewHasherDefaultsAndPanic(t *testing.T) {
	h := local.NewHasher(local.Params{Memory: 64, Iterations: 1}, 0, 0, nil)
	want := local.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}
	if h.Params() != want {
		t.Fatalf("Params() = %+v, want %+v", h.Params(), want)
	}
	defer func() {
		r := recover()
		if r != "local.NewHasher: argon2id parameters: salt length must be 8 to 64 bytes" {
			t.Fatalf("recover() = %v; want the Validate message", r)
		}
	}()
	local.NewHasher(local.Params{SaltLength: 4}, 1, time.Second, nil)
}
