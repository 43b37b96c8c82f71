package github_test

import (
	"context"
	"testing"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/github"
	"github.com/latchkeyid/latchkey/providers/github/githubtest"
	"github.com/latchkeyid/latchkey/providers/providertest"
)

func openContract(t *testing.T, upstreamURL string, deps providers.Deps) providers.CallbackConnector {
	c, err := github.New(context.Background(), providers.Info{ID: "github", Name: "GitHub"}, github.Config{
		BaseURL:      upstreamURL, // GitHub Enterprise Server layout: the API at /api/v3
		ClientID:     providertest.ClientID,
		ClientSecret: providertest.ClientSecret,
	}, deps)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return c
}

// A GitHub App with expiring user tokens: refresh tokens, rotated.
func TestCallbackContractGitHubApp(t *testing.T) {
	providertest.RunCallbackContract(t, providertest.Contract{
		Upstream: githubtest.Options(githubtest.Settings{}),
		Open:     openContract,
		Refresh:  providertest.RefreshRotates,
	})
}

// An OAuth app: no refresh tokens; the access token (it does not expire)
// re-checks the user.
func TestCallbackContractOAuthApp(t *testing.T) {
	providertest.RunCallbackContract(t, providertest.Contract{
		Upstream: githubtest.Options(githubtest.Settings{OAuthApp: true}),
		Open:     openContract,
		Refresh:  providertest.RefreshByAccessToken,
	})
}
