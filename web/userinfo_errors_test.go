package web_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/broker/token"
	"github.com/latchkeyid/latchkey/internal/clock"
)

// mint signs an access token for alice with the fixture's keys through
// a token.Issuer of the given issuer and clock.
func (f *fixture) mint(t *testing.T, iss string, clk clock.Clock, scopes ...string) string {
	t.Helper()
	i, err := token.New(token.Options{Issuer: iss, Signer: f.keys, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	at, _, _, err := i.AccessToken(context.Background(), token.Subject{UserID: "u-alice", Username: "alice"}, token.Grant{ClientID: "app", Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// unsignedJWS builds a compact JWS from a header and the payload of tok,
// with the given signature part.
func unsignedJWS(header map[string]any, payload string, sig string) string {
	h, _ := json.Marshal(header)
	return base64.RawURLEncoding.EncodeToString(h) + "." + payload + "." + sig
}

func TestUserInfoErrors(t *testing.T) {
	f := newAppFixture(t)
	conf := f.rp("app", appSecret, appCB, "openid", "email")
	verifier := oauth2.GenerateVerifier()
	b := f.browser()
	q := b.signIn(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), "alice", alicePassword, appCB)
	tok := exchange(t, conf, q.Get("code"), verifier)
	at := tok.AccessToken
	idToken, _ := tok.Extra("id_token").(string)
	parts := strings.Split(at, ".")
	atHeader, _ := decodeJWT(t, at)

	// Tokens that must be refused.
	past := clock.NewFake(f.clock.Now().Add(-2 * time.Hour))
	expired := f.mint(t, f.issuer, past, "openid")
	justExpired := f.mint(t, f.issuer, clock.NewFake(f.clock.Now().Add(-time.Hour)), "openid")
	otherIssuer := f.mint(t, "https://evil.example", f.clock, "openid")
	noOpenID := f.mint(t, f.issuer, f.clock, "profile")
	algNone := unsignedJWS(map[string]any{"alg": "none", "typ": "at+jwt"}, parts[1], "")
	mac := hmac.New(sha256.New, []byte("guessable"))
	hsHeader := map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": atHeader["kid"]}
	hsSigningInput := strings.TrimSuffix(unsignedJWS(hsHeader, parts[1], ""), ".")
	mac.Write([]byte(hsSigningInput))
	hs256 := hsSigningInput + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	var claims map[string]any
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	json.Unmarshal(raw, &claims)
	claims["sub"] = "u-mallory"
	forged, _ := json.Marshal(claims)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(forged) + "." + parts[2]
	strangerKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: strangerKey},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "stranger"))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign(raw)
	if err != nil {
		t.Fatal(err)
	}
	stranger, _ := obj.CompactSerialize()

	get := func(authz string) func(t *testing.T) *http.Request {
		return func(t *testing.T) *http.Request {
			r, _ := http.NewRequest(http.MethodGet, f.issuer+"/userinfo", nil)
			if authz != "" {
				r.Header.Set("Authorization", authz)
			}
			return r
		}
	}
	post := func(body, contentType, authz string) func(t *testing.T) *http.Request {
		return func(t *testing.T) *http.Request {
			r, _ := http.NewRequest(http.MethodPost, f.issuer+"/userinfo", strings.NewReader(body))
			r.Header.Set("Content-Type", contentType)
			if authz != "" {
				r.Header.Set("Authorization", authz)
			}
			return r
		}
	}
	const form = "application/x-www-form-urlencoded"
	const invalid = "the access token is invalid or expired"
	aliceClaims := map[string]any{"sub": "u-alice", "email": "alice@example.com", "email_verified": true}

	for _, tc := range []struct {
		name   string
		req    func(t *testing.T) *http.Request
		status int
		err    string // "" with 401: no token (no error code); with 200: success
		desc   string
	}{
		{"no token", get(""), 401, "", ""},
		{"no token (POST)", post("", form, ""), 401, "", ""},
		{"token in the query is ignored", func(t *testing.T) *http.Request {
			r, _ := http.NewRequest(http.MethodGet, f.issuer+"/userinfo?access_token="+url.QueryEscape(at), nil)
			return r
		}, 401, "", ""},
		{"garbage", get("Bearer garbage"), 401, "invalid_token", invalid},
		{"three dots of garbage", get("Bearer a.b.c"), 401, "invalid_token", invalid},
		{"alg none", get("Bearer " + algNone), 401, "invalid_token", invalid},
		{"HS256 (key confusion)", get("Bearer " + hs256), 401, "invalid_token", invalid},
		{"tampered claims", get("Bearer " + tampered), 401, "invalid_token", invalid},
		{"unknown signing key", get("Bearer " + stranger), 401, "invalid_token", invalid},
		{"expired", get("Bearer " + expired), 401, "invalid_token", invalid},
		{"expired this second", get("Bearer " + justExpired), 401, "invalid_token", invalid},
		{"another issuer", get("Bearer " + otherIssuer), 401, "invalid_token", invalid},
		{"ID token", get("Bearer " + idToken), 401, "invalid_token", invalid},
		{"without the openid scope", get("Bearer " + noOpenID), 403, "insufficient_scope", "the access token lacks the openid scope"},
		{"Basic scheme", get("Basic " + base64.StdEncoding.EncodeToString([]byte("app:"+appSecret))), 400, "invalid_request", "malformed Authorization header"},
		{"Bearer without token", get("Bearer "), 400, "invalid_request", "malformed Authorization header"},
		{"scheme only", get("Bearer"), 400, "invalid_request", "malformed Authorization header"},
		{"POST with a JSON body", post(`{"access_token":"`+at+`"}`, "application/json", ""), 400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded"},
		{"header and form", post("access_token="+at, form, "Bearer "+at), 400, "invalid_request", "use only one method to send the access token"},
		{"header", get("Bearer " + at), 200, "", ""},
		{"lower-case scheme", get("bearer " + at), 200, "", ""},
		{"POST with access_token in the form", post("access_token="+at, form, ""), 200, "", ""},
		{"POST with header and a JSON body", post(`{}`, "application/json", "Bearer "+at), 200, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := doRequest(t, tc.req(t))
			switch {
			case tc.status == 200:
				if resp.StatusCode != 200 {
					t.Fatalf("status %d: %s", resp.StatusCode, body)
				}
				assertHeaders(t, resp.Header, map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store",
					"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})
				var got map[string]any
				if err := json.Unmarshal([]byte(body), &got); err != nil {
					t.Fatal(err)
				}
				assertMap(t, "userinfo", got, aliceClaims)
			case tc.err == "":
				if resp.StatusCode != tc.status || body != "" {
					t.Errorf("status %d body %q, want %d and no body", resp.StatusCode, body, tc.status)
				}
				assertHeaders(t, resp.Header, map[string]string{"WWW-Authenticate": `Bearer realm="latchkey"`, "Cache-Control": "no-store",
					"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})
			default:
				assertBearerError(t, resp, body, tc.status, tc.err, tc.desc)
			}
		})
	}
}
