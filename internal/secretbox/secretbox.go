package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

const (
	// KeySize is the length in bytes of a key-encryption key (AES-256).
	KeySize = 32
	// MaxKeyIDLen bounds a key id so a sealed value stays small and an id
	// taken from untrusted input cannot make error messages large.
	MaxKeyIDLen = 64

	prefix    = "v1"
	nonceSize = 12
	tagSize   = 16
)

var (
	// ErrUnknownKey: the value was sealed under a key-encryption key that
	// is not in the keyring. The error names the key id.
	ErrUnknownKey = errors.New("secretbox: unknown encryption key")
	// ErrDecrypt: the value is malformed, was tampered with, or was sealed
	// with other additional data or another key of the same id.
	ErrDecrypt = errors.New("secretbox: cannot decrypt")
)

// UnknownKeyError is returned (wrapping ErrUnknownKey) when a sealed value
// names a key id the keyring does not hold.
type UnknownKeyError struct{ ID string }

func (e *UnknownKeyError) Error() string {
	return fmt.Sprintf("encryption key %q is not configured", e.ID)
}

// Is reports whether target is ErrUnknownKey.
func (e *UnknownKeyError) Is(target error) bool { return target == ErrUnknownKey }

// Key is one key-encryption key.
type Key struct {
	ID     string
	Secret []byte // KeySize bytes
}

// String returns the key id only, so a Key printed by mistake does not
// reveal its secret.
func (k Key) String() string { return fmt.Sprintf("secretbox.Key{ID: %q}", k.ID) }

// GoString is String, for %#v.
func (k Key) GoString() string { return k.String() }

// LogValue keeps the secret out of structured logs.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.ID) }

// Keyring seals under its first key and opens under any of its keys. It is
// safe for concurrent use.
type Keyring struct {
	first string
	aeads map[string]cipher.AEAD
	rand  io.Reader
}

// NewKeyring builds a keyring from keys in order; the first seals. random is
// the nonce source (nil: crypto/rand). The secrets are not retained beyond
// the AES key schedule.
func NewKeyring(keys []Key, random io.Reader) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("secretbox: no encryption keys configured")
	}
	if random == nil {
		random = rand.Reader
	}
	k := &Keyring{first: keys[0].ID, aeads: make(map[string]cipher.AEAD, len(keys)), rand: random}
	for i, key := range keys {
		if err := validKeyID(key.ID); err != nil {
			return nil, fmt.Errorf("secretbox: encryption key %d: %w", i, err)
		}
		if _, dup := k.aeads[key.ID]; dup {
			return nil, fmt.Errorf("secretbox: encryption key %q is configured twice", key.ID)
		}
		if len(key.Secret) != KeySize {
			return nil, fmt.Errorf("secretbox: encryption key %q must be %d bytes, not %d", key.ID, KeySize, len(key.Secret))
		}
		block, err := aes.NewCipher(key.Secret)
		if err != nil {
			return nil, fmt.Errorf("secretbox: encryption key %q: %w", key.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("secretbox: encryption key %q: %w", key.ID, err)
		}
		k.aeads[key.ID] = aead
	}
	return k, nil
}

// validKeyID accepts 1..MaxKeyIDLen printable ASCII characters other than
// space and '.', the separator of a sealed value.
func validKeyID(id string) error {
	if id == "" {
		return errors.New("empty key id")
	}
	if len(id) > MaxKeyIDLen {
		return fmt.Errorf("key id longer than %d characters", MaxKeyIDLen)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' || c == '.' {
			return fmt.Errorf("key id %q: only printable ASCII without spaces or '.'", id)
		}
	}
	return nil
}

// PrimaryKeyID is the id of the key that seals.
func (k *Keyring) PrimaryKeyID() string { return k.first }

// Seal encrypts plaintext under the first key with a random 96-bit nonce,
// binding additionalData (which is not stored in the output).
func (k *Keyring) Seal(plaintext, additionalData []byte) (string, error) {
	aead := k.aeads[k.first]
	buf := make([]byte, nonceSize, nonceSize+len(plaintext)+tagSize)
	if _, err := io.ReadFull(k.rand, buf); err != nil {
		return "", fmt.Errorf("secretbox: read nonce: %w", err)
	}
	buf = aead.Seal(buf, buf[:nonceSize], plaintext, additionalData)
	return prefix + "." + k.first + "." + base64.RawURLEncoding.EncodeToString(buf), nil
}

// KeyID returns the id of the key that sealed a value, without opening it.
// The error wraps ErrDecrypt when the value is malformed.
func KeyID(sealed string) (string, error) {
	id, _, err := split(sealed)
	return id, err
}

func split(sealed string) (id, body string, err error) {
	rest, ok := strings.CutPrefix(sealed, prefix+".")
	if !ok {
		return "", "", fmt.Errorf("%w: not a %s sealed value", ErrDecrypt, prefix)
	}
	id, body, ok = strings.Cut(rest, ".")
	if !ok {
		return "", "", fmt.Errorf("%w: malformed sealed value", ErrDecrypt)
	}
	if validKeyID(id) != nil {
		return "", "", fmt.Errorf("%w: malformed key id in sealed value", ErrDecrypt)
	}
	return id, body, nil
}

// Open decrypts a value sealed under any key of the ring with the same
// additionalData. It returns an error wrapping ErrUnknownKey (an
// *UnknownKeyError naming the id) when the key is not in the ring, and
// ErrDecrypt for anything else that does not open.
func (k *Keyring) Open(sealed string, additionalData []byte) ([]byte, error) {
	id, body, err := split(sealed)
	if err != nil {
		return nil, err
	}
	aead, ok := k.aeads[id]
	if !ok {
		return nil, &UnknownKeyError{ID: id}
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(body)
	if err != nil {
		return nil, fmt.Errorf("%w: malformed base64 in sealed value", ErrDecrypt)
	}
	if len(raw) < nonceSize+tagSize {
		return nil, fmt.Errorf("%w: sealed value too short", ErrDecrypt)
	}
	plain, err := aead.Open(nil, raw[:nonceSize], raw[nonceSize:], additionalData)
	if err != nil {
		return nil, fmt.Errorf("%w: sealed under encryption key %q: wrong key, wrong additional data or tampered value", ErrDecrypt, id)
	}
	return plain, nil
}

// NeedsRewrap reports whether sealed was not sealed under the first key
// (including when it is malformed).
func (k *Keyring) NeedsRewrap(sealed string) bool {
	id, _, err := split(sealed)
	return err != nil || id != k.first
}

// Rewrap returns sealed re-encrypted under the first key. A value already
// sealed under the first key is opened (to prove it is intact) and returned
// unchanged.
func (k *Keyring) Rewrap(sealed string, additionalData []byte) (string, error) {
	plain, err := k.Open(sealed, additionalData)
	if err != nil {
		return "", err
	}
	defer clear(plain)
	if !k.NeedsRewrap(sealed) {
		return sealed, nil
	}
	return k.Seal(plain, additionalData)
}
