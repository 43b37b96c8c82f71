package token

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchkeyid/latchkey/broker/oauth2"
)

// ErrInvalidToken is wrapped by every error of VerifyAccessToken.
var ErrInvalidToken = errors.New("token: invalid access token")

// maxTokenSize bounds what VerifyAccessToken parses.
const maxTokenSize = 64 << 10

// AccessClaims are the claims of a verified access token.
type AccessClaims struct {
	Subject   string
	ClientID  string
	Audience  []string
	Scopes    []string
	JTI       string
	IssuedAt  time.Time
	ExpiresAt time.Time
	AuthTime  time.Time // zero when the token has none
	SID       string
	ACR       string
	AMR       []string
	// UserinfoClaims: claims the client asked /userinfo to release
	// through the claims request parameter.
	UserinfoClaims []string
}

// VerifyAccessToken checks an access token Latchkey issued: its size and
// shape, a protected header with typ at+jwt (or application/at+jwt, case
// insensitive) and an alg Latchkey signs with (RS256, ES256, EdDSA; never
// none or HMAC), the signature (Signer.Verify), iss equal to ours, exp
// after now with no leeway, and the presence of sub, client_id and jti. It
// does not check aud.
//
// Every error is an *oauth2.Error with code invalid_token whose cause
// wraps ErrInvalidToken; the reason names what failed, never token content.
func (i *Issuer) VerifyAccessToken(ctx context.Context, token string) (AccessClaims, error) {
	c, err := i.verifyAccessToken(token)
	if err != nil {
		desc := "the access token is not valid"
		if errors.Is(err, errExpired) {
			desc = "the access token expired"
		}
		return AccessClaims{}, oauth2.ErrInvalidToken(desc, err)
	}
	return c, nil
}

// errExpired marks the expiry reason so VerifyAccessToken can say so.
var errExpired = errors.New("expired")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidToken}, args...)...)
}

func (i *Issuer) verifyAccessToken(token string) (AccessClaims, error) {
	switch {
	case token == "":
		return AccessClaims{}, invalid("empty")
	case len(token) > maxTokenSize:
		return AccessClaims{}, invalid("longer than %d bytes", maxTokenSize)
	}
	// Check the header before the signature, so an alg of none or HS256
	// is refused here whatever the Signer would do with it.
	if err := precheckHeader(token); err != nil {
		return AccessClaims{}, err
	}
	payload, h, err := i.signer.Verify(token)
	if err != nil {
		return AccessClaims{}, fmt.Errorf("%w: signature: %w", ErrInvalidToken, err)
	}
	if err := checkHeader(h.Algorithm, headerType(h)); err != nil {
		return AccessClaims{}, err
	}
	var c accessTokenClaims
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&c); err != nil {
		return AccessClaims{}, invalid("claims are not a JSON object of the expected types")
	}
	switch {
	case c.Issuer != i.issuer:
		return AccessClaims{}, invalid("iss is not this issuer")
	case c.Expiry == 0:
		return AccessClaims{}, invalid("no exp")
	case !i.clock.Now().Before(time.Unix(c.Expiry, 0)):
		return AccessClaims{}, fmt.Errorf("%w: %w at %s", ErrInvalidToken, errExpired, time.Unix(c.Expiry, 0).UTC().Format(time.RFC3339))
	case c.Subject == "":
		return AccessClaims{}, invalid("no sub")
	case c.ClientID == "":
		return AccessClaims{}, invalid("no client_id")
	case c.JTI == "":
		return AccessClaims{}, invalid("no jti")
	}
	out := AccessClaims{
		Subject:        c.Subject,
		ClientID:       c.ClientID,
		Audience:       c.Audience,
		JTI:            c.JTI,
		IssuedAt:       time.Unix(c.IssuedAt, 0).UTC(),
		ExpiresAt:      time.Unix(c.Expiry, 0).UTC(),
		SID:            c.SessionID,
		ACR:            c.ACR,
		AMR:            c.AMR,
		UserinfoClaims: c.UserinfoClaims,
	}
	if c.Scope != "" {
		out.Scopes = strings.Fields(c.Scope)
	}
	if c.AuthTime != 0 {
		out.AuthTime = time.Unix(c.AuthTime, 0).UTC()
	}
	return out, nil
}

// precheckHeader decodes the protected header of a compact JWS and checks
// alg and typ. Latchkey's headers hold exactly alg, kid and typ, all
// strings; any other member (jku, x5u, crit, ...) is refused here, which
// also keeps header values out of the Signer's error messages.
func precheckHeader(token string) error {
	head, rest, ok := strings.Cut(token, ".")
	if !ok || strings.Count(rest, ".") != 1 {
		return invalid("not a compact JWS (three dot-separated parts)")
	}
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return invalid("header is not base64url")
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return invalid("header is not a JSON object")
	}
	var h [3]string // alg, kid, typ
	for name, v := range members {
		var idx int
		switch name {
		case "alg":
			idx = 0
		case "kid":
			idx = 1
		case "typ":
			idx = 2
		default:
			return invalid("header has a member other than alg, kid and typ")
		}
		if err := json.Unmarshal(v, &h[idx]); err != nil {
			return invalid("header member is not a string")
		}
	}
	return checkHeader(h[0], h[2])
}

func checkHeader(alg, typ string) error {
	if !supportedAlg(alg) {
		return invalid("header alg is not one Latchkey signs with")
	}
	if !strings.EqualFold(typ, TypeAccessToken) && !strings.EqualFold(typ, "application/"+TypeAccessToken) {
		return invalid("header typ is not at+jwt")
	}
	return nil
}

func headerType(h jose.Header) string {
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	return typ
}
