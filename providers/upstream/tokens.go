package upstream

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/providers"
)

// connectorData is what a connector keeps in Identity.ConnectorData.
type connectorData struct {
	// RefreshToken is the upstream refresh token, sealed.
	RefreshToken string `json:"refreshToken,omitempty"`
}

func refreshAD(connectorID, subject string) []byte {
	return []byte("latchkey/upstream-refresh-token\x00" + connectorID + "\x00" + subject)
}

// SealRefreshToken returns the ConnectorData holding refreshToken sealed
// under s, bound to the connector and the subject (a ConnectorData copied
// to another identity does not open). An empty refreshToken yields nil.
func SealRefreshToken(s providers.Sealer, connectorID, subject, refreshToken string) ([]byte, error) {
	if refreshToken == "" {
		return nil, nil
	}
	sealed, err := s.Seal([]byte(refreshToken), refreshAD(connectorID, subject))
	if err != nil {
		return nil, fmt.Errorf("seal upstream refresh token: %w", err)
	}
	out, err := json.Marshal(connectorData{RefreshToken: sealed})
	if err != nil {
		return nil, fmt.Errorf("encode connector data: %w", err)
	}
	return out, nil
}

// OpenRefreshToken reads back what SealRefreshToken made; "" when data
// holds no refresh token.
func OpenRefreshToken(s providers.Sealer, connectorID, subject string, data []byte) (string, error) {
	if len(data) == 0 {
		return "", nil
	}
	var cd connectorData
	if err := json.Unmarshal(data, &cd); err != nil {
		return "", fmt.Errorf("decode connector data: %w", err)
	}
	if cd.RefreshToken == "" {
		return "", nil
	}
	rt, err := s.Open(cd.RefreshToken, refreshAD(connectorID, subject))
	if err != nil {
		return "", fmt.Errorf("open upstream refresh token: %w", err)
	}
	return string(rt), nil
}

// TokenEndpointError is what the token endpoint answered, without the
// response body (x/oauth2's RetrieveError prints the body, which may be a
// large upstream page).
type TokenEndpointError struct {
	Status      int
	Code        string
	Description string
}

func (e *TokenEndpointError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "token endpoint answered HTTP %d", e.Status)
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Description != "" {
		fmt.Fprintf(&b, ": %s", e.Description)
	}
	return b.String()
}

// Clip bounds a string the upstream chose (error codes and descriptions)
// before it goes into an error or a page.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

// ClassifyTokenError turns an error of x/oauth2's Exchange or refresh into
// the connector's errors:
//   - could not reach the upstream, or it answered 5xx/429: an
//     *providers.UnavailableError;
//   - an OAuth error answer: a *TokenEndpointError wrapped with
//     refused (providers.ErrInvalidCallback for a code,
//     providers.ErrUpstreamUserGone for a refresh token) when the code is
//     invalid_grant, else wrapped as a plain (server) error;
//   - anything else wrapped as is.
func (c *Client) ClassifyTokenError(op string, err error, refused error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		te := &TokenEndpointError{Code: Clip(re.ErrorCode, 64), Description: Clip(re.ErrorDescription, 200)}
		if re.Response != nil {
			te.Status = re.Response.StatusCode
		}
		if IsUnavailable(err) {
			return c.Unavailable(fmt.Errorf("%s: %w", op, te))
		}
		if re.ErrorCode == "invalid_grant" {
			return fmt.Errorf("%s: %w: %w", op, refused, te)
		}
		return fmt.Errorf("%s: %w", op, te)
	}
	if IsUnavailable(err) {
		return c.Unavailable(fmt.Errorf("%s: %w", op, err))
	}
	return fmt.Errorf("%s: %w", op, err)
}
