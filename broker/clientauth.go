package broker

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/latchkeyid/latchkey/broker/oauth2"
	"github.com/latchkeyid/latchkey/storage"
)

// ClientCredentials is what a request to the token, introspection or
// revocation endpoint carried to authenticate the client: HTTP Basic
// (already form-urlencoding-decoded by the caller, RFC 6749 §2.3.1)
// and/or form parameters. A client assertion (private_key_jwt) is read
// from the form by the broker.
type ClientCredentials struct {
	Basic        bool
	BasicID      string
	BasicSecret  string
	FormID       string
	FormSecret   string
	FormSecretOK bool // client_secret was present in the form
}

// Client authentication methods (RFC 7591 token_endpoint_auth_method).
const (
	AuthMethodBasic         = "client_secret_basic"
	AuthMethodPost          = "client_secret_post"
	AuthMethodPrivateKeyJWT = "private_key_jwt"
	AuthMethodNone          = "none"
)

// ClientAssertionType is the only client_assertion_type (RFC 7523 §2.2).
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// AssertionAlgs are the algorithms a client assertion may be signed with:
// asymmetric only, so never none or HS256 (a client_secret_jwt, or an
// HMAC keyed with a public key).
var AssertionAlgs = []string{"RS256", "PS256", "ES256", "EdDSA"}

// Client assertion limits.
const (
	// maxAssertionLifetime: exp may be at most this far ahead.
	maxAssertionLifetime = 5 * time.Minute
	// assertionLeeway is the clock skew allowed on exp, nbf and iat.
	assertionLeeway = 30 * time.Second
	// maxAssertionBytes bounds what is parsed.
	maxAssertionBytes = 16 << 10
	// jwksRefetchAfter: a kid missing from a cached jwks_uri document
	// fetches it again, at most this often.
	jwksRefetchAfter = 30 * time.Second
)

// authenticateClient implements client_secret_basic, client_secret_post,
// private_key_jwt and none (public clients), per the client's
// token_endpoint_auth_method (CONTRACTS.md: unset accepts basic and post).
// endpoint is the path the request came to (PathToken, PathIntrospect,
// PathRevoke): its URL is an accepted assertion audience. It returns the
// client and the method it used.
func (b *Broker) authenticateClient(ctx context.Context, cc ClientCredentials, form url.Values, endpoint string) (storage.Client, string, *oauth2.Error) {
	// A code is single use: its exchange reads the client from the store,
	// not the client cache, so that a durable-store outage refuses it (503)
	// before the code is taken, as without the cache.
	cached := endpoint != PathToken || form.Get("grant_type") != oauth2.GrantTypeAuthorizationCode
	assertionType, assertion := form.Get("client_assertion_type"), form.Get("client_assertion")
	if assertionType != "" || assertion != "" {
		if cc.Basic || cc.FormSecretOK {
			return storage.Client{}, "", oauth2.ErrInvalidRequest("use only one client authentication method", nil)
		}
		formID := cc.FormID
		if formID == "" {
			formID = form.Get("client_id")
		}
		c, oerr := b.authenticateAssertion(ctx, formID, assertionType, assertion, endpoint, cached)
		return c, AuthMethodPrivateKeyJWT, oerr
	}
	var id, secret, method string
	switch {
	case cc.Basic && (cc.FormSecretOK || (cc.FormID != "" && cc.FormID != cc.BasicID)):
		return storage.Client{}, "", oauth2.ErrInvalidRequest("use only one client authentication method", nil)
	case cc.Basic:
		id, secret, method = cc.BasicID, cc.BasicSecret, AuthMethodBasic
	case cc.FormSecretOK:
		id, secret, method = cc.FormID, cc.FormSecret, AuthMethodPost
	case cc.FormID != "":
		id, method = cc.FormID, AuthMethodNone
	default:
		return storage.Client{}, "", oauth2.ErrInvalidClient("client authentication is required", nil)
	}
	client, oerr := b.loadAuthClient(ctx, id, method, cached)
	if oerr != nil {
		return storage.Client{}, "", oerr
	}
	if method == AuthMethodNone {
		return client, method, nil
	}
	if client.SecretHash == "" || subtle.ConstantTimeCompare([]byte(sha256Hex(secret)), []byte(client.SecretHash)) != 1 {
		return storage.Client{}, "", oauth2.ErrInvalidClient("client authentication failed", fmt.Errorf("client %q: wrong secret", id))
	}
	return client, method, nil
}

