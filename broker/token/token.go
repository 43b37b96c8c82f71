package token

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchkeyid/latchkey/internal/clock"
)

// Signer signs and verifies compact JWS with Latchkey's keys;
// broker/keys.Manager satisfies it.
type Signer interface {
	// Sign returns payload as a compact JWS signed with the current key for
	// alg, with kid and, unless typ is empty, typ in the protected header.
	Sign(alg string, payload []byte, typ string) (string, error)
	// Verify checks the signature of a token signed by Sign against the
	// published keys and returns its payload and protected header.
	Verify(token string) ([]byte, jose.Header, error)
}

// algorithmLister is what a Signer may offer so New can check that
// AccessTokenAlg has a key; broker/keys.Manager has it.
type algorithmLister interface {
	Algorithms() []string
}

// The JWS algorithms Latchkey signs with (broker/keys). These alone are
// accepted by VerifyAccessToken.
const (
	RS256 = "RS256"
	ES256 = "ES256"
	EdDSA = "EdDSA"
)

// Header typ values.
const (
	TypeAccessToken = "at+jwt" // RFC 9068 §2.1
	TypeIDToken     = "JWT"
)

// Defaults for Options.
const (
	DefaultIDTokenTTL     = time.Hour
	DefaultAccessTokenTTL = time.Hour
	DefaultAccessTokenAlg = ES256
	DefaultIDTokenAlg     = RS256 // OIDC Core's default id_token_signed_response_alg
)

// supportedAlg reports whether Latchkey signs with alg.
func supportedAlg(alg string) bool {
	switch alg {
	case RS256, ES256, EdDSA:
		return true
	}
	return false
}

// Options configure an Issuer.
type Options struct {
	// Issuer is the iss of every token: an absolute http(s) URL without
	// query or fragment. Required.
	Issuer string
	// Signer signs and verifies. Required.
	Signer Signer
	// IDTokenTTL and AccessTokenTTL are the token lifetimes; default one
	// hour each. The signing keys' RetireAfter must cover the longer one.
	IDTokenTTL, AccessTokenTTL time.Duration
	// AccessTokenAlg signs access tokens; default ES256.
	AccessTokenAlg string
	// Clock; default clock.Real.
	Clock clock.Clock
	// Rand is the source of jti values; default crypto/rand.
	Rand io.Reader
}

// Issuer builds, signs and verifies tokens. It is safe for concurrent use
// if Rand is (crypto/rand is).
type Issuer struct {
	issuer         string
	signer         Signer
	idTTL, atTTL   time.Duration
	accessTokenAlg string
	clock          clock.Clock
	rand           io.Reader
}

