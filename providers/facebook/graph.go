package facebook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/providers/upstream"
)

// Fields is what the connector reads of the user: GET /me?fields=...
const Fields = "id,name,email"

// errTokenInvalid: the Graph API refused the access token (code 190, or
// 102: expired, revoked, the password changed, the app was removed).
var errTokenInvalid = errors.New("Facebook refused the access token")

// GraphError is an error answer of the Graph API (and of its token
// endpoint): {"error":{"message","type","code","error_subcode",
// "fbtrace_id"}}.
type GraphError struct {
	// Endpoint is the path asked for, without the version ("/me",
	// "/oauth/access_token").
	Endpoint string
	Status   int
	Message  string `json:"message"`
	Type     string `json:"type"`
	Code     int    `json:"code"`
	Subcode  int    `json:"error_subcode"`
	TraceID  string `json:"fbtrace_id"`
}

func (e *GraphError) Error() string {
	msg := fmt.Sprintf("Facebook Graph API %s answered HTTP %d: %s code %d", e.Endpoint, e.Status, e.Type, e.Code)
	if e.Subcode != 0 {
		msg += fmt.Sprintf(" subcode %d", e.Subcode)
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.TraceID != "" {
		msg += " (fbtrace_id " + e.TraceID + ")"
	}
	return msg
}

// Unwrap makes errors.Is(err, errTokenInvalid) true for codes 190 and
// 102.
func (e *GraphError) Unwrap() error {
	if e.Code == 190 || e.Code == 102 {
		return errTokenInvalid
	}
	return nil
}

// transient reports a Graph API error that Facebook says to retry later:
// 1 (unknown, possibly downtime) is not among them, since the token
// endpoint also says 1 for a wrong app secret.
func (e *GraphError) transient() bool {
	return e.Status >= 500 || slices.Contains([]int{2, 4, 17, 32, 341, 613}, e.Code)
}

// ParseGraphError reads a Graph API error body; nil when body is not one.
func ParseGraphError(endpoint string, status int, body []byte) *GraphError {
	var env struct {
		Error *GraphError `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Error == nil {
		return nil
	}
	e := env.Error
	e.Endpoint, e.Status = endpoint, status
	e.Message = upstream.Clip(e.Message, 200)
	e.Type = upstream.Clip(e.Type, 64)
	e.TraceID = upstream.Clip(e.TraceID, 64)
	return e
}

// appSecretProof is HMAC-SHA256(app secret, access token), hex: Graph API
// calls carry it, which apps that "Require App Secret" demand.
func (c *Connector) appSecretProof(token string) string {
	m := hmac.New(sha256.New, []byte(c.cfg.ClientSecret))
	m.Write([]byte(token))
	return hex.EncodeToString(m.Sum(nil))
}

// me reads the user. Errors: errTokenInvalid (wrapped in a *GraphError)
// for code 190/102; a *providers.UnavailableError when Facebook cannot
// be reached or says to retry later; others as they are.
func (c *Connector) me(ctx context.Context, token string) (map[string]any, error) {
	q := url.Values{"fields": {Fields}, "appsecret_proof": {c.appSecretProof(token)}}
	target := c.cfg.GraphURL + "/" + c.cfg.GraphAPIVersion + "/me?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, fmt.Errorf("facebook: /me request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	resp, err := c.Client.HTTP.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			// The query holds appsecret_proof: keep it out of errors and logs.
			ue.URL, _, _ = strings.Cut(ue.URL, "?")
		}
		return nil, c.Client.Unavailable(fmt.Errorf("Graph API /me: %w", err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		ge := ParseGraphError("/me", resp.StatusCode, body)
		if ge == nil {
			se := &upstream.StatusError{Endpoint: "Graph API /me", Status: resp.StatusCode}
			if upstream.IsUnavailable(se) {
				return nil, c.Client.Unavailable(se)
			}
			return nil, fmt.Errorf("facebook: %w", se)
		}
		if ge.transient() {
			return nil, c.Client.Unavailable(ge)
		}
		return nil, fmt.Errorf("facebook: %w", ge)
	}
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	var out map[string]any
	if err := dec.Decode(&out); err != nil {
		if upstream.IsUnavailable(err) {
			return nil, c.Client.Unavailable(fmt.Errorf("Graph API /me: read: %w", err))
		}
		return nil, fmt.Errorf("facebook: Graph API /me: decode: %w", err)
	}
	if out == nil {
		return nil, errors.New("facebook: Graph API /me: not a JSON object")
	}
	return out, nil
}

// classifyTokenError reads the token endpoint's Graph errors: code 100
// (the code was used, expired, or does not match the redirect URI or the
// PKCE verifier) and 190 are refused (refused: ErrInvalidCallback);
// Facebook's retry-later codes and 5xx are unavailable; the rest (1: the
// app secret is wrong, 101: the app id is) are server errors.
func (c *Connector) classifyTokenError(op string, err error, refused error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		if ge := ParseGraphError("/oauth/access_token", re.Response.StatusCode, re.Body); ge != nil {
			switch {
			case ge.transient():
				return c.Client.Unavailable(fmt.Errorf("%s: %w", op, ge))
			case ge.Code == 100 || ge.Code == 190:
				return fmt.Errorf("%s: %w: %w", op, refused, ge)
			default:
				return fmt.Errorf("%s: %w", op, ge)
			}
		}
	}
	return c.Client.ClassifyTokenError(op, err, refused)
}
