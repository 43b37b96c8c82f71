package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchkeyid/latchkey/internal/secretbox"
)

// Signature algorithms Latchkey can sign with.
const (
	RS256 = "RS256" // RSASSA-PKCS1-v1_5 with SHA-256, RSA 2048
	ES256 = "ES256" // ECDSA P-256 with SHA-256
	EdDSA = "EdDSA" // Ed25519
)

// formatVersion is the version of the document in storage.Keys.Data.
const formatVersion = 1

// document is the keys record (storage.Keys.Data).
type document struct {
	Format int `json:"format"`
	// NextRotation is when every algorithm's next key starts signing.
	NextRotation time.Time `json:"next_rotation"`
	// Algorithms maps a JWS alg to its keys.
	Algorithms map[string]*algKeys `json:"algorithms"`
}

type algKeys struct {
	Signing storedKey   `json:"signing"`
	Next    storedKey   `json:"next"`
	Retired []storedKey `json:"retired,omitempty"`
}

// storedKey is one key pair. Only Private is secret, and it is sealed.
type storedKey struct {
	KID     string    `json:"kid"`
	Alg     string    `json:"alg"`
	Created time.Time `json:"created"`
	// Activated is when the key started signing (zero for a next key).
	Activated time.Time `json:"activated,omitzero"`
	// RetireAt is when a retired key leaves the JWKS.
	RetireAt time.Time `json:"retire_at,omitzero"`
	// Private is the PKCS#8 private key sealed with secretbox, additional
	// data = KID.
	Private string `json:"private"`
}

func parseDocument(data []byte) (*document, error) {
	var d document
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("decode keys record: %w", err)
	}
	if d.Format != formatVersion {
		return nil, fmt.Errorf("decode keys record: format %d is not supported (want %d)", d.Format, formatVersion)
	}
	if d.Algorithms == nil {
		d.Algorithms = map[string]*algKeys{}
	}
	for alg, ak := range d.Algorithms {
		if ak == nil {
			return nil, fmt.Errorf("decode keys record: algorithm %q has no keys", alg)
		}
		if _, ok := algorithms[alg]; !ok {
			return nil, fmt.Errorf("decode keys record: unsupported algorithm %q", alg)
		}
	}
	return &d, nil
}

// clone returns a deep copy, so a rotation can change it without touching
// the snapshot readers use.
func (d *document) clone() *document {
	c := &document{Format: d.Format, NextRotation: d.NextRotation, Algorithms: make(map[string]*algKeys, len(d.Algorithms))}
	for alg, ak := range d.Algorithms {
		cp := *ak
		cp.Retired = append([]storedKey(nil), ak.Retired...)
		c.Algorithms[alg] = &cp
	}
	return c
}

// algorithm describes how to make and check keys for one JWS alg.
type algorithm struct {
	generate func(rand io.Reader) (crypto.Signer, error)
	// matches reports whether a decoded private key is of the alg's type.
	matches func(crypto.Signer) bool
}

var algorithms = map[string]algorithm{
	RS256: {
		generate: func(r io.Reader) (crypto.Signer, error) { return rsa.GenerateKey(r, 2048) },
		matches: func(k crypto.Signer) bool {
			rk, ok := k.(*rsa.PrivateKey)
			return ok && rk.N.BitLen() >= 2048
		},
	},
	ES256: {
		generate: func(r io.Reader) (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), r) },
		matches: func(k crypto.Signer) bool {
			ek, ok := k.(*ecdsa.PrivateKey)
			return ok && ek.Curve == elliptic.P256()
		},
	},
	EdDSA: {
		generate: func(r io.Reader) (crypto.Signer, error) {
			_, priv, err := ed25519.GenerateKey(r)
			return priv, err
		},
		matches: func(k crypto.Signer) bool { _, ok := k.(ed25519.PrivateKey); return ok },
	},
}

// thumbprint is the RFC 7638 SHA-256 JWK thumbprint, base64url.
func thumbprint(pub crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// newKey generates a key for alg and seals it.
func newKey(alg string, rand io.Reader, ring *secretbox.Keyring, now time.Time) (storedKey, error) {
	a, ok := algorithms[alg]
	if !ok {
		return storedKey{}, fmt.Errorf("generate key: unsupported algorithm %q", alg)
	}
	priv, err := a.generate(rand)
	if err != nil {
		return storedKey{}, fmt.Errorf("generate %s key: %w", alg, err)
	}
	kid, err := thumbprint(priv.Public())
	if err != nil {
		return storedKey{}, fmt.Errorf("generate %s key: thumbprint: %w", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return storedKey{}, fmt.Errorf("generate %s key: encode: %w", alg, err)
	}
	defer clear(der)
	sealed, err := ring.Seal(der, []byte(kid))
	if err != nil {
		return storedKey{}, fmt.Errorf("generate %s key: seal: %w", alg, err)
	}
	return storedKey{KID: kid, Alg: alg, Created: now.UTC(), Private: sealed}, nil
}

// open decrypts a stored key and checks that it is what the record says:
// the right type for its alg and the kid its thumbprint. role names the key
// in errors ("signing", "next", "retired").
func (k storedKey) open(ring *secretbox.Keyring, role string) (crypto.Signer, error) {
	kekID, err := secretbox.KeyID(k.Private)
	if err != nil {
		return nil, fmt.Errorf("decrypt %s key %q: %w", role, k.KID, err)
	}
	der, err := ring.Open(k.Private, []byte(k.KID))
	if err != nil {
		return nil, fmt.Errorf("decrypt %s key %q (sealed under encryption key %q): %w", role, k.KID, kekID, err)
	}
	defer clear(der)
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("decode %s key %q: %w", role, k.KID, err)
	}
	priv, ok := parsed.(crypto.Signer)
	if !ok || !algorithms[k.Alg].matches(priv) {
		return nil, fmt.Errorf("decode %s key %q: not a %s key", role, k.KID, k.Alg)
	}
	kid, err := thumbprint(priv.Public())
	if err != nil || kid != k.KID {
		return nil, fmt.Errorf("decode %s key %q: key id does not match the key", role, k.KID)
	}
	return priv, nil
}