// New checks o, applies the defaults and returns an Issuer.
func New(o Options) (*Issuer, error) {
	if err := checkIssuer(o.Issuer); err != nil {
		return nil, err
	}
	if o.Signer == nil {
		return nil, errors.New("token: Signer is required")
	}
	if o.IDTokenTTL < 0 || o.AccessTokenTTL < 0 {
		return nil, errors.New("token: token lifetimes must not be negative")
	}
	if o.IDTokenTTL == 0 {
		o.IDTokenTTL = DefaultIDTokenTTL
	}
	if o.AccessTokenTTL == 0 {
		o.AccessTokenTTL = DefaultAccessTokenTTL
	}
	if o.AccessTokenAlg == "" {
		o.AccessTokenAlg = DefaultAccessTokenAlg
	}
	if !supportedAlg(o.AccessTokenAlg) {
		return nil, fmt.Errorf("token: access token algorithm %q is not supported (RS256, ES256, EdDSA)", o.AccessTokenAlg)
	}
	if l, ok := o.Signer.(algorithmLister); ok && !slices.Contains(l.Algorithms(), o.AccessTokenAlg) {
		return nil, fmt.Errorf("token: access token algorithm %s has no signing key (keys are kept for %s)",
			o.AccessTokenAlg, strings.Join(l.Algorithms(), ", "))
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	return &Issuer{
		issuer:         o.Issuer,
		signer:         o.Signer,
		idTTL:          o.IDTokenTTL,
		atTTL:          o.AccessTokenTTL,
		accessTokenAlg: o.AccessTokenAlg,
		clock:          o.Clock,
		rand:           o.Rand,
	}, nil
}

func checkIssuer(iss string) error {
	if iss == "" {
		return errors.New("token: Issuer is required")
	}
	u, err := url.Parse(iss)
	if err != nil {
		return fmt.Errorf("token: issuer %q: %w", iss, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("token: issuer %q must be an absolute http(s) URL without user info, query or fragment", iss)
	}
	return nil
}

// Issuer returns the iss value.
func (i *Issuer) Issuer() string { return i.issuer }

// Subject is the signed-in user as tokens describe it.
type Subject struct {
	UserID        string // sub; required
	Username      string // preferred_username
	Name          string
	Email         string
	EmailVerified bool
	Groups        []string
}

// Grant is what the user granted the client, and how they authenticated.
type Grant struct {
	// ClientID is the client the tokens are for. Required.
	ClientID string
	// Audience is the access token's aud; empty means the issuer
	// (CONTRACTS.md, client key audience).
	Audience []string
	// Scopes granted (broker/oauth2.FilterScopes).
	Scopes []string
	// Nonce from the authorization request; omitted when empty.
	Nonce string
	// AuthTime is when the user authenticated; omitted when zero.
	AuthTime time.Time
	// AMR lists the factors (CONTRACTS.md); omitted when empty.
	AMR []string
	// ACR is the level reached; empty means ACRFor(AMR).
	ACR string
	// SID is the public id of the SSO session; omitted when empty.
	SID string
	// IDTokenAlg is the client's id_token_signed_response_alg; default
	// RS256.
	IDTokenAlg string
	// Claims is the OIDC claims request parameter (a JSON object), or
	// empty.
	Claims json.RawMessage
}

func (g Grant) acr() string {
	if g.ACR != "" {
		return g.ACR
	}
	return ACRFor(g.AMR)
}

func (g Grant) check() error {
	if g.ClientID == "" {
		return errors.New("grant has no client id")
	}
	return nil
}

// accessTokenClaims is the payload of an RFC 9068 access token.
type accessTokenClaims struct {
	Issuer    string   `json:"iss"`
	Expiry    int64    `json:"exp"`
	Audience  audience `json:"aud"`
	Subject   string   `json:"sub"`
	ClientID  string   `json:"client_id"`
	IssuedAt  int64    `json:"iat"`
	JTI       string   `json:"jti"`
	Scope     string   `json:"scope,omitempty"`
	AuthTime  int64    `json:"auth_time,omitempty"`
	ACR       string   `json:"acr,omitempty"`
	AMR       []string `json:"amr,omitempty"`
	SessionID string   `json:"sid,omitempty"`
	Groups    []string `json:"groups,omitempty"`
	// UserinfoClaims are the claims the `claims` request parameter's
	// userinfo member asked for (OIDC Core §5.5): /userinfo releases them
	// even without their scope.
	UserinfoClaims []string `json:"userinfo_claims,omitempty"`
}

// idTokenClaims is the payload of an ID token.
type idTokenClaims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  audience `json:"aud"`
	AZP       string   `json:"azp"`
	Expiry    int64    `json:"exp"`
	IssuedAt  int64    `json:"iat"`
	AuthTime  int64    `json:"auth_time,omitempty"`
	Nonce     string   `json:"nonce,omitempty"`
	ACR       string   `json:"acr,omitempty"`
	AMR       []string `json:"amr,omitempty"`
	SessionID string   `json:"sid,omitempty"`
	ATHash    string   `json:"at_hash,omitempty"`
	profileClaims
}

// AccessToken returns an RFC 9068 JWT access token for s under g, signed
// with Options.AccessTokenAlg, with its jti and expiry.
func (i *Issuer) AccessToken(ctx context.Context, s Subject, g Grant) (token, jti string, expiresAt time.Time, err error) {
	if s.UserID == "" {
		return "", "", time.Time{}, errors.New("issue access token: subject has no user id")
	}
	if err := g.check(); err != nil {
		return "", "", time.Time{}, fmt.Errorf("issue access token: %w", err)
	}
	jti, err = i.newJTI()
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("issue access token: %w", err)
	}
	now := i.clock.Now()
	exp := now.Add(i.atTTL).Unix()
	aud := audience(g.Audience)
	if len(aud) == 0 {
		aud = audience{i.issuer}
	}
	c := accessTokenClaims{
		Issuer:    i.issuer,
		Expiry:    exp,
		Audience:  aud,
		Subject:   s.UserID,
		ClientID:  g.ClientID,
		IssuedAt:  now.Unix(),
		JTI:       jti,
		Scope:     strings.Join(g.Scopes, " "),
		AuthTime:  unixOrZero(g.AuthTime),
		ACR:       g.acr(),
		AMR:       g.AMR,
		SessionID: g.SID,
	}
	if slices.Contains(g.Scopes, ScopeGroups) {
		c.Groups = s.Groups
	}
	if names, err := claimsRequestedNames(g.Claims, "userinfo"); err == nil {
		c.UserinfoClaims = names
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("issue access token: encode claims: %w", err)
	}
	token, err = i.signer.Sign(i.accessTokenAlg, payload, TypeAccessToken)
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("issue access token for client %q: %w", g.ClientID, err)
	}
	return token, jti, time.Unix(exp, 0).UTC(), nil
}

