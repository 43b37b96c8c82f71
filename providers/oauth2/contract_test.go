package oauth2_test

import (
	"context"
	"testing"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/oauth2"
	"github.com/latchkeyid/latchkey/providers/providertest"
)

func TestCallbackContract(t *testing.T) {
	providertest.RunCallbackContract(t, providertest.Contract{
		Open: func(t *testing.T, upstreamURL string, deps providers.Deps) providers.CallbackConnector {
			c, err := oauth2.New(context.Background(), providers.Info{ID: "forge", Name: "Code Forge"}, oauth2.Config{
				AuthURL:      upstreamURL + providertest.AuthorizePath,
				TokenURL:     upstreamURL + providertest.TokenPath,
				UserinfoURL:  upstreamURL + providertest.UserinfoPath,
				ClientID:     providertest.ClientID,
				ClientSecret: providertest.ClientSecret,
				Scopes:       []string{"read:user"},
			}, deps)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			return c
		},
	})
}
