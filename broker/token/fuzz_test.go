package token_test

import (
	"errors"
	"testing"

	"github.com/latchkeyid/latchkey/broker/token"
	"github.com/latchkeyid/latchkey/internal/clock"
)

// FuzzVerifyAccessToken: any input is either a valid token of ours or an
// error wrapping ErrInvalidToken; nothing panics.
func FuzzVerifyAccessToken(f *testing.F) {
	clk := clock.NewFake(t0)
	m := newSigner(f, clk)
	iss := newIssuer(f, m, clk)
	valid, _, _, err := iss.AccessToken(f.Context(), alice, token.Grant{ClientID: clientID, Scopes: []string{"openid"}})
	if err != nil {
		f.Fatal(err)
	}
	idt, err := iss.IDToken(f.Context(), alice, token.Grant{ClientID: clientID}, valid)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		valid, idt, "", ".", "..", "a.b.c", valid + "x",
		b64(`{"alg":"none","typ":"at+jwt"}`) + "." + b64(`{"sub":"x"}`) + ".",
		b64(`{"alg":"ES256","typ":"at+jwt","kid":null}`) + ".e30.",
		b64(`{"alg":"ES256","typ":"at+jwt","crit":["exp"]}`) + ".e30.AAAA",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := iss.VerifyAccessToken(t.Context(), tok)
		if err != nil {
			if !errors.Is(err, token.ErrInvalidToken) {
				t.Fatalf("error %v does not wrap ErrInvalidToken", err)
			}
			return
		}
		if c.Subject == "" || c.ClientID == "" || c.JTI == "" {
			t.Fatalf("accepted token with empty claims: %+v", c)
		}
	})
}

// FuzzVerifyIDTokenHint: any id_token_hint is either an ID token of ours
// or an error wrapping ErrInvalidHint; nothing panics.
func FuzzVerifyIDTokenHint(f *testing.F) {
	clk := clock.NewFake(t0)
	m := newSigner(f, clk)
	iss := newIssuer(f, m, clk)
	idt, err := iss.IDToken(f.Context(), alice, token.Grant{ClientID: clientID, SID: "s"}, "")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		idt, "", ".", "..", "a.b.c", idt + "x",
		b64(`{"alg":"none"}`) + "." + b64(`{"sub":"x"}`) + ".",
		b64(`{"alg":"RS256","typ":"JWT","kid":null}`) + ".e30.",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		h, err := iss.VerifyIDTokenHint(t.Context(), tok)
		if err != nil {
			if !errors.Is(err, token.ErrInvalidHint) {
				t.Fatalf("error %v does not wrap ErrInvalidHint", err)
			}
			return
		}
		if h.Subject == "" || len(h.Audience) == 0 {
			t.Fatalf("accepted hint with empty claims: %+v", h)
		}
	})
}
