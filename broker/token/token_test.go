package token_test

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/latchkeyid/latchkey/broker/token"
	"github.com/latchkeyid/latchkey/internal/clock"
)

var alice = token.Subject{
	UserID:        "u-7f3a",
	Username:      "alice",
	Name:          "Alice Liddell",
	Email:         "alice@example.com",
	EmailVerified: true,
	Groups:        []string{"admins", "staff"},
}

func TestNew(t *testing.T) {
	clk := clock.NewFake(t0)
	all := newSigner(t, clk)
	rsOnly := newSigner(t, clk, token.RS256)
	tests := []struct {
		name    string
		o       token.Options
		wantErr string
	}{
		{name: "defaults", o: token.Options{Issuer: issuer, Signer: all}},
		{name: "http issuer with path", o: token.Options{Issuer: "http://localhost:5556/dex", Signer: all}},
		{name: "no issuer", o: token.Options{Signer: all}, wantErr: "token: Issuer is required"},
		{name: "relative issuer", o: token.Options{Issuer: "/id", Signer: all},
			wantErr: `token: issuer "/id" must be an absolute http(s) URL without user info, query or fragment`},
		{name: "issuer with query", o: token.Options{Issuer: "https://id.example.com/?a=b", Signer: all},
			wantErr: `token: issuer "https://id.example.com/?a=b" must be an absolute http(s) URL without user info, query or fragment`},
		{name: "issuer with fragment", o: token.Options{Issuer: "https://id.example.com/#x", Signer: all},
			wantErr: `token: issuer "https://id.example.com/#x" must be an absolute http(s) URL without user info, query or fragment`},
		{name: "no signer", o: token.Options{Issuer: issuer}, wantErr: "token: Signer is required"},
		{name: "negative ttl", o: token.Options{Issuer: issuer, Signer: all, IDTokenTTL: -time.Second},
			wantErr: "token: token lifetimes must not be negative"},
		{name: "unsupported alg", o: token.Options{Issuer: issuer, Signer: all, AccessTokenAlg: "HS256"},
			wantErr: `token: access token algorithm "HS256" is not supported (RS256, ES256, EdDSA)`},
		{name: "default alg without key", o: token.Options{Issuer: issuer, Signer: rsOnly},
			wantErr: "token: access token algorithm ES256 has no signing key (keys are kept for RS256)"},
		{name: "RS256 access tokens", o: token.Options{Issuer: issuer, Signer: rsOnly, AccessTokenAlg: token.RS256}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iss, err := token.New(tc.o)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if iss.Issuer() != tc.o.Issuer {
				t.Fatalf("Issuer() = %q", iss.Issuer())
			}
		})
	}
}

