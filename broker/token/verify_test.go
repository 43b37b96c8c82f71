package token_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/broker/keys"
	"github.com/latchkeyid/latchkey/broker/oauth2"
	"github.com/latchkeyid/latchkey/broker/token"
	"github.com/latchkeyid/latchkey/internal/clock"
)

// claimsJSON is an access token payload made by hand.
func claimsJSON(t *testing.T, mutate func(map[string]any)) []byte {
	t.Helper()
	c := map[string]any{
		"iss":       issuer,
		"exp":       t0.Add(atTTL).Unix(),
		"aud":       issuer,
		"sub":       "u-7f3a",
		"client_id": clientID,
		"iat":       t0.Unix(),
		"jti":       "jti-1",
		"scope":     "openid profile",
	}
	if mutate != nil {
		mutate(c)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifyAccessToken(t *testing.T) {
	clk := clock.NewFake(t0)
	m := newSigner(t, clk)
	iss := newIssuer(t, m, clk)
	ctx := t.Context()

	authTime := t0.Add(-time.Hour)
	grant := token.Grant{
		ClientID: clientID, Scopes: []string{"openid", "profile", "groups"},
		AuthTime: authTime, AMR: []string{"pwd", "otp", "mfa"}, SID: "sid-1",
	}
	valid, jti, _, err := iss.AccessToken(ctx, alice, grant)
	if err != nil {
		t.Fatal(err)
	}
	wantValid := token.AccessClaims{
		Subject: "u-7f3a", ClientID: clientID, Audience: []string{issuer},
		Scopes: []string{"openid", "profile", "groups"}, JTI: jti,
		IssuedAt: t0, ExpiresAt: t0.Add(atTTL), AuthTime: authTime,
		SID: "sid-1", ACR: token.ACRMFA, AMR: []string{"pwd", "otp", "mfa"},
	}
	idToken, err := iss.IDToken(ctx, alice, grant, valid)
	if err != nil {
		t.Fatal(err)
	}
	rsIss := newIssuer(t, m, clk, func(o *token.Options) { o.AccessTokenAlg = token.RS256 })
	rsToken, rsJTI, _, err := rsIss.AccessToken(ctx, alice, token.Grant{ClientID: clientID, Audience: []string{"https://a", "https://b"}})
	if err != nil {
		t.Fatal(err)
	}
	otherIss := newIssuer(t, m, clk, func(o *token.Options) { o.Issuer = "https://evil.example.com" })
	wrongIss, _, _, err := otherIss.AccessToken(ctx, alice, grant)
	if err != nil {
		t.Fatal(err)
	}
	// Same issuer name, another key set: as if signed by a stranger.
	strangerIss := newIssuer(t, newSigner(t, clk, token.ES256), clk)
	unknownKey, _, _, err := strangerIss.AccessToken(ctx, alice, grant)
	if err != nil {
		t.Fatal(err)
	}

	sign := func(alg, typ string, payload []byte) string {
		t.Helper()
		tok, err := m.Sign(alg, payload, typ)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	esKID, rsKID := signingKID(t, m, token.ES256), signingKID(t, m, token.RS256)
	payload := claimsJSON(t, nil)
	algNone := b64(`{"alg":"none","typ":"at+jwt"}`) + "." + b64(string(payload)) + "."

	// HS256 keyed with the RSA public key in PEM: the classic confusion.
	set := m.KeySet()
	rsaPub := set.Key(rsKID)[0].Key
	der, err := x509.MarshalPKIXPublicKey(rsaPub)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	hsInput := b64(fmt.Sprintf(`{"alg":"HS256","kid":%q,"typ":"at+jwt"}`, rsKID)) + "." + b64(string(payload))
	mac := hmac.New(sha256.New, pemKey)
	mac.Write([]byte(hsInput))
	hs256 := hsInput + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))

	// An ES256 header naming the RS256 key passes the header check and
	// must fail in the Signer.
	mismatch := b64(fmt.Sprintf(`{"alg":"ES256","kid":%q,"typ":"at+jwt"}`, rsKID)) + "." + b64(string(payload)) + "." + b64("sig")
	vParts := strings.Split(valid, ".")
	tampered := vParts[0] + "." + b64(strings.Replace(string(claimsJSON(t, nil)), "u-7f3a", "u-admin", 1)) + "." + vParts[2]
	jku := b64(fmt.Sprintf(`{"alg":"ES256","jku":"https://evil/jwks","kid":%q,"typ":"at+jwt"}`, esKID)) + "." + vParts[1] + "." + vParts[2]
	numericKID := b64(`{"alg":"ES256","kid":7,"typ":"at+jwt"}`) + "." + vParts[1] + "." + vParts[2]

	const prefix = "invalid_token: the access token is not valid: token: invalid access token: "
	tests := []struct {
		name    string
		token   string
		advance time.Duration
		want    token.AccessClaims
		wantErr string // the full error text; "" means valid
		errIs   error  // also wrapped, besides ErrInvalidToken
		// signer: wantErr is only the start of the text; the rest is the
		// Signer's (broker/keys) own wording.
		signer bool
	}{
		{name: "valid", token: valid, want: wantValid},
		{name: "valid one second before exp", token: valid, advance: atTTL - time.Second, want: wantValid},
		{name: "valid RS256, two audiences", token: rsToken, want: token.AccessClaims{
			Subject: "u-7f3a", ClientID: clientID, Audience: []string{"https://a", "https://b"},
			JTI: rsJTI, IssuedAt: t0, ExpiresAt: t0.Add(atTTL)}},
		{name: "typ application/at+jwt, upper case", token: sign(token.ES256, "application/AT+JWT", payload), want: token.AccessClaims{
			Subject: "u-7f3a", ClientID: clientID, Audience: []string{issuer}, Scopes: []string{"openid", "profile"},
			JTI: "jti-1", IssuedAt: t0, ExpiresAt: t0.Add(atTTL)}},
		{name: "expired at exp", token: valid, advance: atTTL,
			wantErr: "invalid_token: the access token expired: token: invalid access token: expired at 2026-03-01T12:15:00Z"},
		{name: "expired long ago", token: valid, advance: 48 * time.Hour,
			wantErr: "invalid_token: the access token expired: token: invalid access token: expired at 2026-03-01T12:15:00Z"},
		{name: "wrong iss", token: wrongIss, wantErr: prefix + "iss is not this issuer"},
		{name: "ID token as access token", token: idToken, wantErr: prefix + "header typ is not at+jwt"},
		{name: "no typ", token: sign(token.ES256, "", payload), wantErr: prefix + "header typ is not at+jwt"},
		{name: "typ JWT", token: sign(token.ES256, "JWT", payload), wantErr: prefix + "header typ is not at+jwt"},
		{name: "alg none", token: algNone, wantErr: prefix + "header alg is not one Latchkey signs with"},
		{name: "HS256 with the public key", token: hs256, wantErr: prefix + "header alg is not one Latchkey signs with"},
		{name: "alg not the key's", token: mismatch, errIs: keys.ErrVerify, signer: true,
			wantErr: prefix + "signature: keys: token signature not valid: "},
		{name: "unknown key", token: unknownKey, errIs: keys.ErrVerify, signer: true,
			wantErr: prefix + "signature: keys: token signature not valid: "},
		{name: "tampered claims", token: tampered, errIs: keys.ErrVerify, signer: true,
			wantErr: prefix + "signature: keys: token signature not valid: "},
		{name: "header with jku", token: jku, wantErr: prefix + "header has a member other than alg, kid and typ"},
		{name: "header kid not a string", token: numericKID, wantErr: prefix + "header member is not a string"},
		{name: "no exp", token: sign(token.ES256, "at+jwt", claimsJSON(t, func(c map[string]any) { delete(c, "exp") })),
			wantErr: prefix + "no exp"},
		{name: "no sub", token: sign(token.ES256, "at+jwt", claimsJSON(t, func(c map[string]any) { delete(c, "sub") })),
			wantErr: prefix + "no sub"},
		{name: "no client_id", token: sign(token.ES256, "at+jwt", claimsJSON(t, func(c map[string]any) { delete(c, "client_id") })),
			wantErr: prefix + "no client_id"},
		{name: "no jti", token: sign(token.ES256, "at+jwt", claimsJSON(t, func(c map[string]any) { c["jti"] = "" })),
			wantErr: prefix + "no jti"},
		{name: "no iss", token: sign(token.ES256, "at+jwt", claimsJSON(t, func(c map[string]any) { delete(c, "iss") })),
			wantErr: prefix + "iss is not this issuer"},
		{name: "exp not a number", token: sign(token.ES256, "at+jwt", claimsJSON(t, func(c map[string]any) { c["exp"] = "tomorrow" })),
			wantErr: prefix + "claims are not a JSON object of the expected types"},
		{name: "claims not an object", token: sign(token.ES256, "at+jwt", []byte(`"u-7f3a"`)),
			wantErr: prefix + "claims are not a JSON object of the expected types"},
		{name: "garbage", token: "not a token", wantErr: prefix + "not a compact JWS (three dot-separated parts)"},
		{name: "four parts", token: valid + ".x", wantErr: prefix + "not a compact JWS (three dot-separated parts)"},
		{name: "header not base64url", token: "a.b.c", wantErr: prefix + "header is not base64url"},
		{name: "header not JSON", token: b64("alg") + ".b.c", wantErr: prefix + "header is not a JSON object"},
		{name: "empty", token: "", wantErr: prefix + "empty"},
		{name: "too long", token: strings.Repeat("a", 64<<10+1), wantErr: prefix + "longer than 65536 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk.Set(t0.Add(tc.advance))
			defer clk.Set(t0)
			got, err := iss.VerifyAccessToken(ctx, tc.token)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("VerifyAccessToken: %v", err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("claims = %+v\nwant     %+v", got, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted: %+v", got)
			}
			if tc.signer {
				if !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Errorf("err = %q\nwant  %q...", err.Error(), tc.wantErr)
				}
			} else if err.Error() != tc.wantErr {
				t.Errorf("err = %q\nwant  %q", err.Error(), tc.wantErr)
			}
			if !errors.Is(err, token.ErrInvalidToken) {
				t.Errorf("err does not wrap ErrInvalidToken")
			}
			if tc.errIs != nil && !errors.Is(err, tc.errIs) {
				t.Errorf("err does not wrap %v", tc.errIs)
			}
			if oe, ok := oauth2.As(err); !ok || oe.Code != oauth2.CodeInvalidToken || oe.Status != 401 {
				t.Errorf("err is not a 401 invalid_token *oauth2.Error: %#v", err)
			}
			if !reflect.DeepEqual(got, token.AccessClaims{}) {
				t.Errorf("claims returned with an error: %+v", got)
			}
			// No token content in the error: no part of the token, no claim.
			for _, part := range strings.Split(tc.token, ".") {
				if len(part) >= 8 && strings.Contains(err.Error(), part) {
					t.Errorf("error contains a token part")
				}
			}
			for _, secret := range []string{"u-7f3a", "jti-1", jti, "evil"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error contains %q", secret)
				}
			}
		})
	}
}
