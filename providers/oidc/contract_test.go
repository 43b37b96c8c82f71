package oidc_test

import (
	"context"
	"testing"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/oidc"
	"github.com/latchkeyid/latchkey/providers/providertest"
)

func TestCallbackContract(t *testing.T) {
	providertest.RunCallbackContract(t, providertest.Contract{
		OpenID: true,
		Open: func(t *testing.T, upstreamURL string, deps providers.Deps) providers.CallbackConnector {
			c, err := oidc.New(context.Background(), providers.Info{ID: "corp", Name: "Corp SSO"}, oidc.Config{
				Issuer:       upstreamURL,
				ClientID:     providertest.ClientID,
				ClientSecret: providertest.ClientSecret,
				Scopes:       []string{"openid", "email", "profile", "groups", "offline_access"},
			}, deps)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			return c
		},
	})
}