func TestAccessToken(t *testing.T) {
	clk := clock.NewFake(t0)
	m := newSigner(t, clk)
	authTime := t0.Add(-5 * time.Minute)
	tests := []struct {
		name       string
		alg        string // Options.AccessTokenAlg; "" is the default
		subject    token.Subject
		grant      token.Grant
		wantClaims map[string]any
	}{
		{
			name:    "full grant with groups",
			subject: alice,
			grant: token.Grant{
				ClientID: clientID,
				Scopes:   []string{"openid", "profile", "groups"},
				Nonce:    "not in access tokens",
				AuthTime: authTime,
				AMR:      []string{"pwd", "otp", "mfa"},
				SID:      "sid-1",
			},
			wantClaims: map[string]any{
				"iss":       issuer,
				"exp":       unix(t0.Add(atTTL)),
				"aud":       issuer,
				"sub":       "u-7f3a",
				"client_id": clientID,
				"iat":       unix(t0),
				"jti":       jtiAt(0),
				"scope":     "openid profile groups",
				"auth_time": unix(authTime),
				"acr":       token.ACRMFA,
				"amr":       strs("pwd", "otp", "mfa"),
				"sid":       "sid-1",
				"groups":    strs("admins", "staff"),
			},
		},
		{
			name:    "no groups scope, explicit acr, one audience",
			subject: alice,
			grant: token.Grant{
				ClientID: clientID,
				Audience: []string{"https://api.example.com"},
				Scopes:   []string{"openid", "email"},
				AMR:      []string{"pwd"},
				ACR:      token.ACRPwd,
			},
			wantClaims: map[string]any{
				"iss":       issuer,
				"exp":       unix(t0.Add(atTTL)),
				"aud":       "https://api.example.com",
				"sub":       "u-7f3a",
				"client_id": clientID,
				"iat":       unix(t0),
				"jti":       jtiAt(0),
				"scope":     "openid email",
				"acr":       token.ACRPwd,
				"amr":       strs("pwd"),
			},
		},
		{
			name:    "two audiences, no scope, no factors, RS256",
			alg:     token.RS256,
			subject: token.Subject{UserID: "u-1"},
			grant:   token.Grant{ClientID: clientID, Audience: []string{"https://a.example", "https://b.example"}},
			wantClaims: map[string]any{
				"iss":       issuer,
				"exp":       unix(t0.Add(atTTL)),
				"aud":       strs("https://a.example", "https://b.example"),
				"sub":       "u-1",
				"client_id": clientID,
				"iat":       unix(t0),
				"jti":       jtiAt(0),
			},
		},
		{
			name:    "groups scope, user without groups, EdDSA",
			alg:     token.EdDSA,
			subject: token.Subject{UserID: "u-2"},
			grant:   token.Grant{ClientID: clientID, Scopes: []string{"groups"}, AMR: []string{"fed"}},
			wantClaims: map[string]any{
				"iss":       issuer,
				"exp":       unix(t0.Add(atTTL)),
				"aud":       issuer,
				"sub":       "u-2",
				"client_id": clientID,
				"iat":       unix(t0),
				"jti":       jtiAt(0),
				"scope":     "groups",
				"acr":       token.ACRPwd,
				"amr":       strs("fed"),
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iss := newIssuer(t, m, clk, func(o *token.Options) { o.AccessTokenAlg = tc.alg })
			alg := tc.alg
			if alg == "" {
				alg = token.ES256
			}
			tok, jti, exp, err := iss.AccessToken(t.Context(), tc.subject, tc.grant)
			if err != nil {
				t.Fatalf("AccessToken: %v", err)
			}
			if jti != jtiAt(0) || !exp.Equal(t0.Add(atTTL)) || exp.Location() != time.UTC {
				t.Fatalf("jti, exp = %q, %v; want %q, %v", jti, exp, jtiAt(0), t0.Add(atTTL))
			}
			d := decode(t, m, alg, tok)
			wantHeader := map[string]any{"alg": alg, "kid": signingKID(t, m, alg), "typ": "at+jwt"}
			if !reflect.DeepEqual(d.header, wantHeader) {
				t.Errorf("header = %v\nwant     %v", d.header, wantHeader)
			}
			if !reflect.DeepEqual(d.claims, tc.wantClaims) {
				t.Errorf("claims = %v\nwant     %v", d.claims, tc.wantClaims)
			}
		})
	}
}

func TestAccessTokenJTIsDiffer(t *testing.T) {
	clk := clock.NewFake(t0)
	iss := newIssuer(t, newSigner(t, clk, token.ES256), clk, func(o *token.Options) { o.Rand = nil })
	seen := map[string]bool{}
	for range 20 {
		_, jti, _, err := iss.AccessToken(t.Context(), alice, token.Grant{ClientID: clientID})
		if err != nil {
			t.Fatalf("AccessToken: %v", err)
		}
		if raw, err := base64.RawURLEncoding.DecodeString(jti); err != nil || len(raw) != 16 {
			t.Fatalf("jti %q is not 128 bits of base64url: %v", jti, err)
		}
		if seen[jti] {
			t.Fatalf("jti %q repeated", jti)
		}
		seen[jti] = true
	}
}

