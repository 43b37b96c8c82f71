package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// ErrUserinfoRefused: the userinfo endpoint answered 401 or 403 to the
// access token (during a refresh: the upstream no longer vouches for the
// user).
var ErrUserinfoRefused = errors.New("userinfo refused the access token")

// Userinfo reads a JSON userinfo document with the bearer accessToken.
// Numbers are kept as json.Number (a numeric user id keeps its digits).
// Errors: ErrUserinfoRefused (wrapped) for 401/403, a
// *providers.UnavailableError when the upstream could not be reached or
// answered 5xx/429, other errors as they are.
func (c *Client) Userinfo(ctx context.Context, endpoint, accessToken string) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return nil, fmt.Errorf("userinfo request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, c.Unavailable(fmt.Errorf("userinfo: %w", err))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, fmt.Errorf("%w (HTTP %d)", ErrUserinfoRefused, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		se := &StatusError{Endpoint: "userinfo", Status: resp.StatusCode}
		if IsUnavailable(se) {
			return nil, c.Unavailable(se)
		}
		return nil, se
	}
	if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/jwt") {
		return nil, errors.New("userinfo: signed responses (application/jwt) are not supported")
	}
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	var out map[string]any
	if err := dec.Decode(&out); err != nil {
		if IsUnavailable(err) {
			return nil, c.Unavailable(fmt.Errorf("userinfo: read: %w", err))
		}
		return nil, fmt.Errorf("userinfo: decode: %w", err)
	}
	if out == nil {
		return nil, errors.New("userinfo: not a JSON object")
	}
	return out, nil
}
