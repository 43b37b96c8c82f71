package upstream

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/latchkeyid/latchkey/providers"
)

// accessTokenData is what a connector without upstream refresh tokens
// keeps in Identity.ConnectorData: the access token it re-checks the user
// with (GitHub OAuth apps, Facebook).
type accessTokenData struct {
	// AccessToken is sealed.
	AccessToken string `json:"accessToken,omitempty"`
	// Expiry is when the upstream said the token expires (Unix seconds);
	// 0 means it did not say.
	Expiry int64 `json:"accessTokenExpiry,omitempty"`
}

func accessAD(connectorID, subject string) []byte {
	return []byte("latchkey/upstream-access-token\x00" + connectorID + "\x00" + subject)
}

// SealAccessToken returns the ConnectorData holding accessToken sealed
// under s, bound to the connector and the subject, with its expiry (zero:
// unknown). For upstreams that issue no refresh tokens, where the access
// token is what Refresh re-checks the user with. An empty accessToken
// yields nil.
func SealAccessToken(s providers.Sealer, connectorID, subject, accessToken string, expiry time.Time) ([]byte, error) {
	if accessToken == "" {
		return nil, nil
	}
	sealed, err := s.Seal([]byte(accessToken), accessAD(connectorID, subject))
	if err != nil {
		return nil, fmt.Errorf("seal upstream access token: %w", err)
	}
	d := accessTokenData{AccessToken: sealed}
	if !expiry.IsZero() {
		d.Expiry = expiry.Unix()
	}
	out, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("encode connector data: %w", err)
	}
	return out, nil
}

// OpenAccessToken reads back what SealAccessToken made: the token ("" when
// data holds none) and its expiry (zero when unknown).
func OpenAccessToken(s providers.Sealer, connectorID, subject string, data []byte) (string, time.Time, error) {
	if len(data) == 0 {
		return "", time.Time{}, nil
	}
	var d accessTokenData
	if err := json.Unmarshal(data, &d); err != nil {
		return "", time.Time{}, fmt.Errorf("decode connector data: %w", err)
	}
	if d.AccessToken == "" {
		return "", time.Time{}, nil
	}
	at, err := s.Open(d.AccessToken, accessAD(connectorID, subject))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("open upstream access token: %w", err)
	}
	var exp time.Time
	if d.Expiry != 0 {
		exp = time.Unix(d.Expiry, 0)
	}
	return string(at), exp, nil
}