func TestIDToken(t *testing.T) {
	clk := clock.NewFake(t0)
	m := newSigner(t, clk)
	authTime := t0.Add(-2 * time.Minute)
	base := func(extra map[string]any) map[string]any {
		c := map[string]any{
			"iss": issuer,
			"sub": "u-7f3a",
			"aud": clientID,
			"azp": clientID,
			"exp": unix(t0.Add(idTTL)),
			"iat": unix(t0),
		}
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
	tests := []struct {
		name        string
		subject     token.Subject
		grant       token.Grant
		accessToken string
		wantAlg     string
		wantClaims  map[string]any
	}{
		{
			name:       "openid only",
			subject:    alice,
			grant:      token.Grant{ClientID: clientID, Scopes: []string{"openid"}},
			wantAlg:    token.RS256,
			wantClaims: base(nil),
		},
		{
			name:    "everything, RS256",
			subject: alice,
			grant: token.Grant{
				ClientID: clientID,
				Scopes:   []string{"openid", "profile", "email", "groups"},
				Nonce:    "n-0S6_WzA2Mj",
				AuthTime: authTime,
				AMR:      []string{"hwk", "user", "mfa"},
				SID:      "sid-9",
			},
			accessToken: "YmJiZTAwYmYtMzgyOC00NzhkLTkyOTItNjJjNDM3MGYzOWIy9sFhvH8K_x8UIHj1osisS57f5DduL-ar_qw5jl3lthwpMjm283aVMQXDmoqqqydDSqJfbhptzw8rUVwkuQbolw",
			wantAlg:     token.RS256,
			wantClaims: base(map[string]any{
				"auth_time":          unix(authTime),
				"nonce":              "n-0S6_WzA2Mj",
				"acr":                token.ACRPhr,
				"amr":                strs("hwk", "user", "mfa"),
				"sid":                "sid-9",
				"at_hash":            "x7vk7f6BvQj0jQHYFIk4ag",
				"name":               "Alice Liddell",
				"preferred_username": "alice",
				"email":              "alice@example.com",
				"email_verified":     true,
				"groups":             strs("admins", "staff"),
			}),
		},
		{
			name:       "profile scope",
			subject:    alice,
			grant:      token.Grant{ClientID: clientID, Scopes: []string{"openid", "profile"}, IDTokenAlg: token.ES256},
			wantAlg:    token.ES256,
			wantClaims: base(map[string]any{"name": "Alice Liddell", "preferred_username": "alice"}),
		},
		{
			name:       "email scope, unverified",
			subject:    token.Subject{UserID: "u-7f3a", Email: "bob@example.com"},
			grant:      token.Grant{ClientID: clientID, Scopes: []string{"openid", "email"}},
			wantAlg:    token.RS256,
			wantClaims: base(map[string]any{"email": "bob@example.com", "email_verified": false}),
		},
		{
			name:       "email scope, user without email",
			subject:    token.Subject{UserID: "u-7f3a", EmailVerified: true},
			grant:      token.Grant{ClientID: clientID, Scopes: []string{"openid", "email"}},
			wantAlg:    token.RS256,
			wantClaims: base(nil),
		},
		{
			name:       "groups scope, user without groups",
			subject:    token.Subject{UserID: "u-7f3a", Groups: []string{}},
			grant:      token.Grant{ClientID: clientID, Scopes: []string{"openid", "groups"}},
			wantAlg:    token.RS256,
			wantClaims: base(nil),
		},
		{
			name:    "claims parameter without scopes, unknown and userinfo members ignored",
			subject: alice,
			grant: token.Grant{
				ClientID: clientID,
				Scopes:   []string{"openid"},
				Claims: json.RawMessage(`{"id_token":{"email":{"essential":true},"preferred_username":null,"picture":null,` +
					`"acr":{"values":["urn:latchkey:acr:mfa"]}},"userinfo":{"name":null,"groups":null}}`),
			},
			wantAlg:    token.RS256,
			wantClaims: base(map[string]any{"email": "alice@example.com", "preferred_username": "alice"}),
		},
		{
			name:    "claims parameter email_verified alone, groups",
			subject: alice,
			grant: token.Grant{
				ClientID: clientID,
				Scopes:   []string{"openid", "profile"},
				Claims:   json.RawMessage(`{"id_token":{"email_verified":null,"groups":{"essential":false}}}`),
			},
			wantAlg: token.RS256,
			wantClaims: base(map[string]any{
				"name": "Alice Liddell", "preferred_username": "alice",
				"email_verified": true, "groups": strs("admins", "staff"),
			}),
		},
		{
			name:    "EdDSA with at_hash, acr from grant",
			subject: alice,
			grant: token.Grant{
				ClientID: clientID, IDTokenAlg: token.EdDSA,
				AMR: []string{"pwd"}, ACR: token.ACRMFA,
			},
			accessToken: "YmJiZTAwYmYtMzgyOC00NzhkLTkyOTItNjJjNDM3MGYzOWIy9sFhvH8K_x8UIHj1osisS57f5DduL-ar_qw5jl3lthwpMjm283aVMQXDmoqqqydDSqJfbhptzw8rUVwkuQbolw",
			wantAlg:     token.EdDSA,
			wantClaims: base(map[string]any{
				"acr": token.ACRMFA, "amr": strs("pwd"),
				"at_hash": "EGEAhGYyfuwDaVTifvrWSoD5MSy_5hZPy6I7Vm-7pTQ",
			}),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iss := newIssuer(t, m, clk)
			tok, err := iss.IDToken(t.Context(), tc.subject, tc.grant, tc.accessToken)
			if err != nil {
				t.Fatalf("IDToken: %v", err)
			}
			d := decode(t, m, tc.wantAlg, tok)
			wantHeader := map[string]any{"alg": tc.wantAlg, "kid": signingKID(t, m, tc.wantAlg), "typ": "JWT"}
			if !reflect.DeepEqual(d.header, wantHeader) {
				t.Errorf("header = %v\nwant     %v", d.header, wantHeader)
			}
			if !reflect.DeepEqual(d.claims, tc.wantClaims) {
				t.Errorf("claims = %v\nwant     %v", d.claims, tc.wantClaims)
			}
		})
	}
}

