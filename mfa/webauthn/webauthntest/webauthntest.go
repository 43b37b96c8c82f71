// Package webauthntest is a small software authenticator for tests: it
// answers the creation and request options of mfa/webauthn with the JSON
// a browser posts (attestation "none", ES256 keys), and lets a test bend
// what a browser would not: another origin or RP id, a stale counter.
package webauthntest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
)

// Flag bits of authenticator data.
const (
	flagUP = 0x01
	flagUV = 0x04
	flagBE = 0x08
	flagBS = 0x10
	flagAT = 0x40
)

// Authenticator is a software authenticator. Its exported fields may be
// changed between ceremonies.
type Authenticator struct {
	// Origin goes into clientDataJSON; RPID is hashed into the
	// authenticator data (empty: the options' RP id).
	Origin string
	RPID   string
	// AAGUID names the authenticator model.
	AAGUID [16]byte
	// UV: the user is verified; BackupEligible: a synced passkey;
	// Resident: credentials are discoverable.
	UV, BackupEligible, Resident bool
	// Counter is the signature counter; each assertion adds one first
	// (a test may set it back). NoCounter keeps it at 0.
	Counter   uint32
	NoCounter bool

	Creds []*Credential
}

// Credential is one key of the authenticator.
type Credential struct {
	ID         []byte
	Key        *ecdsa.PrivateKey
	UserHandle []byte
	RPID       string
}

// New returns an authenticator for origin with user verification and
// discoverable credentials.
func New(origin string) *Authenticator {
	return &Authenticator{Origin: origin, UV: true, Resident: true, AAGUID: [16]byte{0x6c, 0x6b}}
}

var b64 = base64.RawURLEncoding

type creationOptions struct {
	Challenge string `json:"challenge"`
	RP        struct {
		ID string `json:"id"`
	} `json:"rp"`
	User struct {
		ID string `json:"id"`
	} `json:"user"`
}

type requestOptions struct {
	Challenge string `json:"challenge"`
	RPID      string `json:"rpId"`
	Allow     []struct {
		ID string `json:"id"`
	} `json:"allowCredentials"`
}

func (a *Authenticator) clientData(typ, challenge string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": a.Origin, "crossOrigin": false})
	return b
}

func (a *Authenticator) flags() byte {
	f := byte(flagUP)
	if a.UV {
		f |= flagUV
	}
	if a.BackupEligible {
		f |= flagBE | flagBS
	}
	return f
}

func (a *Authenticator) rpIDHash(rpID string) []byte {
	if a.RPID != "" {
		rpID = a.RPID
	}
	h := sha256.Sum256([]byte(rpID))
	return h[:]
}

// Create answers creation options (the JSON mfa/webauthn gives the
// browser) with a registration response.
func (a *Authenticator) Create(options []byte) (string, error) {
	var o creationOptions
	if err := json.Unmarshal(options, &o); err != nil {
		return "", fmt.Errorf("creation options: %w", err)
	}
	user, err := b64.DecodeString(o.User.ID)
	if err != nil {
		return "", fmt.Errorf("user id: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	id := make([]byte, 32)
	if _, err := rand.Read(id); err != nil {
		return "", err
	}
	c := &Credential{ID: id, Key: key, UserHandle: user, RPID: o.RP.ID}
	pub, err := key.PublicKey.ECDH()
	if err != nil {
		return "", err
	}
	raw := pub.Bytes() // 0x04 || X || Y
	cose, err := webauthncbor.Marshal(webauthncose.EC2PublicKeyData{
		PublicKeyData: webauthncose.PublicKeyData{KeyType: int64(webauthncose.EllipticKey), Algorithm: int64(webauthncose.AlgES256)},
		Curve:         1, XCoord: raw[1:33], YCoord: raw[33:],
	})
	if err != nil {
		return "", err
	}
	auth := append([]byte{}, a.rpIDHash(o.RP.ID)...)
	auth = append(auth, a.flags()|flagAT)
	auth = binary.BigEndian.AppendUint32(auth, 0)
	auth = append(auth, a.AAGUID[:]...)
	auth = binary.BigEndian.AppendUint16(auth, uint16(len(id)))
	auth = append(auth, id...)
	auth = append(auth, cose...)
	att, err := webauthncbor.Marshal(struct {
		Fmt      string         `cbor:"fmt"`
		AttStmt  map[string]any `cbor:"attStmt"`
		AuthData []byte         `cbor:"authData"`
	}{"none", map[string]any{}, auth})
	if err != nil {
		return "", err
	}
	a.Creds = append(a.Creds, c)
	out, err := json.Marshal(map[string]any{
		"id": b64.EncodeToString(id), "rawId": b64.EncodeToString(id), "type": "public-key",
		"authenticatorAttachment": "platform",
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(a.clientData("webauthn.create", o.Challenge)),
			"attestationObject": b64.EncodeToString(att),
			"transports":        []string{"internal"},
		},
		"clientExtensionResults": map[string]any{"credProps": map[string]any{"rk": a.Resident}},
	})
	return string(out), err
}

// Get answers request options with an assertion by the first credential
// the options allow (any of this RP's when they list none).
func (a *Authenticator) Get(options []byte) (string, error) {
	var o requestOptions
	if err := json.Unmarshal(options, &o); err != nil {
		return "", fmt.Errorf("request options: %w", err)
	}
	var c *Credential
	for _, cand := range a.Creds {
		if cand.RPID != o.RPID {
			continue
		}
		if len(o.Allow) == 0 && a.Resident {
			c = cand
			break
		}
		for _, al := range o.Allow {
			if al.ID == b64.EncodeToString(cand.ID) {
				c = cand
			}
		}
		if c != nil {
			break
		}
	}
	if c == nil {
		return "", errors.New("webauthntest: no credential for these options")
	}
	return a.Assert(c, o.RPID, o.Challenge)
}

// Assert signs an assertion by c for challenge (base64url).
func (a *Authenticator) Assert(c *Credential, rpID, challenge string) (string, error) {
	if !a.NoCounter {
		a.Counter++
	}
	auth := append([]byte{}, a.rpIDHash(rpID)...)
	auth = append(auth, a.flags())
	auth = binary.BigEndian.AppendUint32(auth, a.Counter)
	cd := a.clientData("webauthn.get", challenge)
	cdHash := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, auth...), cdHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, c.Key, digest[:])
	if err != nil {
		return "", err
	}
	resp := map[string]any{
		"clientDataJSON":    b64.EncodeToString(cd),
		"authenticatorData": b64.EncodeToString(auth),
		"signature":         b64.EncodeToString(sig),
	}
	if a.Resident {
		resp["userHandle"] = b64.EncodeToString(c.UserHandle)
	}
	out, err := json.Marshal(map[string]any{
		"id": b64.EncodeToString(c.ID), "rawId": b64.EncodeToString(c.ID), "type": "public-key",
		"authenticatorAttachment": "platform", "response": resp, "clientExtensionResults": map[string]any{},
	})
	return string(out), err
}
