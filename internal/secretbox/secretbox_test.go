package secretbox_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/latchkeyid/latchkey/internal/secretbox"
)

func key(id string, b byte) secretbox.Key {
	return secretbox.Key{ID: id, Secret: bytes.Repeat([]byte{b}, secretbox.KeySize)}
}

func ring(t *testing.T, keys ...secretbox.Key) *secretbox.Keyring {
	t.Helper()
	r, err := secretbox.NewKeyring(keys, rand.Reader)
	if err != nil {
		t.Fatalf("NewKeyring: %v", err)
	}
	return r
}

func TestNewKeyringErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys []secretbox.Key
		want string
	}{
		{"empty", nil, "secretbox: no encryption keys configured"},
		{"duplicate", []secretbox.Key{key("k1", 1), key("k2", 2), key("k1", 3)}, `secretbox: encryption key "k1" is configured twice`},
		{"short", []secretbox.Key{key("k1", 1), {ID: "k2", Secret: []byte("0123456789abcdef")}}, `secretbox: encryption key "k2" must be 32 bytes, not 16`},
		{"empty id", []secretbox.Key{{ID: "", Secret: make([]byte, 32)}}, "secretbox: encryption key 0: empty key id"},
		{"dot in id", []secretbox.Key{key("a.b", 1)}, `secretbox: encryption key 0: key id "a.b": only printable ASCII without spaces or '.'`},
		{"long id", []secretbox.Key{key(strings.Repeat("x", 65), 1)}, "secretbox: encryption key 0: key id longer than 64 characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := secretbox.NewKeyring(tc.keys, nil)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			for _, k := range tc.keys {
				if len(k.Secret) > 0 && strings.Contains(err.Error(), string(k.Secret)) {
					t.Fatalf("error contains key bytes")
				}
			}
		})
	}
}

func TestKeyDoesNotPrintSecret(t *testing.T) {
	k := secretbox.Key{ID: "k1", Secret: []byte("super-secret-key-material-32byte")}
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k)} {
		if strings.Contains(s, "super-secret") {
			t.Fatalf("printed secret: %s", s)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	r := ring(t, key("k1", 1))
	for _, tc := range []struct {
		name      string
		plaintext []byte
		ad        []byte
	}{
		{"empty", []byte{}, nil},
		{"text", []byte("hello, world"), []byte("record-1")},
		{"binary", bytes.Repeat([]byte{0, 0xff}, 1000), []byte{0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sealed, err := r.Seal(tc.plaintext, tc.ad)
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			if !strings.HasPrefix(sealed, "v1.k1.") {
				t.Fatalf("sealed = %q, want prefix v1.k1.", sealed)
			}
			if id, err := secretbox.KeyID(sealed); err != nil || id != "k1" {
				t.Fatalf("KeyID = %q, %v", id, err)
			}
			if len(tc.plaintext) > 4 && strings.Contains(sealed, string(tc.plaintext)) {
				t.Fatalf("plaintext visible in %q", sealed)
			}
			got, err := r.Open(sealed, tc.ad)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(got, tc.plaintext) {
				t.Fatalf("Open = %x, want %x", got, tc.plaintext)
			}
			again, _ := r.Seal(tc.plaintext, tc.ad)
			if again == sealed {
				t.Fatalf("two seals gave the same output: nonce not random")
			}
		})
	}
}

func TestOpenFailures(t *testing.T) {
	r := ring(t, key("k1", 1))
	sealed, err := r.Seal([]byte("secret"), []byte("ad-1"))
	if err != nil {
		t.Fatal(err)
	}
	body := strings.TrimPrefix(sealed, "v1.k1.")
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 1
	flipped := base64.RawURLEncoding.EncodeToString(raw)
	sameIDOtherKey := ring(t, key("k1", 2))
	for _, tc := range []struct {
		name    string
		ring    *secretbox.Keyring
		sealed  string
		ad      string
		wantIs  error
		wantMsg string
	}{
		{"wrong ad", r, sealed, "ad-2", secretbox.ErrDecrypt, `secretbox: cannot decrypt: sealed under encryption key "k1": wrong key, wrong additional data or tampered value`},
		{"no ad", r, sealed, "", secretbox.ErrDecrypt, `secretbox: cannot decrypt: sealed under encryption key "k1": wrong key, wrong additional data or tampered value`},
		{"tampered", r, "v1.k1." + flipped, "ad-1", secretbox.ErrDecrypt, `secretbox: cannot decrypt: sealed under encryption key "k1": wrong key, wrong additional data or tampered value`},
		{"other key same id", sameIDOtherKey, sealed, "ad-1", secretbox.ErrDecrypt, `secretbox: cannot decrypt: sealed under encryption key "k1": wrong key, wrong additional data or tampered value`},
		{"truncated", r, sealed[:len("v1.k1.")+8], "ad-1", secretbox.ErrDecrypt, "secretbox: cannot decrypt: sealed value too short"},
		{"bad base64", r, "v1.k1.!!!!", "ad-1", secretbox.ErrDecrypt, "secretbox: cannot decrypt: malformed base64 in sealed value"},
		{"no version", r, "k1." + body, "ad-1", secretbox.ErrDecrypt, "secretbox: cannot decrypt: not a v1 sealed value"},
		{"no body", r, "v1.k1", "ad-1", secretbox.ErrDecrypt, "secretbox: cannot decrypt: malformed sealed value"},
		{"empty", r, "", "", secretbox.ErrDecrypt, "secretbox: cannot decrypt: not a v1 sealed value"},
		{"unknown key", r, strings.Replace(sealed, "v1.k1.", "v1.k9.", 1), "ad-1", secretbox.ErrUnknownKey, `encryption key "k9" is not configured`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.ring.Open(tc.sealed, []byte(tc.ad))
			if got != nil {
				t.Fatalf("Open returned plaintext %q", got)
			}
			if !errors.Is(err, tc.wantIs) || err.Error() != tc.wantMsg {
				t.Fatalf("err = %v, want %q (is %v)", err, tc.wantMsg, tc.wantIs)
			}
		})
	}
}

