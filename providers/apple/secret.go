package apple

import (
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchkeyid/latchkey/internal/clock"
)

// clientSecret makes and caches the client secret: an ES256 JWT signed
// with the .p8 key, header kid = the key id, claims iss = the team id,
// sub = the Services ID, aud = https://appleid.apple.com, iat and exp =
// iat + the lifetime. A secret is reused until less than a quarter of its
// lifetime is left, then replaced.
type clientSecret struct {
	teamID, clientID, keyID string
	key                     *ecdsa.PrivateKey
	ttl                     time.Duration
	clock                   clock.Clock

	mu     sync.Mutex
	jwt    string
	expiry time.Time
}

// get returns a client secret valid for at least a quarter of its
// lifetime.
func (s *clientSecret) get() (string, error) {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jwt != "" && now.Before(s.expiry.Add(-s.ttl/4)) {
		return s.jwt, nil
	}
	iat := now.Truncate(time.Second)
	exp := iat.Add(s.ttl)
	payload, err := json.Marshal(map[string]any{
		"iss": s.teamID,
		"sub": s.clientID,
		"aud": Issuer,
		"iat": iat.Unix(),
		"exp": exp.Unix(),
	})
	if err != nil {
		return "", fmt.Errorf("apple: client secret claims: %w", err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: s.key, KeyID: s.keyID}}, nil)
	if err != nil {
		return "", fmt.Errorf("apple: client secret signer: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("apple: sign the client secret: %w", err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("apple: serialize the client secret: %w", err)
	}
	s.jwt, s.expiry = out, exp
	return out, nil
}
