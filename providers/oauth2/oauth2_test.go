package oauth2_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/mapping"
	"github.com/latchkeyid/latchkey/providers/oauth2"
	"github.com/latchkeyid/latchkey/providers/providertest"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want []providers.FieldProblem
	}{
		{
			name: "minimal",
			raw:  `{"authURL":"https://forge.example/oauth/authorize","tokenURL":"https://forge.example/oauth/token","userinfoURL":"https://forge.example/api/user","clientID":"id","clientSecret":"s"}`,
		},
		{
			name: "empty",
			raw:  `{}`,
			want: []providers.FieldProblem{
				{Path: "authURL", Message: "required"},
				{Path: "tokenURL", Message: "required"},
				{Path: "userinfoURL", Message: "required"},
				{Path: "clientID", Message: "required"},
				{Path: "clientSecret", Message: "required"},
			},
		},
		{
			name: "wrong values",
			raw: `{"authURL":"http://forge.example/authorize","tokenURL":"https://forge.example/token","userinfoURL":"ftp://forge.example/user",
				"clientID":"id","clientSecret":"s","tokenEndpointAuthMethod":"none","scopes":["a b"],"pkce":"yes",
				"extraParams":{"state":"x"},"claims":{"subject":"data..id","mail":"x"},"allow":["claims"]}`,
			want: []providers.FieldProblem{
				{Path: "claims.mail", Message: "unknown key"},
				{Path: "pkce", Message: "must be true or false"},
				{Path: "authURL", Message: "must use https (http only for loopback hosts)"},
				{Path: "userinfoURL", Message: "must be an absolute https URL"},
				{Path: "tokenEndpointAuthMethod", Message: "must be client_secret_basic or client_secret_post"},
				{Path: "scopes[0]", Message: "must be a scope token (no spaces or quotes)"},
				{Path: "extraParams.state", Message: "reserved: Latchkey sets this parameter itself"},
				{Path: "claims.subject", Message: "must be a dotted path without empty segments"},
				{Path: "allow[0]", Message: "must be of type bool, not map(string, dyn)"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := oauth2.Type{}.Validate(json.RawMessage(tt.raw))
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("problems:\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func open(t *testing.T, up *providertest.Upstream, edit func(*oauth2.Config)) *oauth2.Connector {
	t.Helper()
	cfg := oauth2.Config{
		AuthURL:      up.URL + providertest.AuthorizePath,
		TokenURL:     up.URL + providertest.TokenPath,
		UserinfoURL:  up.URL + providertest.UserinfoPath,
		ClientID:     providertest.ClientID,
		ClientSecret: providertest.ClientSecret,
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := oauth2.New(context.Background(), providers.Info{ID: "forge", Name: "Forge"}, cfg, providertest.NewDeps(t, nil))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return c
}

// octocat is a user document shaped like GitHub's /user: a numeric id,
// login, and the address nested.
func octocat() providertest.User {
	return providertest.User{Subject: "ignored-sub", Claims: map[string]any{
		"id":    583231,
		"login": "octocat",
		"name":  "The Octocat",
		"profile": map[string]any{
			"emails": []any{map[string]any{"value": "octo@example.com", "verified": true}},
			"teams":  []any{"core", "docs"},
		},
	}}
}

func TestClaimPaths(t *testing.T) {
	paths := oauth2.ClaimPaths{
		Subject: "id", Username: "login", Email: "profile.emails.0.value",
		EmailVerified: "profile.emails.0.verified", Groups: "profile.teams",
	}
	tests := []struct {
		name    string
		edit    func(*oauth2.Config)
		want    providers.Identity
		wantErr string
	}{
		{
			name: "nested paths and a numeric id",
			edit: func(c *oauth2.Config) { c.Claims = paths },
			want: providers.Identity{Subject: "583231", Username: "octocat", Email: "octo@example.com", EmailVerified: true,
				Name: "The Octocat", Groups: []string{"core", "docs"}, AMR: []string{"fed"}},
		},
		{
			name: "unverified unless trustEmail",
			edit: func(c *oauth2.Config) { c.Claims = paths; c.Claims.EmailVerified = "missing.path" },
			want: providers.Identity{Subject: "583231", Username: "octocat", Email: "octo@example.com", EmailVerified: false,
				Name: "The Octocat", Groups: []string{"core", "docs"}, AMR: []string{"fed"}},
		},
		{
			name: "trustEmail",
			edit: func(c *oauth2.Config) { c.Claims = paths; c.Claims.EmailVerified = "missing.path"; c.TrustEmail = true },
			want: providers.Identity{Subject: "583231", Username: "octocat", Email: "octo@example.com", EmailVerified: true,
				Name: "The Octocat", Groups: []string{"core", "docs"}, AMR: []string{"fed"}},
		},
		{
			name: "CEL mapping over the user document",
			edit: func(c *oauth2.Config) {
				c.Claims = paths
				c.ClaimMapping = mapping.ClaimMapping{Groups: "claims.profile.teams.map(t, 'forge:' + t)", Username: "'gh-' + claims.login"}
			},
			want: providers.Identity{Subject: "583231", Username: "gh-octocat", Email: "octo@example.com", EmailVerified: true,
				Name: "The Octocat", Groups: []string{"forge:core", "forge:docs"}, AMR: []string{"fed"}},
		},
		{
			name:    "no subject at the path",
			edit:    func(c *oauth2.Config) { c.Claims = paths; c.Claims.Subject = "user.id" },
			wantErr: `oauth2: the user document has no subject at "user.id"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := providertest.NewUpstream(t)
			up.AddUser(octocat())
			up.LoginAs("ignored-sub")
			c := open(t, up, tt.edit)
			id, err := providertest.SignIn(t, c, up)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("sign in: %v", err)
			}
			id.ConnectorData = nil
			if !reflect.DeepEqual(id, tt.want) {
				t.Fatalf("identity:\n got %#v\nwant %#v", id, tt.want)
			}
		})
	}
}

func TestPKCEOffAndClientSecretPost(t *testing.T) {
	up := providertest.NewUpstream(t)
	off := false
	c := open(t, up, func(c *oauth2.Config) {
		c.PKCE = &off
		c.TokenEndpointAuthMethod = "client_secret_post"
		c.Scopes = []string{"read:user", "user:email"}
		c.ExtraParams = map[string]string{"allow_signup": "false"}
	})
	if _, err := providertest.SignIn(t, c, up); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	auth := up.LastAuthorize()
	if auth.Has("code_challenge") || auth.Get("scope") != "read:user user:email" || auth.Get("allow_signup") != "false" {
		t.Fatalf("authorization request: %v", auth)
	}
	tok := up.LastToken()
	if tok.Has("code_verifier") || tok.Get("client_id") != providertest.ClientID {
		t.Fatalf("token request: %v", tok)
	}
}

func TestRefreshUserinfoRefused(t *testing.T) {
	up := providertest.NewUpstream(t)
	c := open(t, up, nil)
	id, err := providertest.SignIn(t, c, up)
	if err != nil {
		t.Fatal(err)
	}
	// The token endpoint still refreshes, but the user endpoint refuses
	// the new access token: the upstream no longer vouches for the user.
	up.SetBehavior(providertest.Behavior{Faults: map[string]providertest.Fault{providertest.UserinfoPath: {Status: 401}}})
	_, err = c.Refresh(context.Background(), id)
	if !errors.Is(err, providers.ErrUpstreamUserGone) {
		t.Fatalf("err = %v, want ErrUpstreamUserGone", err)
	}
}