func TestRotateRing(t *testing.T) {
	old := ring(t, key("k1", 1))
	sealed, err := old.Seal([]byte("seed"), []byte("rec"))
	if err != nil {
		t.Fatal(err)
	}
	if old.NeedsRewrap(sealed) {
		t.Fatal("NeedsRewrap under the first key = true")
	}
	same, err := old.Rewrap(sealed, []byte("rec"))
	if err != nil || same != sealed {
		t.Fatalf("Rewrap under first key = %q, %v; want unchanged", same, err)
	}

	rotated := ring(t, key("k2", 2), key("k1", 1))
	if rotated.PrimaryKeyID() != "k2" {
		t.Fatalf("PrimaryKeyID = %q", rotated.PrimaryKeyID())
	}
	if got, err := rotated.Open(sealed, []byte("rec")); err != nil || string(got) != "seed" {
		t.Fatalf("old value under rotated ring: %q, %v", got, err)
	}
	if !rotated.NeedsRewrap(sealed) {
		t.Fatal("NeedsRewrap = false for a value under the second key")
	}
	if _, err := rotated.Rewrap(sealed, []byte("other")); !errors.Is(err, secretbox.ErrDecrypt) {
		t.Fatalf("Rewrap with wrong ad: %v", err)
	}
	rewrapped, err := rotated.Rewrap(sealed, []byte("rec"))
	if err != nil {
		t.Fatalf("Rewrap: %v", err)
	}
	if !strings.HasPrefix(rewrapped, "v1.k2.") || rotated.NeedsRewrap(rewrapped) {
		t.Fatalf("Rewrap = %q, want under k2", rewrapped)
	}

	onlyNew := ring(t, key("k2", 2))
	if got, err := onlyNew.Open(rewrapped, []byte("rec")); err != nil || string(got) != "seed" {
		t.Fatalf("rewrapped value under new-only ring: %q, %v", got, err)
	}
	_, err = onlyNew.Open(sealed, []byte("rec"))
	var uk *secretbox.UnknownKeyError
	if !errors.Is(err, secretbox.ErrUnknownKey) || !errors.As(err, &uk) || uk.ID != "k1" {
		t.Fatalf("old value under new-only ring: %v, want ErrUnknownKey for k1", err)
	}
	if _, err := onlyNew.Rewrap(sealed, []byte("rec")); !errors.Is(err, secretbox.ErrUnknownKey) {
		t.Fatalf("Rewrap without old key: %v", err)
	}
}

type failReader struct{}

func (failReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestSealRandFailure(t *testing.T) {
	r, err := secretbox.NewKeyring([]secretbox.Key{key("k1", 1)}, failReader{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Seal([]byte("x"), nil); err == nil || err.Error() != "secretbox: read nonce: no entropy" {
		t.Fatalf("Seal = %v", err)
	}
}

func FuzzOpen(f *testing.F) {
	r, err := secretbox.NewKeyring([]secretbox.Key{key("k1", 1), key("k2", 2)}, nil)
	if err != nil {
		f.Fatal(err)
	}
	good, _ := r.Seal([]byte("plaintext"), []byte("ad"))
	for _, s := range []string{good, "", "v1.", "v1..", "v1.k1.", "v1.k1.AAAA", "v1.k3.AAAA", "v2.k1.AAAA", "v1.k1.====", "v1.k\x00.AA", good + "A"} {
		f.Add(s, []byte("ad"))
	}
	f.Fuzz(func(t *testing.T, sealed string, ad []byte) {
		plain, err := r.Open(sealed, ad)
		if err != nil {
			if plain != nil {
				t.Fatalf("plaintext with error")
			}
			if !errors.Is(err, secretbox.ErrDecrypt) && !errors.Is(err, secretbox.ErrUnknownKey) {
				t.Fatalf("unexpected error class: %v", err)
			}
			if len(err.Error()) > 200 {
				t.Fatalf("error too long: %d bytes", len(err.Error()))
			}
		}
		_ = r.NeedsRewrap(sealed)
		_, _ = secretbox.KeyID(sealed)
		if _, err := r.Rewrap(sealed, ad); err == nil && plain == nil {
			t.Fatalf("Rewrap succeeded where Open failed")
		}
	})
}
