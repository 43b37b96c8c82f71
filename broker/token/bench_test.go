package token_test

import (
	"testing"

	"github.com/latchkeyid/latchkey/broker/token"
	"github.com/latchkeyid/latchkey/internal/clock"
)

func benchGrant(alg string) token.Grant {
	return token.Grant{
		ClientID: clientID, Scopes: []string{"openid", "profile", "email", "groups"},
		Nonce: "n-1", AuthTime: t0, AMR: []string{"pwd", "otp", "mfa"}, SID: "sid-1", IDTokenAlg: alg,
	}
}

func BenchmarkIDTokenRS256(b *testing.B) {
	clk := clock.NewFake(t0)
	iss := newIssuer(b, newSigner(b, clk), clk, func(o *token.Options) { o.Rand = nil })
	g := benchGrant(token.RS256)
	at, _, _, err := iss.AccessToken(b.Context(), alice, g)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := iss.IDToken(b.Context(), alice, g, at); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAccessTokenES256(b *testing.B) {
	clk := clock.NewFake(t0)
	iss := newIssuer(b, newSigner(b, clk), clk, func(o *token.Options) { o.Rand = nil })
	g := benchGrant(token.RS256)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := iss.AccessToken(b.Context(), alice, g); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyAccessToken(b *testing.B) {
	clk := clock.NewFake(t0)
	iss := newIssuer(b, newSigner(b, clk), clk, func(o *token.Options) { o.Rand = nil })
	at, _, _, err := iss.AccessToken(b.Context(), alice, benchGrant(token.RS256))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := iss.VerifyAccessToken(b.Context(), at); err != nil {
			b.Fatal(err)
		}
	}
}
