package token_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/broker/token"
	"github.com/latchkeyid/latchkey/internal/clock"
)

func TestLogoutToken(t *testing.T) {
	clk := clock.NewFake(t0)
	m := newSigner(t, clk)
	iss := newIssuer(t, m, clk)
	for _, tc := range []struct{ alg, want string }{{"", token.RS256}, {token.ES256, token.ES256}, {token.EdDSA, token.EdDSA}} {
		t.Run(tc.want, func(t *testing.T) {
			tok, jti, err := iss.LogoutToken(t.Context(), token.Logout{ClientID: clientID, Alg: tc.alg, Subject: "u-7f3a", SID: "sid-1"})
			if err != nil {
				t.Fatal(err)
			}
			d := decode(t, m, tc.want, tok)
			wantHeader := map[string]any{"alg": tc.want, "kid": signingKID(t, m, tc.want), "typ": "logout+jwt"}
			if !reflect.DeepEqual(d.header, wantHeader) {
				t.Errorf("header = %v, want %v", d.header, wantHeader)
			}
			want := map[string]any{
				"iss": issuer, "aud": clientID, "iat": unix(t0), "exp": unix(t0.Add(2 * time.Minute)), "jti": jti,
				"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
				"sub":    "u-7f3a", "sid": "sid-1",
			}
			if !reflect.DeepEqual(d.claims, want) {
				t.Errorf("claims = %v, want %v", d.claims, want)
			}
		})
	}
	for _, l := range []token.Logout{{Subject: "u"}, {ClientID: clientID}, {ClientID: clientID, Subject: "u", Alg: "HS256"}} {
		if _, _, err := iss.LogoutToken(t.Context(), l); err == nil {
			t.Errorf("LogoutToken(%+v): no error", l)
		}
	}
}

func TestVerifyIDTokenHint(t *testing.T) {
	clk := clock.NewFake(t0)
	m := newSigner(t, clk)
	iss := newIssuer(t, m, clk)
	ctx := t.Context()
	grant := token.Grant{ClientID: clientID, Scopes: []string{"openid"}, SID: "sid-1", IDTokenAlg: token.ES256}
	idt, err := iss.IDToken(ctx, alice, grant, "")
	if err != nil {
		t.Fatal(err)
	}
	at, _, _, err := iss.AccessToken(ctx, alice, grant)
	if err != nil {
		t.Fatal(err)
	}
	other, err := newIssuer(t, m, clk, func(o *token.Options) { o.Issuer = "https://evil.example.com" }).IDToken(ctx, alice, grant, "")
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := newIssuer(t, newSigner(t, clk, token.ES256), clk).IDToken(ctx, alice, grant, "")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(idt, ".")
	want := token.IDTokenHint{Subject: "u-7f3a", Audience: []string{clientID}, AZP: clientID, SID: "sid-1", ExpiresAt: t0.Add(idTTL)}

	// Expired: still identifies the session.
	clk.Set(t0.Add(idTTL + 5*time.Minute))
	got, err := iss.VerifyIDTokenHint(ctx, idt)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("expired hint: %+v, %v; want %+v", got, err, want)
	}
	for _, tc := range []struct {
		name, token, reason string
	}{
		{"empty", "", "empty"},
		{"access token", at, "header typ is not JWT"},
		{"alg none", b64(`{"alg":"none"}`) + "." + parts[1] + ".", "header alg is not one Latchkey signs with"},
		{"extra header", b64(`{"alg":"ES256","jku":"https://evil"}`) + "." + parts[1] + "." + parts[2], "header has a member other than alg, kid and typ"},
		{"tampered", parts[0] + "." + b64(`{"iss":"`+issuer+`","sub":"u-admin","aud":"app-1"}`) + "." + parts[2], "signature"},
		{"other issuer", other, "iss is not this issuer"},
		{"unknown key", stranger, "signature"},
		{"two parts", parts[0] + "." + parts[1], "not a compact JWS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := iss.VerifyIDTokenHint(ctx, tc.token)
			if !errors.Is(err, token.ErrInvalidHint) || !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("error %v, want ErrInvalidHint with %q", err, tc.reason)
			}
		})
	}
}
