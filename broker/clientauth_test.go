package broker_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/internal/httpclient"
	"github.com/latchkeyid/latchkey/storage"
)

const jwtClient = "jwt-app"

// clientKey is an ES256 key of a client with its public JWKS.
type clientKey struct {
	priv *ecdsa.PrivateKey
	kid  string
}

func newClientKey(t testing.TB, kid string) clientKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return clientKey{priv: k, kid: kid}
}

func jwksOf(t testing.TB, keys ...clientKey) json.RawMessage {
	t.Helper()
	var set jose.JSONWebKeySet
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: "ES256", Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// assertion signs claims with k (ES256, kid in the header).
func (k clientKey) assertion(t *testing.T, claims any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// assertionClaims are valid claims for client id at now.
func assertionClaims(id, aud string, now time.Time, jti string) map[string]any {
	return map[string]any{"iss": id, "sub": id, "aud": aud, "jti": jti, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
}

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func assertionForm(assertion string, kv ...string) map[string][]string {
	return form(append([]string{"grant_type", "client_credentials", "client_assertion_type", broker.ClientAssertionType, "client_assertion", assertion}, kv...)...)
}

func TestPrivateKeyJWT(t *testing.T) {
	f := newFixture(t, "sqlite", databases(t, "sqlite")(t))
	key := newClientKey(t, "k1")
	f.addClient(storage.Client{ID: jwtClient, TokenEndpointAuthMethod: "private_key_jwt", JWKS: jwksOf(t, key),
		GrantTypes: []string{"client_credentials"}, Scope: "read"}, "")
	f.addClient(storage.Client{ID: "secret-app", GrantTypes: []string{"client_credentials"}}, "s3cret")
	ctx := context.Background()
	now := f.clock.Now()
	tokenURL := testIssuer + "/token"

	pubDER, err := x509.MarshalPKIXPublicKey(&key.priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hs256 := func(claims any) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: pubPEM}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.Signed(s).Claims(claims).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	with := func(id, aud, jti string, change func(m map[string]any)) map[string]any {
		m := assertionClaims(id, aud, now, jti)
		if change != nil {
			change(m)
		}
		return m
	}
	other := newClientKey(t, "k1") // same kid, another key
	unknownKid := newClientKey(t, "k9")

	const failed = "client authentication failed"
	tests := []struct {
		name   string
		form   map[string][]string
		cc     broker.ClientCredentials
		code   string
		desc   string
		status int
		cause  string // in the logged cause
	}{
		{name: "aud is the issuer", form: assertionForm(key.assertion(t, with(jwtClient, testIssuer, "j1", nil)))},
		{name: "aud is the token endpoint", form: assertionForm(key.assertion(t, with(jwtClient, tokenURL, "j2", nil)))},
		{name: "aud is a list", form: assertionForm(key.assertion(t, with(jwtClient, "", "j3", func(m map[string]any) { m["aud"] = []string{"x", testIssuer} })))},
		{name: "matching client_id", form: assertionForm(key.assertion(t, with(jwtClient, testIssuer, "j4", nil)), "client_id", jwtClient)},
		{name: "alg none", cause: "unexpected signature algorithm \"none\"", form: assertionForm(b64(map[string]any{"alg": "none", "kid": "k1"}) + "." + b64(with(jwtClient, testIssuer, "n1", nil)) + "."),
			code: "invalid_client", desc: failed, status: 401},
		{name: "HS256 keyed with the public key", cause: "unexpected signature algorithm \"HS256\"", form: assertionForm(hs256(with(jwtClient, testIssuer, "h1", nil))),
			code: "invalid_client", desc: failed, status: 401},
		{name: "wrong aud", cause: "aud names neither the issuer nor this endpoint", form: assertionForm(key.assertion(t, with(jwtClient, "https://evil.example", "a1", nil))),
			code: "invalid_client", desc: failed, status: 401},
		{name: "aud is the userinfo endpoint", cause: "aud names neither the issuer nor this endpoint", form: assertionForm(key.assertion(t, with(jwtClient, testIssuer+"/userinfo", "a2", nil))),
			code: "invalid_client", desc: failed, status: 401},
		{name: "replayed jti", cause: "jti already used (replay)", form: assertionForm(key.assertion(t, with(jwtClient, testIssuer, "j1", nil))),
			code: "invalid_client", desc: failed, status: 401},
		{name: "expired", cause: ": expired", form: assertionForm(key.assertion(t, with(jwtClient, testIssuer, "e1", func(m map[string]any) { m["exp"] = now.Add(-time.Minute).Unix() }))),
			code: "invalid_client", desc: failed, status: 401},
		{name: "missing exp", cause: "no exp", form: assertionForm(key.assertion(t, with(jwtClient, testIssuer, "e2", func(m map[string]any) { delete(m, "exp") }))),
			code: "invalid_client", desc: failed, status: 401},
		{name: "exp too far ahead", cause: "exp is more than 5m0s ahead", form: assertionForm(key.assertion(t, with(jwtClient, testIssuer, "e3", func(m map[string]any) { m["exp"] = now.Add(time.Hour).Unix() }))),
			code: "invalid_client", desc: failed, status: 401},
		{name: "not yet valid", cause: "not valid yet (nbf)", form: assertionForm(key.assertion(t, with(jwtClient, testIssuer, "e4", func(m map[string]any) { m["nbf"] = now.Add(2 * time.Minute).Unix() }))),
			code: "invalid_client", desc: failed, status: 401},
		{name: "missing jti", cause: "no jti", form: assertionForm(key.assertion(t, with(jwtClient, testIssuer, "", nil))),
			code: "invalid_client", desc: failed, status: 401},
		{name: "unknown kid", cause: "no key with the assertion's kid", form: assertionForm(unknownKid.assertion(t, with(jwtClient, testIssuer, "k1", nil))),
			code: "invalid_client", desc: failed, status: 401},
		{name: "signed by another key", cause: "signature does not verify with the client's keys", form: assertionForm(other.assertion(t, with(jwtClient, testIssuer, "k2", nil))),
			code: "invalid_client", desc: failed, status: 401},
		{name: "iss is not sub", cause: "iss is not sub", form: assertionForm(key.assertion(t, with(jwtClient, testIssuer, "i1", func(m map[string]any) { m["iss"] = "someone" }))),
			code: "invalid_client", desc: failed, status: 401},
		{name: "client_id is another client", cause: "client_id does not match the assertion's sub", form: assertionForm(key.assertion(t, with(jwtClient, testIssuer, "i2", nil)), "client_id", "secret-app"),
			code: "invalid_client", desc: failed, status: 401},
		{name: "client that uses a secret", cause: "client \"secret-app\" may not use private_key_jwt", form: assertionForm(key.assertion(t, with("secret-app", testIssuer, "i3", nil))),
			code: "invalid_client", desc: failed, status: 401},
		{name: "unknown client", cause: "client \"ghost\" unknown or disabled", form: assertionForm(key.assertion(t, with("ghost", testIssuer, "i4", nil))),
			code: "invalid_client", desc: failed, status: 401},
		{name: "wrong assertion type", cause: "unsupported client_assertion_type", form: func() map[string][]string {
			v := assertionForm(key.assertion(t, with(jwtClient, testIssuer, "t1", nil)))
			v["client_assertion_type"] = []string{"urn:ietf:params:oauth:client-assertion-type:saml2-bearer"}
			return v
		}(), code: "invalid_client", desc: failed, status: 401},
		{name: "not a JWT", cause: "compact JWS format must have three parts", form: assertionForm("not-a-jwt"), code: "invalid_client", desc: failed, status: 401},
		{name: "assertion and secret", form: assertionForm(key.assertion(t, with(jwtClient, testIssuer, "t2", nil))), cc: basic("secret-app", "s3cret"),
			code: "invalid_request", desc: "use only one client authentication method", status: 400},
		{name: "secret for a private_key_jwt client", cause: "client \"jwt-app\" may not use client_secret_basic", form: form("grant_type", "client_credentials"), cc: basic(jwtClient, ""),
			code: "invalid_client", desc: failed, status: 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, oerr := f.b.Token(ctx, tc.form, tc.cc, meta)
			if tc.code != "" {
				wantOAuthError(t, "token", oerr, tc.code, tc.desc, tc.status)
				if tc.cause != "" && (oerr.Cause == nil || !strings.Contains(oerr.Cause.Error(), tc.cause)) {
					t.Fatalf("cause %v, want it to say %q", oerr.Cause, tc.cause)
				}
				return
			}
			if oerr != nil {
				t.Fatalf("token: %v", oerr)
			}
			if c := claims(t, resp.AccessToken); c["sub"] != jwtClient || c["scope"] != "read" {
				t.Fatalf("access token %v", c)
			}
		})
	}

	// The jti is kept until the assertion's exp (plus leeway), then
	// forgotten with it.
	ttl, err := f.eph.TTL(ctx, "assertion-jti:"+sha256Hex(jwtClient+"\x00j1"))
	if err != nil || ttl != time.Minute+30*time.Second {
		t.Fatalf("replay cache TTL %v %v, want exp+30s from now", ttl, err)
	}

	// At introspection and revocation the endpoint's own URL is an
	// accepted audience too.
	at, oerr := f.b.Token(ctx, assertionForm(key.assertion(t, with(jwtClient, testIssuer, "x1", nil))), broker.ClientCredentials{}, meta)
	if oerr != nil {
		t.Fatal(oerr)
	}
	in, oerr := f.b.Introspect(ctx, assertionForm(key.assertion(t, with(jwtClient, testIssuer+"/introspect", "x2", nil)), "token", at.AccessToken),
		broker.ClientCredentials{}, meta)
	if oerr != nil || !in.Active {
		t.Fatalf("introspect with private_key_jwt: %v %+v", oerr, in)
	}
	_, oerr = f.b.Introspect(ctx, assertionForm(key.assertion(t, with(jwtClient, testIssuer+"/revoke", "x3", nil)), "token", at.AccessToken),
		broker.ClientCredentials{}, meta)
	wantOAuthError(t, "introspect with the revocation endpoint as aud", oerr, "invalid_client", failed, 401)
	if oerr := f.b.Revoke(ctx, assertionForm(key.assertion(t, with(jwtClient, testIssuer+"/revoke", "x4", nil)), "token", at.AccessToken),
		broker.ClientCredentials{}, meta); oerr != nil {
		t.Fatalf("revoke with private_key_jwt: %v", oerr)
	}
	var secrets []string
	for _, tc := range tests {
		secrets = append(secrets, tc.form["client_assertion"]...)
	}
	f.noSecretsLogged(append(secrets, at.AccessToken)...)
}

// TestPrivateKeyJWTWithJWKSURI fetches the client's keys from its
// jwks_uri through the hardened client, caches them, and fetches again
// for a new kid.
func TestPrivateKeyJWTWithJWKSURI(t *testing.T) {
	k1, k2 := newClientKey(t, "k1"), newClientKey(t, "k2")
	var (
		fetches atomic.Int32
		current atomic.Value
	)
	current.Store(jwksOf(t, k1))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(current.Load().(json.RawMessage))
	}))
	t.Cleanup(srv.Close)
	hc := httpclient.New(httpclient.Options{AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}})
	f := newFixture(t, "sqlite", databases(t, "sqlite")(t), withHTTPClient(hc))
	f.addClient(storage.Client{ID: jwtClient, TokenEndpointAuthMethod: "private_key_jwt", JWKSURI: srv.URL + "/jwks.json",
		GrantTypes: []string{"client_credentials"}}, "")
	ctx := context.Background()
	try := func(k clientKey, jti string) error {
		t.Helper()
		_, oerr := f.b.Token(ctx, assertionForm(k.assertion(t, assertionClaims(jwtClient, testIssuer, f.clock.Now(), jti))), broker.ClientCredentials{}, meta)
		if oerr != nil {
			return oerr
		}
		return nil
	}
	for i, jti := range []string{"a", "b", "c"} {
		if err := try(k1, jti); err != nil {
			t.Fatalf("assertion %d: %v", i, err)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for three assertions, want 1 (cached)", n)
	}
	// The client rotates to k2: the unknown kid fetches again.
	f.clock.Advance(time.Minute)
	current.Store(jwksOf(t, k2))
	if err := try(k2, "d"); err != nil {
		t.Fatalf("after key rotation: %v", err)
	}
	if n := fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after a new kid, want 2", n)
	}
	// An unknown kid right after does not fetch again.
	if err := try(newClientKey(t, "k3"), "e"); err == nil {
		t.Fatal("unknown kid accepted")
	}
	if n := fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after a second unknown kid within 30s, want 2", n)
	}
	// The old key is gone from the document.
	f.clock.Advance(6 * time.Minute)
	if err := try(k1, "f"); err == nil {
		t.Fatal("key removed from the jwks_uri document still accepted")
	}

	// The default client (no AllowedNetworks) refuses loopback: the
	// assertion fails as invalid_client, not as a server error.
	f2 := newFixture(t, "sqlite", databases(t, "sqlite")(t))
	f2.addClient(storage.Client{ID: jwtClient, TokenEndpointAuthMethod: "private_key_jwt", JWKSURI: srv.URL + "/jwks.json",
		GrantTypes: []string{"client_credentials"}}, "")
	_, oerr := f2.b.Token(ctx, assertionForm(k2.assertion(t, assertionClaims(jwtClient, testIssuer, f2.clock.Now(), "g"))), broker.ClientCredentials{}, meta)
	wantOAuthError(t, "jwks_uri on loopback with the default client", oerr, "invalid_client", "client authentication failed", 401)
}
