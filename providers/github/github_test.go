package github_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/github"
	"github.com/latchkeyid/latchkey/providers/github/githubtest"
	"github.com/latchkeyid/latchkey/providers/mapping"
	"github.com/latchkeyid/latchkey/providers/providertest"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want []providers.FieldProblem
	}{
		{name: "minimal", raw: `{"clientID":"Iv1.abc","clientSecret":"s"}`},
		{
			name: "everything",
			raw: `{"baseURL":"https://github.example.com/","apiURL":"https://api.acme.ghe.com","clientID":"Iv1.abc","clientSecret":"s",
				"scopes":["read:user","user:email","read:org"],"orgs":["acme","Acme-Labs"],"teams":["acme:sre","acme:platform_team"],
				"claimMapping":{"groups":"claims.teams"},"allow":["'acme' in groups"],
				"deny":[{"expr":"claims.login == 'mallory'","reason":"no"}],"notAllowedReason":"Acme staff only."}`,
		},
		{
			name: "empty",
			raw:  `{}`,
			want: []providers.FieldProblem{{Path: "clientID", Message: "required"}, {Path: "clientSecret", Message: "required"}},
		},
		{
			name: "every key wrong",
			raw: `{"baseURL":"http://github.example.com","apiURL":"https://api.example.com/?x=1","clientID":" ","clientSecret":"s",
				"scopes":["read:user","user:email,read:org"],"orgs":["-acme","ok"],"teams":["acme","acme:SRE",":sre"],
				"claimMapping":{"groups":"'admins'"},"redirectURI":"https://x"}`,
			want: []providers.FieldProblem{
				{Path: "redirectURI", Message: "unknown key"},
				{Path: "baseURL", Message: "must use https (http only for loopback hosts)"},
				{Path: "apiURL", Message: "must not have a query"},
				{Path: "clientID", Message: "required"},
				{Path: "scopes[1]", Message: "must be a scope token (no spaces, commas or quotes)"},
				{Path: "scopes", Message: "must include read:org when orgs or teams restrict the login (private memberships are invisible without it)"},
				{Path: "orgs[0]", Message: "must be an organization name"},
				{Path: "teams[0]", Message: "must be org:team-slug (the team's slug, lower case)"},
				{Path: "teams[1]", Message: "must be org:team-slug (the team's slug, lower case)"},
				{Path: "teams[2]", Message: "must be org:team-slug (the team's slug, lower case)"},
				{Path: "claimMapping.groups", Message: "must be of type list(string), not string"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := github.Type{}.Validate(json.RawMessage(tt.raw))
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("problems:\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

// github.com needs no baseURL: the web at github.com, the API at
// api.github.com. LoginURL does no I/O.
func TestLoginURL(t *testing.T) {
	tests := []struct {
		name     string
		cfg      github.Config
		req      providers.LoginRequest
		endpoint string
		want     url.Values
	}{
		{
			name:     "github.com",
			cfg:      github.Config{ClientID: "Iv1.abc", ClientSecret: "s"},
			req:      providers.LoginRequest{CallbackURL: "https://id.example.com/cb", State: "st", Nonce: "no", CodeChallenge: "ch", LoginHint: "a@example.com", Prompt: "login"},
			endpoint: "https://github.com/login/oauth/authorize",
			want: url.Values{
				"client_id": {"Iv1.abc"}, "redirect_uri": {"https://id.example.com/cb"}, "response_type": {"code"},
				"scope": {"read:user user:email read:org"}, "state": {"st"},
				"code_challenge": {"ch"}, "code_challenge_method": {"S256"},
			},
		},
		{
			name:     "GitHub Enterprise Server, select_account, no PKCE without a challenge",
			cfg:      github.Config{BaseURL: "https://github.example.com/", ClientID: "Iv1.abc", ClientSecret: "s", Scopes: []string{"read:user"}},
			req:      providers.LoginRequest{CallbackURL: "https://id.example.com/cb", State: "st", Prompt: "select_account consent"},
			endpoint: "https://github.example.com/login/oauth/authorize",
			want: url.Values{
				"client_id": {"Iv1.abc"}, "redirect_uri": {"https://id.example.com/cb"}, "response_type": {"code"},
				"scope": {"read:user"}, "state": {"st"}, "prompt": {"select_account"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := github.New(context.Background(), providers.Info{ID: "github"}, tt.cfg, providertest.NewDeps(t, nil))
			if err != nil {
				t.Fatal(err)
			}
			raw, err := c.LoginURL(context.Background(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(raw)
			if got := u.Scheme + "://" + u.Host + u.Path; got != tt.endpoint {
				t.Fatalf("endpoint %s, want %s", got, tt.endpoint)
			}
			if got := u.Query(); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("query:\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

type setup struct {
	t    *testing.T
	up   *providertest.Upstream
	logs *providertest.LogBuffer
}

func newSetup(t *testing.T, s githubtest.Settings) *setup {
	return &setup{t: t, up: githubtest.New(t, s), logs: &providertest.LogBuffer{}}
}

func (s *setup) open(edit func(*github.Config)) *github.Connector {
	s.t.Helper()
	cfg := github.Config{BaseURL: s.up.URL, ClientID: providertest.ClientID, ClientSecret: providertest.ClientSecret}
	if edit != nil {
		edit(&cfg)
	}
	c, err := github.New(context.Background(), providers.Info{ID: "github", Name: "GitHub"}, cfg, providertest.NewDeps(s.t, s.logs))
	if err != nil {
		s.t.Fatalf("open: %v", err)
	}
	return c
}

// bob is a GitHub user with two addresses, two organizations and teams.
func bob() providertest.User {
	return providertest.User{Subject: "583231", Claims: map[string]any{
		"preferred_username":  "bob",
		"name":                "Bob Builder",
		"groups":              []any{"Acme", "widgets"},
		githubtest.ClaimTeams: []any{"Acme:sre", "Acme:platform", "widgets:owners"},
		githubtest.ClaimEmails: []any{
			map[string]any{"email": "bob@users.noreply.github.com", "primary": false, "verified": true, "visibility": nil},
			map[string]any{"email": "bob@acme.example", "primary": true, "verified": true, "visibility": "private"},
		},
	}}
}

func with(u providertest.User, edit func(map[string]any)) providertest.User {
	c := map[string]any{}
	for k, v := range u.Claims {
		c[k] = v
	}
	edit(c)
	u.Claims = c
	return u
}

func bobIdentity(edit func(*providers.Identity)) providers.Identity {
	id := providers.Identity{
		Subject: "583231", Username: "bob", Name: "Bob Builder", Email: "bob@acme.example", EmailVerified: true,
		Groups: []string{"Acme", "widgets", "Acme:sre", "Acme:platform", "widgets:owners"}, AMR: []string{"fed"},
	}
	if edit != nil {
		edit(&id)
	}
	return id
}

func TestIdentity(t *testing.T) {
	tests := []struct {
		name       string
		user       providertest.User
		settings   githubtest.Settings
		edit       func(*github.Config)
		want       providers.Identity
		wantDenied string
	}{
		{
			name: "primary verified email, all organizations and teams",
			user: bob(),
			want: bobIdentity(nil),
		},
		{
			name: "primary email not verified: unverified, although another address is",
			user: with(bob(), func(c map[string]any) {
				c[githubtest.ClaimEmails] = []any{
					map[string]any{"email": "bob@old.example", "primary": true, "verified": false},
					map[string]any{"email": "bob@acme.example", "primary": false, "verified": true},
				}
			}),
			want: bobIdentity(func(id *providers.Identity) { id.Email, id.EmailVerified = "bob@old.example", false }),
		},
		{
			name:     "no user:email scope: the public email, unverified",
			user:     with(bob(), func(c map[string]any) { c[githubtest.ClaimPublicEmail] = "bob@public.example" }),
			settings: githubtest.Settings{NotGranted: []string{"/user/emails"}},
			want:     bobIdentity(func(id *providers.Identity) { id.Email, id.EmailVerified = "bob@public.example", false }),
		},
		{
			name: "no email at all, no name",
			user: with(bob(), func(c map[string]any) { c[githubtest.ClaimEmails] = []any{}; delete(c, "name") }),
			want: bobIdentity(func(id *providers.Identity) { id.Email, id.EmailVerified, id.Name = "", false, "" }),
		},
		{
			name: "restricted to an organization (any case): groups only from it",
			user: bob(),
			edit: func(c *github.Config) { c.Orgs = []string{"acme"} },
			want: bobIdentity(func(id *providers.Identity) { id.Groups = []string{"Acme", "Acme:sre", "Acme:platform"} }),
		},
		{
			name:       "restricted to an organization the user is not in",
			user:       bob(),
			edit:       func(c *github.Config) { c.Orgs = []string{"globex"} },
			wantDenied: github.DefaultNotAllowedReason,
		},
		{
			name: "restricted to a team the user is in",
			user: bob(),
			edit: func(c *github.Config) { c.Teams = []string{"widgets:owners"} },
			want: bobIdentity(func(id *providers.Identity) { id.Groups = []string{"widgets", "widgets:owners"} }),
		},
		{
			name: "restricted to a team the user is not in, with the admin's reason",
			user: bob(),
			edit: func(c *github.Config) {
				c.Teams = []string{"acme:security"}
				c.NotAllowedReason = "Only Acme's security team may sign in."
			},
			wantDenied: "Only Acme's security team may sign in.",
		},
		{
			name:       "memberships invisible without read:org: a restricted login fails closed",
			user:       bob(),
			settings:   githubtest.Settings{NotGranted: []string{"/user/orgs", "/user/teams"}},
			edit:       func(c *github.Config) { c.Orgs = []string{"acme"} },
			wantDenied: github.DefaultNotAllowedReason,
		},
		{
			name:     "pagination: every page of organizations and teams",
			user:     bob(),
			settings: githubtest.Settings{MaxPerPage: 2},
			want:     bobIdentity(nil),
		},
		{
			name: "CEL mapping and rules over claims",
			user: bob(),
			edit: func(c *github.Config) {
				c.ClaimMapping = mapping.ClaimMapping{Groups: "claims.teams.filter(t, t.startsWith('Acme:'))", Username: "'gh-' + claims.login"}
				c.Deny = []mapping.Rule{{Expr: "claims.site_admin", Reason: "no admins"}}
				c.Allow = []string{"claims.emails.exists(e, e.primary && e.verified)"}
			},
			want: bobIdentity(func(id *providers.Identity) {
				id.Username, id.Groups = "gh-bob", []string{"Acme:sre", "Acme:platform"}
			}),
		},
		{
			name: "CEL deny rule",
			user: bob(),
			edit: func(c *github.Config) {
				c.Deny = []mapping.Rule{{Expr: "'widgets' in claims.orgs", Reason: "Widgets staff use the other portal."}}
			},
			wantDenied: "Widgets staff use the other portal.",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSetup(t, tt.settings)
			s.up.AddUser(tt.user)
			s.up.LoginAs(tt.user.Subject)
			id, err := providertest.SignIn(t, s.open(tt.edit), s.up)
			if tt.wantDenied != "" {
				var d *providers.DeniedError
				if !errors.As(err, &d) || d.Reason != tt.wantDenied {
					t.Fatalf("err = %v, want DeniedError %q", err, tt.wantDenied)
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

// With one entry a page, the organizations take 2 pages and the teams 3;
// past MaxPages the rest is ignored with a warning.
func TestPagination(t *testing.T) {
	s := newSetup(t, githubtest.Settings{MaxPerPage: 1})
	many := make([]any, github.MaxPages+2)
	for i := range many {
		many[i] = fmt.Sprintf("org%02d", i)
	}
	s.up.AddUser(with(bob(), func(c map[string]any) { c["groups"] = many; c[githubtest.ClaimTeams] = []any{} }))
	s.up.LoginAs("583231")
	id, err := providertest.SignIn(t, s.open(nil), s.up)
	if err != nil {
		t.Fatal(err)
	}
	if len(id.Groups) != github.MaxPages || id.Groups[0] != "org00" || id.Groups[github.MaxPages-1] != "org09" {
		t.Fatalf("groups = %v, want the first %d organizations", id.Groups, github.MaxPages)
	}
	// /user, /user/emails (1 page), /user/orgs (MaxPages), /user/teams (1)
	if n := s.up.Requests(providertest.UserinfoPath); n != 3+github.MaxPages {
		t.Fatalf("API requests = %d, want %d", n, 3+github.MaxPages)
	}
	if !strings.Contains(s.logs.String(), "github: more pages than read") {
		t.Fatalf("no warning about the ignored pages in the logs:\n%s", s.logs)
	}
}

func TestRefreshAfterLeavingTheOrganization(t *testing.T) {
	for _, app := range []githubtest.Settings{{}, {OAuthApp: true}} {
		t.Run(fmt.Sprintf("OAuthApp=%v", app.OAuthApp), func(t *testing.T) {
			s := newSetup(t, app)
			s.up.AddUser(bob())
			s.up.LoginAs("583231")
			c := s.open(func(c *github.Config) { c.Orgs = []string{"acme"} })
			id, err := providertest.SignIn(t, c, s.up)
			if err != nil {
				t.Fatal(err)
			}
			s.up.SetClaim("583231", "groups", []any{"widgets"})
			s.up.SetClaim("583231", githubtest.ClaimTeams, []any{})
			_, err = c.Refresh(context.Background(), id)
			var d *providers.DeniedError
			if !errors.As(err, &d) || d.Reason != github.DefaultNotAllowedReason {
				t.Fatalf("err = %v, want DeniedError", err)
			}
		})
	}
}

// scripted is a GitHub whose token endpoint and /api/v3/user answer as
// told, for error shapes the fake only makes in some states.
type scripted struct {
	tokenStatus int
	tokenType   string
	tokenBody   string
	userStatus  int
	userHeader  map[string]string
	userBody    string
}

func (sc scripted) serve(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login/oauth/access_token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", sc.tokenType)
		w.WriteHeader(sc.tokenStatus)
		fmt.Fprint(w, sc.tokenBody)
	})
	mux.HandleFunc("GET /api/v3/user", func(w http.ResponseWriter, r *http.Request) {
		for k, v := range sc.userHeader {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(sc.userStatus)
		fmt.Fprint(w, sc.userBody)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

const (
	formType = "application/x-www-form-urlencoded; charset=utf-8"
	jsonType = "application/json; charset=utf-8"
	okToken  = "access_token=gho_16C7e42F292c6912E7710c838347Ae178B4a&scope=read%3Auser%2Cuser%3Aemail&token_type=bearer"
)

// GitHub's error shapes, classified: token errors come in a 200 answer,
// form-encoded or JSON; the API's 401 Bad credentials body.
func TestErrorShapes(t *testing.T) {
	badCredentials := `{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest","status":"401"}`
	tests := []struct {
		name            string
		sc              scripted
		wantIs          error
		wantUnavailable bool
		wantMsg         string
	}{
		{
			name:    "bad_verification_code, form-encoded, HTTP 200",
			sc:      scripted{tokenStatus: 200, tokenType: formType, tokenBody: "error=bad_verification_code&error_description=The+code+passed+is+incorrect+or+expired.&error_uri=https%3A%2F%2Fdocs.github.com%2Fapps"},
			wantIs:  providers.ErrInvalidCallback,
			wantMsg: "github: redeem code: invalid upstream callback: token endpoint answered HTTP 200 bad_verification_code: The code passed is incorrect or expired.",
		},
		{
			name:    "bad_verification_code, JSON, HTTP 200",
			sc:      scripted{tokenStatus: 200, tokenType: jsonType, tokenBody: `{"error":"bad_verification_code","error_description":"The code passed is incorrect or expired.","error_uri":"https://docs.github.com/apps"}`},
			wantIs:  providers.ErrInvalidCallback,
			wantMsg: "github: redeem code: invalid upstream callback: token endpoint answered HTTP 200 bad_verification_code: The code passed is incorrect or expired.",
		},
		{
			name:    "incorrect_client_credentials is the config's fault",
			sc:      scripted{tokenStatus: 200, tokenType: jsonType, tokenBody: `{"error":"incorrect_client_credentials","error_description":"The client_id and/or client_secret passed are incorrect."}`},
			wantMsg: "github: redeem code: token endpoint answered HTTP 200 incorrect_client_credentials: The client_id and/or client_secret passed are incorrect.",
		},
		{
			name:    "redirect_uri_mismatch is the config's fault",
			sc:      scripted{tokenStatus: 200, tokenType: formType, tokenBody: "error=redirect_uri_mismatch&error_description=The+redirect_uri+MUST+match+the+registered+callback+URL+for+this+application."},
			wantMsg: "github: redeem code: token endpoint answered HTTP 200 redirect_uri_mismatch: The redirect_uri MUST match the registered callback URL for this application.",
		},
		{
			name:    "401 Bad credentials to the fresh token",
			sc:      scripted{tokenStatus: 200, tokenType: formType, tokenBody: okToken, userStatus: 401, userBody: badCredentials},
			wantIs:  providers.ErrInvalidCallback,
			wantMsg: "github: invalid upstream callback: GitHub API /user answered HTTP 401: Bad credentials",
		},
		{
			name: "403 rate limit",
			sc: scripted{tokenStatus: 200, tokenType: formType, tokenBody: okToken, userStatus: 403,
				userHeader: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1700000000"},
				userBody:   `{"message":"API rate limit exceeded for user ID 1.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}`},
			wantUnavailable: true,
			wantMsg:         "GitHub is unavailable: GitHub API /user answered HTTP 403 (rate limited): API rate limit exceeded for user ID 1.",
		},
		{
			name:    "403 for another reason is a server error",
			sc:      scripted{tokenStatus: 200, tokenType: formType, tokenBody: okToken, userStatus: 403, userBody: `{"message":"Resource protected by organization SAML enforcement."}`},
			wantMsg: "GitHub API /user answered HTTP 403: Resource protected by organization SAML enforcement.",
		},
		{
			name:            "502 from the API",
			sc:              scripted{tokenStatus: 200, tokenType: formType, tokenBody: okToken, userStatus: 502, userBody: `{"message":"Server Error"}`},
			wantUnavailable: true,
			wantMsg:         "GitHub is unavailable: GitHub API /user answered HTTP 502: Server Error",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := tt.sc.serve(t)
			c, err := github.New(context.Background(), providers.Info{ID: "github", Name: "GitHub"}, github.Config{
				BaseURL: base, ClientID: "Iv1.abc", ClientSecret: "s",
			}, providertest.NewDeps(t, nil))
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.HandleCallback(context.Background(), providers.CallbackRequest{
				CallbackURL: providertest.CallbackURL, State: "st", CodeVerifier: "v",
				Query: url.Values{"state": {"st"}, "code": {"c0de"}},
			})
			if err == nil || err.Error() != tt.wantMsg {
				t.Fatalf("err = %v\nwant %s", err, tt.wantMsg)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Fatalf("err = %v, want errors.Is %v", err, tt.wantIs)
			}
			if got := errors.Is(err, providers.ErrUpstreamUnavailable); got != tt.wantUnavailable {
				t.Fatalf("unavailable = %v, want %v", got, tt.wantUnavailable)
			}
			if errors.Is(err, providers.ErrInvalidCallback) != (tt.wantIs == providers.ErrInvalidCallback) {
				t.Fatalf("err = %v: invalid callback classification wrong", err)
			}
		})
	}
}

func TestNextLink(t *testing.T) {
	tests := []struct{ header, want string }{
		{`<https://api.github.com/user/orgs?per_page=100&page=2>; rel="next", <https://api.github.com/user/orgs?per_page=100&page=5>; rel="last"`, "https://api.github.com/user/orgs?per_page=100&page=2"},
		{`<https://api.github.com/user/orgs?page=1>; rel="first", <https://api.github.com/user/orgs?page=3>; rel="next"`, "https://api.github.com/user/orgs?page=3"},
		{`<https://api.github.com/user/orgs?page=1>; rel="prev first"`, ""},
		{`<https://x/a?q=a,b>; rel=next`, "https://x/a?q=a,b"}, // a comma inside <...> belongs to the URL
		{`<https://x/a>; title="x"; REL="Next"`, "https://x/a"},
		{``, ""},
		{`garbage`, ""},
		{`<unterminated; rel="next"`, ""},
	}
	for _, tt := range tests {
		if got := github.NextLink(tt.header); got != tt.want {
			t.Errorf("NextLink(%q) = %q, want %q", tt.header, got, tt.want)
		}
	}
}

// A next link that leaves the API is not followed: the token would go
// elsewhere.
func TestNextLinkOffTheAPI(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login/oauth/access_token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", formType)
		fmt.Fprint(w, okToken)
	})
	mux.HandleFunc("GET /api/v3/user", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"id":1,"login":"a"}`)
	})
	mux.HandleFunc("GET /api/v3/user/emails", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", `<http://127.0.0.2:9/steal>; rel="next"`)
		fmt.Fprint(w, `[]`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c, err := github.New(context.Background(), providers.Info{ID: "github"}, github.Config{BaseURL: srv.URL, ClientID: "a", ClientSecret: "s"}, providertest.NewDeps(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.HandleCallback(context.Background(), providers.CallbackRequest{
		CallbackURL: providertest.CallbackURL, State: "st", Query: url.Values{"state": {"st"}, "code": {"c"}},
	})
	if want := "github: GitHub API /user/emails: the next page link leaves the API"; err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
}

// The fake answers in GitHub's documented shapes: token errors in a 200
// answer (form-encoded by default, JSON on request) and the API's 401.
func TestFakeSpeaksGitHub(t *testing.T) {
	up := githubtest.New(t, githubtest.Settings{})
	form := url.Values{"client_id": {providertest.ClientID}, "client_secret": {providertest.ClientSecret}, "code": {"used-or-unknown"}}
	tests := []struct {
		name, method, path, accept, auth string
		body                             string
		wantStatus                       int
		wantType                         string
		wantBody                         string
	}{
		{
			name: "token error, form-encoded", method: "POST", path: githubtest.TokenPath, body: form.Encode(),
			wantStatus: 200, wantType: "application/x-www-form-urlencoded; charset=utf-8",
			wantBody: "error=bad_verification_code&error_description=The+code+passed+is+incorrect+or+expired.&error_uri=https%3A%2F%2Fdocs.github.com%2Fapps%2Fmanaging-oauth-apps%2Ftroubleshooting-oauth-app-access-token-request-errors%2F%23bad-verification-code",
		},
		{
			name: "token error, JSON", method: "POST", path: githubtest.TokenPath, accept: "application/json", body: form.Encode(),
			wantStatus: 200, wantType: "application/json; charset=utf-8",
			wantBody: `{"error":"bad_verification_code","error_description":"The code passed is incorrect or expired.","error_uri":"https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code"}` + "\n",
		},
		{
			name: "wrong client secret", method: "POST", path: githubtest.TokenPath, accept: "application/json",
			body:       url.Values{"client_id": {providertest.ClientID}, "client_secret": {"wrong"}, "code": {"x"}}.Encode(),
			wantStatus: 200, wantType: "application/json; charset=utf-8",
			wantBody: `{"error":"incorrect_client_credentials","error_description":"The client_id and/or client_secret passed are incorrect.","error_uri":"https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#incorrect-client-credentials"}` + "\n",
		},
		{
			name: "API with a bad token", method: "GET", path: githubtest.APIPath + "/user", auth: "token gho_unknown",
			wantStatus: 401, wantType: "application/json; charset=utf-8",
			wantBody: `{"documentation_url":"https://docs.github.com/rest","message":"Bad credentials","status":"401"}` + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, up.URL+tt.path, strings.NewReader(tt.body))
			if tt.body != "" {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			if tt.accept != "" {
				req.Header.Set("Accept", tt.accept)
			}
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus || resp.Header.Get("Content-Type") != tt.wantType || string(body) != tt.wantBody {
				t.Fatalf("got %d %q\n%s\nwant %d %q\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body, tt.wantStatus, tt.wantType, tt.wantBody)
			}
		})
	}
}
