package facebook_test

import (
	"context"
	"testing"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/facebook"
	"github.com/latchkeyid/latchkey/providers/facebook/facebooktest"
	"github.com/latchkeyid/latchkey/providers/providertest"
)

// Facebook knows no username and no groups; its email is confirmed.
func wantAlice() providers.Identity {
	return providers.Identity{
		Subject: "248289761001", Email: "alice@example.com", EmailVerified: true, Name: "Alice Example", AMR: []string{"fed"},
	}
}

func TestCallbackContract(t *testing.T) {
	providertest.RunCallbackContract(t, providertest.Contract{
		Upstream: facebooktest.Options(facebooktest.Settings{RequireProof: true}),
		Open: func(t *testing.T, upstreamURL string, deps providers.Deps) providers.CallbackConnector {
			c, err := facebook.New(context.Background(), providers.Info{ID: "facebook", Name: "Facebook"}, facebook.Config{
				ClientID:     providertest.ClientID,
				ClientSecret: providertest.ClientSecret,
				FacebookURL:  upstreamURL,
				GraphURL:     upstreamURL,
			}, deps)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			return c
		},
		Want:    wantAlice,
		Refresh: providertest.RefreshByAccessToken,
	})
}
