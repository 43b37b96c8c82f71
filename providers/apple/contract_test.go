package apple_test

import (
	"context"
	"testing"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/apple"
	"github.com/latchkeyid/latchkey/providers/apple/appletest"
	"github.com/latchkeyid/latchkey/providers/providertest"
)

// Apple knows no username and no groups; the name comes from the user
// form field of the first login.
func wantAlice() providers.Identity {
	return providers.Identity{
		Subject: "248289761001", Email: "alice@example.com", EmailVerified: true, Name: "Alice Example", AMR: []string{"fed"},
	}
}

func TestCallbackContract(t *testing.T) {
	p8, pub := appletest.NewKey(t)
	providertest.RunCallbackContract(t, providertest.Contract{
		OpenID:   true,
		Upstream: appletest.Options(appletest.Settings{Key: pub}),
		Open: func(t *testing.T, upstreamURL string, deps providers.Deps) providers.CallbackConnector {
			c, err := apple.New(context.Background(), providers.Info{ID: "apple", Name: "Apple"}, apple.Config{
				ClientID:   providertest.ClientID,
				TeamID:     appletest.TeamID,
				KeyID:      appletest.KeyID,
				PrivateKey: p8,
				BaseURL:    upstreamURL,
			}, deps)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			return c
		},
		Want:                 wantAlice,
		Refresh:              providertest.RefreshReusesToken,
		NameAtFirstLoginOnly: true,
		NoHints:              true,
	})
}