// TestATHashKnownAnswer checks at_hash against values computed here with
// the standard library and against the published oidc-token-hash vectors
// (the same access token as in TestIDToken).
func TestATHashKnownAnswer(t *testing.T) {
	clk := clock.NewFake(t0)
	m := newSigner(t, clk)
	iss := newIssuer(t, m, clk)
	const at = "YmJiZTAwYmYtMzgyOC00NzhkLTkyOTItNjJjNDM3MGYzOWIy9sFhvH8K_x8UIHj1osisS57f5DduL-ar_qw5jl3lthwpMjm283aVMQXDmoqqqydDSqJfbhptzw8rUVwkuQbolw"
	s256 := sha256.Sum256([]byte(at))
	s512 := sha512.Sum512([]byte(at))
	tests := []struct {
		alg, published string
		computed       []byte
	}{
		{token.RS256, "x7vk7f6BvQj0jQHYFIk4ag", s256[:16]},
		{token.ES256, "x7vk7f6BvQj0jQHYFIk4ag", s256[:16]},
		{token.EdDSA, "EGEAhGYyfuwDaVTifvrWSoD5MSy_5hZPy6I7Vm-7pTQ", s512[:32]},
	}
	for _, tc := range tests {
		t.Run(tc.alg, func(t *testing.T) {
			if got := base64.RawURLEncoding.EncodeToString(tc.computed); got != tc.published {
				t.Fatalf("independent hash %q != published %q", got, tc.published)
			}
			tok, err := iss.IDToken(t.Context(), alice, token.Grant{ClientID: clientID, IDTokenAlg: tc.alg}, at)
			if err != nil {
				t.Fatalf("IDToken: %v", err)
			}
			if got := decode(t, m, tc.alg, tok).claims["at_hash"]; got != tc.published {
				t.Fatalf("at_hash = %v, want %q", got, tc.published)
			}
		})
	}
}