// loadAuthClient loads an enabled client that may authenticate with
// method, through the client cache when cached.
func (b *Broker) loadAuthClient(ctx context.Context, id, method string, cached bool) (storage.Client, *oauth2.Error) {
	get := b.store.GetClient
	if cached {
		get = b.getClient
	}
	client, err := get(ctx, id)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && client.Disabled) {
		return storage.Client{}, oauth2.ErrInvalidClient("client authentication failed", fmt.Errorf("client %q unknown or disabled", id))
	}
	if err != nil {
		return storage.Client{}, oauth2.ErrServerError("", fmt.Errorf("load client %q: %w", id, err))
	}
	if !clientAllows(client, method) {
		return storage.Client{}, oauth2.ErrInvalidClient("client authentication failed", fmt.Errorf("client %q may not use %s", id, method))
	}
	return client, nil
}

func clientAllows(c storage.Client, method string) bool {
	switch {
	case c.TokenEndpointAuthMethod != "":
		return c.TokenEndpointAuthMethod == method
	case c.Public:
		return method == AuthMethodNone
	default:
		return method == AuthMethodBasic || method == AuthMethodPost
	}
}

// assertionClaims are the claims of a client assertion (RFC 7523 §3).
type assertionClaims struct {
	jwt.Claims
}

// authenticateAssertion implements private_key_jwt (RFC 7523 §2.2, §3):
// the assertion names the client in iss and sub (and client_id, when
// sent, must agree), is signed with an asymmetric algorithm by a key of
// the client's jwks or jwks_uri, is meant for us (aud is the issuer, the
// token endpoint or the endpoint called), expires within
// maxAssertionLifetime, and its jti is used once. Every failure is
// invalid_client; the reason goes to the log.
func (b *Broker) authenticateAssertion(ctx context.Context, formID, assertionType, assertion, endpoint string, cached bool) (storage.Client, *oauth2.Error) {
	fail := func(format string, args ...any) (storage.Client, *oauth2.Error) {
		return storage.Client{}, oauth2.ErrInvalidClient("client authentication failed", fmt.Errorf("client assertion: "+format, args...))
	}
	switch {
	case assertionType != ClientAssertionType:
		return fail("unsupported client_assertion_type")
	case assertion == "":
		return fail("client_assertion is missing")
	case len(assertion) > maxAssertionBytes:
		return fail("longer than %d bytes", maxAssertionBytes)
	}
	algs := make([]jose.SignatureAlgorithm, len(AssertionAlgs))
	for i, a := range AssertionAlgs {
		algs[i] = jose.SignatureAlgorithm(a)
	}
	tok, err := jwt.ParseSigned(assertion, algs)
	if err != nil {
		return fail("not a compact JWS signed with %s: %v", strings.Join(AssertionAlgs, ", "), err)
	}
	if len(tok.Headers) != 1 {
		return fail("want exactly one signature")
	}
	hdr := tok.Headers[0]
	var unverified assertionClaims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return fail("claims are not a JSON object of the expected types")
	}
	id := unverified.Subject
	switch {
	case id == "":
		return fail("no sub")
	case unverified.Issuer != id:
		return fail("iss is not sub")
	case formID != "" && formID != id:
		return fail("client_id does not match the assertion's sub")
	}
	client, oerr := b.loadAuthClient(ctx, id, AuthMethodPrivateKeyJWT, cached)
	if oerr != nil {
		return storage.Client{}, oerr
	}
	var claims assertionClaims
	if err := b.verifyAssertion(ctx, client, tok, hdr, &claims); err != nil {
		return fail("client %q: %w", id, err)
	}
	now := b.now()
	switch {
	case claims.Issuer != client.ID || claims.Subject != client.ID:
		return fail("client %q: iss and sub must be the client id", id)
	case !b.assertionAudienceOK(claims.Audience, endpoint):
		return fail("client %q: aud names neither the issuer nor this endpoint", id)
	case claims.Expiry == nil:
		return fail("client %q: no exp", id)
	case !now.Before(claims.Expiry.Time().Add(assertionLeeway)):
		return fail("client %q: expired", id)
	case claims.Expiry.Time().After(now.Add(maxAssertionLifetime + assertionLeeway)):
		return fail("client %q: exp is more than %s ahead", id, maxAssertionLifetime)
	case claims.NotBefore != nil && claims.NotBefore.Time().After(now.Add(assertionLeeway)):
		return fail("client %q: not valid yet (nbf)", id)
	case claims.IssuedAt != nil && claims.IssuedAt.Time().After(now.Add(assertionLeeway)):
		return fail("client %q: issued in the future (iat)", id)
	case claims.ID == "":
		return fail("client %q: no jti", id)
	case len(claims.ID) > 256:
		return fail("client %q: jti longer than 256 bytes", id)
	}
	// The jti is remembered until the assertion could no longer be
	// accepted anyway.
	ttl := claims.Expiry.Time().Add(assertionLeeway).Sub(now)
	err = b.eph.Create(ctx, assertionJTIKey(client.ID, claims.ID), []byte("1"), max(ttl, time.Second))
	if errors.Is(err, storage.ErrConflict) {
		return fail("client %q: jti already used (replay)", id)
	}
	if err != nil {
		return storage.Client{}, oauth2.ErrServerError("", fmt.Errorf("remember client assertion jti: %w", err))
	}
	return client, nil
}

