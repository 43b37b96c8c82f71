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
)

// TypeLogoutToken is the typ of a back-channel logout token (OpenID
// Connect Back-Channel Logout 1.0 §2.4, explicit typing).
const TypeLogoutToken = "logout+jwt"

// BackchannelLogoutEvent is the member of a logout token's events claim.
const BackchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// LogoutTokenTTL is how long a logout token is valid: long enough for the
// delivery retries, short enough that a captured one is soon useless.
const LogoutTokenTTL = 2 * time.Minute

// Logout names the session a logout token ends, for one client.
type Logout struct {
	// ClientID is the aud. Required.
	ClientID string
	// Alg is the client's id_token_signed_response_alg; default RS256.
	Alg string
	// Subject is the user (sub) and SID the session (sid); both are
	// always sent, which satisfies backchannel_logout_session_required
	// either way.
	Subject, SID string
}

// logoutTokenClaims is the payload of a logout token (§2.4). It never
// has a nonce.
type logoutTokenClaims struct {
	Issuer    string                     `json:"iss"`
	Audience  audience                   `json:"aud"`
	IssuedAt  int64                      `json:"iat"`
	Expiry    int64                      `json:"exp"`
	JTI       string                     `json:"jti"`
	Events    map[string]json.RawMessage `json:"events"`
	Subject   string                     `json:"sub,omitempty"`
	SessionID string                     `json:"sid,omitempty"`
}

// LogoutToken returns a signed back-channel logout token for l, and its
// jti.
func (i *Issuer) LogoutToken(ctx context.Context, l Logout) (string, string, error) {
	if l.ClientID == "" || (l.Subject == "" && l.SID == "") {
		return "", "", errors.New("issue logout token: client id and a subject or sid are required")
	}
	alg := l.Alg
	if alg == "" {
		alg = DefaultIDTokenAlg
	}
	if !supportedAlg(alg) {
		return "", "", fmt.Errorf("issue logout token for client %q: algorithm %q is not supported", l.ClientID, alg)
	}
	jti, err := i.newJTI()
	if err != nil {
		return "", "", fmt.Errorf("issue logout token: %w", err)
	}
	now := i.clock.Now()
	c := logoutTokenClaims{
		Issuer: i.issuer, Audience: audience{l.ClientID}, IssuedAt: now.Unix(), Expiry: now.Add(LogoutTokenTTL).Unix(),
		JTI: jti, Events: map[string]json.RawMessage{BackchannelLogoutEvent: json.RawMessage(`{}`)},
		Subject: l.Subject, SessionID: l.SID,
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", "", fmt.Errorf("issue logout token: encode claims: %w", err)
	}
	tok, err := i.signer.Sign(alg, payload, TypeLogoutToken)
	if err != nil {
		return "", "", fmt.Errorf("issue logout token for client %q: %w", l.ClientID, err)
	}
	return tok, jti, nil
}

// IDTokenHint is what an id_token_hint tells about the session to end.
type IDTokenHint struct {
	Subject   string
	Audience  []string
	AZP       string
	SID       string
	ExpiresAt time.Time
}

// ErrInvalidHint is wrapped by every error of VerifyIDTokenHint.
var ErrInvalidHint = errors.New("token: invalid id_token_hint")

// VerifyIDTokenHint checks an ID token Latchkey issued, presented as
// id_token_hint (RP-Initiated Logout 1.0 §2): its shape, a protected
// header with only alg, kid and typ (JWT or none), an algorithm Latchkey
// signs with, the signature against the published keys, iss equal to
// ours, and sub and aud present. An expired token is accepted: it only
// identifies the session (§2, "the OP SHOULD accept ID Tokens ... when
// ... expired"). A token whose key has left the JWKS no longer verifies.
func (i *Issuer) VerifyIDTokenHint(ctx context.Context, raw string) (IDTokenHint, error) {
	switch {
	case raw == "":
		return IDTokenHint{}, fmt.Errorf("%w: empty", ErrInvalidHint)
	case len(raw) > maxTokenSize:
		return IDTokenHint{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalidHint, maxTokenSize)
	}
	alg, typ, err := compactHeader(raw)
	if err != nil {
		return IDTokenHint{}, fmt.Errorf("%w: %w", ErrInvalidHint, err)
	}
	if !supportedAlg(alg) {
		return IDTokenHint{}, fmt.Errorf("%w: header alg is not one Latchkey signs with", ErrInvalidHint)
	}
	if typ != "" && !strings.EqualFold(typ, TypeIDToken) {
		return IDTokenHint{}, fmt.Errorf("%w: header typ is not JWT", ErrInvalidHint)
	}
	payload, _, err := i.signer.Verify(raw)
	if err != nil {
		return IDTokenHint{}, fmt.Errorf("%w: signature: %w", ErrInvalidHint, err)
	}
	var c idTokenClaims
	if err := json.NewDecoder(bytes.NewReader(payload)).Decode(&c); err != nil {
		return IDTokenHint{}, fmt.Errorf("%w: claims are not a JSON object of the expected types", ErrInvalidHint)
	}
	switch {
	case c.Issuer != i.issuer:
		return IDTokenHint{}, fmt.Errorf("%w: iss is not this issuer", ErrInvalidHint)
	case c.Subject == "":
		return IDTokenHint{}, fmt.Errorf("%w: no sub", ErrInvalidHint)
	case len(c.Audience) == 0:
		return IDTokenHint{}, fmt.Errorf("%w: no aud", ErrInvalidHint)
	}
	return IDTokenHint{Subject: c.Subject, Audience: c.Audience, AZP: c.AZP, SID: c.SessionID,
		ExpiresAt: time.Unix(c.Expiry, 0).UTC()}, nil
}

// compactHeader decodes the protected header of a compact JWS, which may
// hold only alg, kid and typ, all strings.
func compactHeader(raw string) (alg, typ string, err error) {
	head, rest, ok := strings.Cut(raw, ".")
	if !ok || strings.Count(rest, ".") != 1 {
		return "", "", errors.New("not a compact JWS (three dot-separated parts)")
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return "", "", errors.New("header is not base64url")
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(b, &members); err != nil {
		return "", "", errors.New("header is not a JSON object")
	}
	var kid string
	for name, v := range members {
		var dst *string
		switch name {
		case "alg":
			dst = &alg
		case "kid":
			dst = &kid
		case "typ":
			dst = &typ
		default:
			return "", "", errors.New("header has a member other than alg, kid and typ")
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return "", "", errors.New("header member is not a string")
		}
	}
	return alg, typ, nil
}