// TestIDTokenGoOIDC verifies ID tokens, and their at_hash binding to a real
// access token, with go-oidc, a relying-party library.
func TestIDTokenGoOIDC(t *testing.T) {
	clk := clock.NewFake(t0)
	m := newSigner(t, clk)
	iss := newIssuer(t, m, clk)
	authTime := t0.Add(-time.Minute)
	for _, alg := range []string{token.RS256, token.ES256, token.EdDSA} {
		t.Run(alg, func(t *testing.T) {
			g := token.Grant{
				ClientID: clientID, Scopes: []string{"openid", "email"}, Nonce: "n-1",
				AuthTime: authTime, AMR: []string{"pwd", "otp", "mfa"}, SID: "sid-3", IDTokenAlg: alg,
			}
			at, _, _, err := iss.AccessToken(t.Context(), alice, g)
			if err != nil {
				t.Fatalf("AccessToken: %v", err)
			}
			raw, err := iss.IDToken(t.Context(), alice, g, at)
			if err != nil {
				t.Fatalf("IDToken: %v", err)
			}
			v := oidc.NewVerifier(issuer, &oidc.StaticKeySet{PublicKeys: publicKeys(m)},
				&oidc.Config{ClientID: clientID, SupportedSigningAlgs: []string{alg}, Now: clk.Now})
			idt, err := v.Verify(t.Context(), raw)
			if err != nil {
				t.Fatalf("go-oidc Verify: %v", err)
			}
			if idt.Subject != alice.UserID || idt.Nonce != "n-1" || !reflect.DeepEqual(idt.Audience, []string{clientID}) ||
				!idt.Expiry.Equal(t0.Add(idTTL)) || !idt.IssuedAt.Equal(t0) || idt.AccessTokenHash == "" {
				t.Fatalf("go-oidc token = %+v", idt)
			}
			if err := idt.VerifyAccessToken(at); err != nil {
				t.Fatalf("go-oidc at_hash check: %v", err)
			}
			if err := idt.VerifyAccessToken(at + "x"); err == nil {
				t.Fatal("go-oidc accepted at_hash for another access token")
			}
			var c struct {
				Email         string   `json:"email"`
				EmailVerified bool     `json:"email_verified"`
				ACR           string   `json:"acr"`
				AMR           []string `json:"amr"`
				SID           string   `json:"sid"`
				AuthTime      int64    `json:"auth_time"`
			}
			if err := idt.Claims(&c); err != nil {
				t.Fatalf("claims: %v", err)
			}
			if c.Email != alice.Email || !c.EmailVerified || c.ACR != token.ACRMFA || c.SID != "sid-3" ||
				c.AuthTime != authTime.Unix() || !reflect.DeepEqual(c.AMR, []string{"pwd", "otp", "mfa"}) {
				t.Fatalf("claims = %+v", c)
			}
			// Expired for go-oidc too once the lifetime has passed.
			late := oidc.NewVerifier(issuer, &oidc.StaticKeySet{PublicKeys: publicKeys(m)},
				&oidc.Config{ClientID: clientID, SupportedSigningAlgs: []string{alg},
					Now: func() time.Time { return t0.Add(idTTL + time.Second) }})
			if _, err := late.Verify(t.Context(), raw); err == nil {
				t.Fatal("go-oidc accepted an expired ID token")
			}
		})
	}
}