func assertionJTIKey(clientID, jti string) string {
	return "assertion-jti:" + sha256Hex(clientID+"\x00"+jti)
}

// assertionAudienceOK: aud holds the issuer identifier, the token
// endpoint URL or the URL of the endpoint called.
func (b *Broker) assertionAudienceOK(aud jwt.Audience, endpoint string) bool {
	base := strings.TrimSuffix(b.issuer, "/")
	ok := []string{b.issuer, base + PathToken, base + endpoint}
	return slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(ok, a) })
}

// verifyAssertion checks the signature with the client's keys: those of
// its jwks, or of its jwks_uri (fetched again once when the kid is not
// in the cached document).
func (b *Broker) verifyAssertion(ctx context.Context, client storage.Client, tok *jwt.JSONWebToken, hdr jose.Header, out *assertionClaims) error {
	var set jose.JSONWebKeySet
	switch {
	case len(client.JWKS) > 0:
		if err := json.Unmarshal(client.JWKS, &set); err != nil {
			return fmt.Errorf("registered jwks: %w", err)
		}
	case client.JWKSURI != "":
		var err error
		if set, err = b.jwks.get(ctx, b, client.JWKSURI, false); err != nil {
			return err
		}
		if hdr.KeyID != "" && len(set.Key(hdr.KeyID)) == 0 {
			if set, err = b.jwks.get(ctx, b, client.JWKSURI, true); err != nil {
				return err
			}
		}
	default:
		return errors.New("the client has neither jwks nor jwks_uri")
	}
	candidates := set.Keys
	if hdr.KeyID != "" {
		candidates = set.Key(hdr.KeyID)
		if len(candidates) == 0 {
			return errors.New("no key with the assertion's kid")
		}
	}
	tried := false
	for _, k := range candidates {
		if (k.Use != "" && k.Use != "sig") || (k.Algorithm != "" && k.Algorithm != hdr.Algorithm) {
			continue
		}
		pub := k.Public()
		if !pub.Valid() {
			continue
		}
		tried = true
		if err := tok.Claims(pub.Key, out); err == nil {
			return nil
		}
	}
	if !tried {
		return fmt.Errorf("no usable %s key", hdr.Algorithm)
	}
	return errors.New("signature does not verify with the client's keys")
}

// jwksCache keeps client jwks_uri documents for a while.
type jwksCache struct {
	ttl     time.Duration
	mu      sync.Mutex
	entries map[string]jwksEntry
}

type jwksEntry struct {
	set     jose.JSONWebKeySet
	fetched time.Time
}

// get returns the document at uri, from the cache when it is fresh.
// refetch asks for a new copy unless the cached one is younger than
// jwksRefetchAfter.
func (c *jwksCache) get(ctx context.Context, b *Broker, uri string, refetch bool) (jose.JSONWebKeySet, error) {
	now := b.now()
	c.mu.Lock()
	e, ok := c.entries[uri]
	c.mu.Unlock()
	if ok && now.Sub(e.fetched) < c.ttl && (!refetch || now.Sub(e.fetched) < jwksRefetchAfter) {
		return e.set, nil
	}
	set, err := b.fetchJWKS(ctx, uri)
	if err != nil {
		return jose.JSONWebKeySet{}, err
	}
	c.mu.Lock()
	c.entries[uri] = jwksEntry{set: set, fetched: now}
	c.mu.Unlock()
	return set, nil
}

// fetchJWKS GETs a client's JWK Set through the hardened HTTP client.
func (b *Broker) fetchJWKS(ctx context.Context, uri string) (jose.JSONWebKeySet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("fetch jwks_uri: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := b.http.Do(req)
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("fetch jwks_uri: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("fetch jwks_uri: read: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return jose.JSONWebKeySet{}, fmt.Errorf("fetch jwks_uri: status %d", resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("fetch jwks_uri: not a JWK Set: %w", err)
	}
	return set, nil
}
