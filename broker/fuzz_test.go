package broker_test

import (
	"context"
	"testing"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/storage"
)

// FuzzClientAssertion feeds arbitrary client assertions to the token
// endpoint: every one is refused as a client error, never accepted,
// never a panic or a 5xx.
func FuzzClientAssertion(f *testing.F) {
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJqd3QtYXBwIn0.")
	f.Add("eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJqd3QtYXBwIiwic3ViIjoiand0LWFwcCJ9.AAAA")
	f.Add("a.b.c")
	f.Add("..")
	f.Add("")
	fx := newFixture(f, "sqlite", databases(f, "sqlite")(f))
	fx.addClient(storage.Client{ID: jwtClient, TokenEndpointAuthMethod: "private_key_jwt", JWKS: jwksOf(f, newClientKey(f, "k1")),
		GrantTypes: []string{"client_credentials"}}, "")
	f.Fuzz(func(t *testing.T, assertion string) {
		_, oerr := fx.b.Token(context.Background(), assertionForm(assertion), broker.ClientCredentials{}, meta)
		if oerr == nil {
			t.Fatalf("assertion %q accepted", assertion)
		}
		if oerr.Status >= 500 {
			t.Fatalf("assertion %q: %v (status %d)", assertion, oerr, oerr.Status)
		}
	})
}