func TestIssueErrors(t *testing.T) {
	clk := clock.NewFake(t0)
	m := newSigner(t, clk, token.RS256, token.ES256)
	iss := newIssuer(t, m, clk)
	ok := token.Grant{ClientID: clientID}
	tests := []struct {
		name    string
		subject token.Subject
		grant   token.Grant
		wantAT  string // "" means AccessToken succeeds
		wantID  string
	}{
		{name: "no user id", subject: token.Subject{}, grant: ok,
			wantAT: "issue access token: subject has no user id",
			wantID: "issue ID token: subject has no user id"},
		{name: "no client id", subject: alice, grant: token.Grant{},
			wantAT: "issue access token: grant has no client id",
			wantID: "issue ID token: grant has no client id"},
		{name: "unsupported ID token alg", subject: alice, grant: token.Grant{ClientID: clientID, IDTokenAlg: "HS256"},
			wantID: `issue ID token for client "app-1": algorithm "HS256" is not supported`},
		{name: "ID token alg without key", subject: alice, grant: token.Grant{ClientID: clientID, IDTokenAlg: token.EdDSA},
			wantID: `issue ID token for client "app-1": sign: keys: no signing key for algorithm "EdDSA"`},
		{name: "claims parameter not an object", subject: alice, grant: token.Grant{ClientID: clientID, Claims: json.RawMessage(`[1]`)},
			wantID: `issue ID token for client "app-1": decode claims parameter: json: cannot unmarshal array into Go value of type map[string]map[string]json.RawMessage`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := iss.AccessToken(t.Context(), tc.subject, tc.grant)
			if got := errString(err); got != tc.wantAT {
				t.Errorf("AccessToken err = %q, want %q", got, tc.wantAT)
			}
			_, err = iss.IDToken(t.Context(), tc.subject, tc.grant, "")
			if got := errString(err); got != tc.wantID {
				t.Errorf("IDToken err = %q, want %q", got, tc.wantID)
			}
		})
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("entropy gone") }

func TestAccessTokenRandFailure(t *testing.T) {
	clk := clock.NewFake(t0)
	iss := newIssuer(t, newSigner(t, clk, token.ES256), clk, func(o *token.Options) { o.Rand = failingReader{} })
	_, _, _, err := iss.AccessToken(t.Context(), alice, token.Grant{ClientID: clientID})
	if want := "issue access token: read random jti: entropy gone"; errString(err) != want {
		t.Fatalf("err = %q, want %q", errString(err), want)
	}
}

func TestUserInfo(t *testing.T) {
	clk := clock.NewFake(t0)
	iss := newIssuer(t, newSigner(t, clk, token.ES256), clk)
	tests := []struct {
		name    string
		subject token.Subject
		scopes  []string
		want    map[string]any
	}{
		{name: "openid only", subject: alice, scopes: []string{"openid"},
			want: map[string]any{"sub": "u-7f3a"}},
		{name: "no scopes", subject: alice, want: map[string]any{"sub": "u-7f3a"}},
		{name: "profile", subject: alice, scopes: []string{"openid", "profile"},
			want: map[string]any{"sub": "u-7f3a", "name": "Alice Liddell", "preferred_username": "alice"}},
		{name: "email", subject: alice, scopes: []string{"openid", "email"},
			want: map[string]any{"sub": "u-7f3a", "email": "alice@example.com", "email_verified": true}},
		{name: "groups", subject: alice, scopes: []string{"openid", "groups"},
			want: map[string]any{"sub": "u-7f3a", "groups": []string{"admins", "staff"}}},
		{name: "all, unknown scope ignored", subject: alice, scopes: []string{"openid", "profile", "email", "groups", "offline_access", "phone"},
			want: map[string]any{"sub": "u-7f3a", "name": "Alice Liddell", "preferred_username": "alice",
				"email": "alice@example.com", "email_verified": true, "groups": []string{"admins", "staff"}}},
		{name: "empty values omitted", subject: token.Subject{UserID: "u-0", EmailVerified: true},
			scopes: []string{"openid", "profile", "email", "groups"}, want: map[string]any{"sub": "u-0"}},
		{name: "unverified email", subject: token.Subject{UserID: "u-1", Email: "e@example.com"}, scopes: []string{"email"},
			want: map[string]any{"sub": "u-1", "email": "e@example.com", "email_verified": false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := iss.UserInfo(tc.subject, tc.scopes); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("UserInfo = %#v\nwant       %#v", got, tc.want)
			}
		})
	}
	// The groups slice is a copy: changing it does not change the subject.
	got := iss.UserInfo(alice, []string{"groups"})
	got["groups"].([]string)[0] = "changed"
	if alice.Groups[0] != "admins" {
		t.Fatal("UserInfo shares the subject's groups slice")
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