// IDToken returns an OpenID Connect ID token for s under g, signed with
// g.IDTokenAlg (default RS256). When accessToken is not empty it is bound
// with at_hash.
func (i *Issuer) IDToken(ctx context.Context, s Subject, g Grant, accessToken string) (string, error) {
	if s.UserID == "" {
		return "", errors.New("issue ID token: subject has no user id")
	}
	if err := g.check(); err != nil {
		return "", fmt.Errorf("issue ID token: %w", err)
	}
	alg := g.IDTokenAlg
	if alg == "" {
		alg = DefaultIDTokenAlg
	}
	if !supportedAlg(alg) {
		return "", fmt.Errorf("issue ID token for client %q: algorithm %q is not supported", g.ClientID, alg)
	}
	requested, err := idTokenClaimsRequested(g.Claims)
	if err != nil {
		return "", fmt.Errorf("issue ID token for client %q: %w", g.ClientID, err)
	}
	now := i.clock.Now()
	c := idTokenClaims{
		Issuer:        i.issuer,
		Subject:       s.UserID,
		Audience:      audience{g.ClientID},
		AZP:           g.ClientID,
		Expiry:        now.Add(i.idTTL).Unix(),
		IssuedAt:      now.Unix(),
		AuthTime:      unixOrZero(g.AuthTime),
		Nonce:         g.Nonce,
		ACR:           g.acr(),
		AMR:           g.AMR,
		SessionID:     g.SID,
		profileClaims: profile(s, claimsForScopes(g.Scopes)|requested),
	}
	if accessToken != "" {
		c.ATHash = tokenHash(alg, accessToken)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("issue ID token: encode claims: %w", err)
	}
	tok, err := i.signer.Sign(alg, payload, TypeIDToken)
	if err != nil {
		return "", fmt.Errorf("issue ID token for client %q: %w", g.ClientID, err)
	}
	return tok, nil
}

// newJTI returns 128 random bits, base64url without padding.
func (i *Issuer) newJTI() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(i.rand, b[:]); err != nil {
		return "", fmt.Errorf("read random jti: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// audience is the aud claim: one value as a JSON string, several as an
// array; either form is read.
type audience []string

// MarshalJSON writes a single audience as a string.
func (a audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// UnmarshalJSON reads a string or an array of strings (null is none).
func (a *audience) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*a = nil
		return nil
	}
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("aud is neither a string nor an array of strings")
	}
	*a = many
	return nil
}
