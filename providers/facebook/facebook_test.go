package facebook_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/facebook"
	"github.com/latchkeyid/latchkey/providers/facebook/facebooktest"
	"github.com/latchkeyid/latchkey/providers/mapping"
	"github.com/latchkeyid/latchkey/providers/providertest"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want []providers.FieldProblem
	}{
		{name: "minimal", raw: `{"clientID":"1234567890","clientSecret":"s"}`},
		{
			name: "everything",
			raw: `{"clientID":"1234567890","clientSecret":"s","graphAPIVersion":"v21.0","scopes":["public_profile","email"],"pkce":false,
				"facebookURL":"https://www.facebook.com/","graphURL":"https://graph.facebook.com",
				"claimMapping":{"username":"claims.id"},"deny":[{"expr":"!has(claims.email)","reason":"An email address is required."}]}`,
		},
		{
			name: "empty",
			raw:  `{}`,
			want: []providers.FieldProblem{{Path: "clientID", Message: "required"}, {Path: "clientSecret", Message: "required"}},
		},
		{
			name: "every key wrong",
			raw: `{"clientID":"1","clientSecret":"s","graphAPIVersion":"19.0","scopes":["public_profile,email"],"pkce":"yes",
				"facebookURL":"http://www.facebook.com","graphURL":"https://graph.facebook.com/?v=1","appSecretProof":true}`,
			want: []providers.FieldProblem{
				{Path: "appSecretProof", Message: "unknown key"},
				{Path: "pkce", Message: "must be true or false"},
				{Path: "graphAPIVersion", Message: "must be a Graph API version such as v19.0"},
				{Path: "scopes[0]", Message: "must be a permission name (no spaces, commas or quotes)"},
				{Path: "facebookURL", Message: "must use https (http only for loopback hosts)"},
				{Path: "graphURL", Message: "must not have a query"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := facebook.Type{}.Validate(json.RawMessage(tt.raw))
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("problems:\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestLoginURL(t *testing.T) {
	off := false
	tests := []struct {
		name     string
		cfg      facebook.Config
		endpoint string
		want     url.Values
	}{
		{
			name:     "defaults",
			cfg:      facebook.Config{ClientID: "1234567890", ClientSecret: "s"},
			endpoint: "https://www.facebook.com/v19.0/dialog/oauth",
			want: url.Values{
				"client_id": {"1234567890"}, "redirect_uri": {"https://id.example.com/cb"}, "response_type": {"code"},
				"scope": {"public_profile email"}, "state": {"st"}, "code_challenge": {"ch"}, "code_challenge_method": {"S256"},
			},
		},
		{
			name:     "another version, no PKCE",
			cfg:      facebook.Config{ClientID: "1234567890", ClientSecret: "s", GraphAPIVersion: "v22.0", PKCE: &off, Scopes: []string{"email"}},
			endpoint: "https://www.facebook.com/v22.0/dialog/oauth",
			want: url.Values{
				"client_id": {"1234567890"}, "redirect_uri": {"https://id.example.com/cb"}, "response_type": {"code"},
				"scope": {"email"}, "state": {"st"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := facebook.New(context.Background(), providers.Info{ID: "facebook"}, tt.cfg, providertest.NewDeps(t, nil))
			if err != nil {
				t.Fatal(err)
			}
			raw, err := c.LoginURL(context.Background(), providers.LoginRequest{
				CallbackURL: "https://id.example.com/cb", State: "st", Nonce: "n", CodeChallenge: "ch", LoginHint: "x", Prompt: "login",
			})
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

func open(t *testing.T, up *providertest.Upstream, deps providers.Deps, edit func(*facebook.Config)) *facebook.Connector {
	t.Helper()
	cfg := facebook.Config{
		ClientID: providertest.ClientID, ClientSecret: providertest.ClientSecret, FacebookURL: up.URL, GraphURL: up.URL,
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := facebook.New(context.Background(), providers.Info{ID: "facebook", Name: "Facebook"}, cfg, deps)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return c
}

func TestIdentity(t *testing.T) {
	tests := []struct {
		name       string
		claims     map[string]any
		behavior   providertest.Behavior
		edit       func(*facebook.Config)
		want       providers.Identity
		wantDenied string
		wantErr    *providers.UpstreamError
	}{
		{
			name:   "no email (declined, or a phone-only account): none, unverified",
			claims: map[string]any{"name": "Carol", "email": ""},
			want:   providers.Identity{Subject: "10229", Name: "Carol", AMR: []string{"fed"}},
		},
		{
			name:   "a mapped email other than the reported one is unverified",
			claims: map[string]any{"name": "Carol", "email": "carol@example.com"},
			edit: func(c *facebook.Config) {
				c.ClaimMapping = mapping.ClaimMapping{Email: "'fb-' + claims.id + '@example.com'", Username: "claims.id"}
			},
			want: providers.Identity{Subject: "10229", Username: "10229", Name: "Carol", Email: "fb-10229@example.com", AMR: []string{"fed"}},
		},
		{
			name:   "deny rule",
			claims: map[string]any{"name": "Carol", "email": ""},
			edit: func(c *facebook.Config) {
				c.Deny = []mapping.Rule{{Expr: "!has(claims.email)", Reason: "Share your email address to sign in."}}
			},
			wantDenied: "Share your email address to sign in.",
		},
		{
			name:     "the user cancels",
			claims:   map[string]any{"name": "Carol"},
			behavior: providertest.Behavior{AuthorizeError: "access_denied"},
			wantErr:  &providers.UpstreamError{Code: "access_denied", Description: "Permissions error"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := facebooktest.New(t, facebooktest.Settings{RequireProof: true})
			up.AddUser(providertest.User{Subject: "10229", Claims: tt.claims})
			up.LoginAs("10229")
			up.SetBehavior(tt.behavior)
			id, err := providertest.SignIn(t, open(t, up, providertest.NewDeps(t, nil), tt.edit), up)
			switch {
			case tt.wantDenied != "":
				var d *providers.DeniedError
				if !errors.As(err, &d) || d.Reason != tt.wantDenied {
					t.Fatalf("err = %v, want DeniedError %q", err, tt.wantDenied)
				}
				return
			case tt.wantErr != nil:
				var ue *providers.UpstreamError
				if !errors.As(err, &ue) || *ue != *tt.wantErr {
					t.Fatalf("err = %#v, want %#v", err, tt.wantErr)
				}
				return
			case err != nil:
				t.Fatalf("sign in: %v", err)
			}
			id.ConnectorData = nil
			if !reflect.DeepEqual(id, tt.want) {
				t.Fatalf("identity:\n got %#v\nwant %#v", id, tt.want)
			}
		})
	}
}

// The access token of a server-side login lasts about 60 days; after
// that Refresh has nothing to re-check with and keeps the identity.
func TestRefreshAfterTheTokenExpired(t *testing.T) {
	up := facebooktest.New(t, facebooktest.Settings{})
	deps := providertest.NewDeps(t, nil)
	clk := clock.NewFake(time.Now())
	deps.Clock = clk
	c := open(t, up, deps, nil)
	id, err := providertest.SignIn(t, c, up)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(59 * 24 * time.Hour)
	if _, err := c.Refresh(context.Background(), id); err != nil {
		t.Fatalf("refresh within the token's life: %v", err)
	}
	before := up.Requests(providertest.UserinfoPath)
	clk.Advance(2 * 24 * time.Hour)
	up.RemoveUser(providertest.Alice().Subject)
	got, err := c.Refresh(context.Background(), id)
	if err != nil {
		t.Fatalf("refresh after expiry: %v", err)
	}
	if !reflect.DeepEqual(got, id) {
		t.Fatalf("identity changed:\n got %#v\nwant %#v", got, id)
	}
	if n := up.Requests(providertest.UserinfoPath); n != before {
		t.Fatalf("/me was called with an expired token")
	}
}

// scripted is a Facebook whose token endpoint and /me answer as told.
type scripted struct {
	tokenStatus int
	tokenBody   string
	meStatus    int
	meBody      string
}

func (sc scripted) serve(t *testing.T) string {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v19.0/oauth/access_token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(sc.tokenStatus)
		fmt.Fprint(w, sc.tokenBody)
	})
	mux.HandleFunc("GET /v19.0/me", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(sc.meStatus)
		fmt.Fprint(w, sc.meBody)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func graphErr(code, subcode int, msg string) string {
	sub := ""
	if subcode != 0 {
		sub = fmt.Sprintf(`,"error_subcode":%d`, subcode)
	}
	return fmt.Sprintf(`{"error":{"message":%q,"type":"OAuthException","code":%d%s,"fbtrace_id":"A1b2C3"}}`, msg, code, sub)
}

const okToken = `{"access_token":"EAAGm0PX4ZCpsBAKvTY","token_type":"bearer","expires_in":5183944}`

// Facebook's error shape, classified: error.code decides.
func TestErrorShapes(t *testing.T) {
	tests := []struct {
		name            string
		sc              scripted
		wantIs          error
		wantUnavailable bool
		wantMsg         string
	}{
		{
			name:    "a used code: 100/36009",
			sc:      scripted{tokenStatus: 400, tokenBody: graphErr(100, 36009, "This authorization code has been used.")},
			wantIs:  providers.ErrInvalidCallback,
			wantMsg: "facebook: redeem code: invalid upstream callback: Facebook Graph API /oauth/access_token answered HTTP 400: OAuthException code 100 subcode 36009: This authorization code has been used. (fbtrace_id A1b2C3)",
		},
		{
			name:    "a wrong app secret: code 1 is the config's fault",
			sc:      scripted{tokenStatus: 400, tokenBody: graphErr(1, 0, "Error validating client secret.")},
			wantMsg: "facebook: redeem code: Facebook Graph API /oauth/access_token answered HTTP 400: OAuthException code 1: Error validating client secret. (fbtrace_id A1b2C3)",
		},
		{
			name:            "rate limited at the token endpoint: code 4",
			sc:              scripted{tokenStatus: 400, tokenBody: graphErr(4, 0, "Application request limit reached")},
			wantUnavailable: true,
			wantMsg:         "Facebook is unavailable: facebook: redeem code: Facebook Graph API /oauth/access_token answered HTTP 400: OAuthException code 4: Application request limit reached (fbtrace_id A1b2C3)",
		},
		{
			name:    "code 190 from /me right after login",
			sc:      scripted{tokenStatus: 200, tokenBody: okToken, meStatus: 400, meBody: graphErr(190, 0, "Invalid OAuth access token - Cannot parse access token")},
			wantIs:  providers.ErrInvalidCallback,
			wantMsg: "facebook: invalid upstream callback: facebook: Facebook Graph API /me answered HTTP 400: OAuthException code 190: Invalid OAuth access token - Cannot parse access token (fbtrace_id A1b2C3)",
		},
		{
			name:            "code 2 from /me: a temporary outage",
			sc:              scripted{tokenStatus: 200, tokenBody: okToken, meStatus: 500, meBody: graphErr(2, 0, "An unexpected error has occurred. Please retry your request later.")},
			wantUnavailable: true,
			wantMsg:         "Facebook is unavailable: Facebook Graph API /me answered HTTP 500: OAuthException code 2: An unexpected error has occurred. Please retry your request later. (fbtrace_id A1b2C3)",
		},
		{
			name:    "an answer that is not Facebook's",
			sc:      scripted{tokenStatus: 200, tokenBody: okToken, meStatus: 404, meBody: `<html>not found</html>`},
			wantMsg: "facebook: Graph API /me answered HTTP 404",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := tt.sc.serve(t)
			c, err := facebook.New(context.Background(), providers.Info{ID: "facebook", Name: "Facebook"}, facebook.Config{
				ClientID: "1", ClientSecret: "s", FacebookURL: base, GraphURL: base,
			}, providertest.NewDeps(t, nil))
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.HandleCallback(context.Background(), providers.CallbackRequest{
				CallbackURL: providertest.CallbackURL, State: "st", CodeVerifier: "v", Query: url.Values{"state": {"st"}, "code": {"c0de"}},
			})
			if err == nil || err.Error() != tt.wantMsg {
				t.Fatalf("err = %v\nwant %s", err, tt.wantMsg)
			}
			if errors.Is(err, providers.ErrInvalidCallback) != (tt.wantIs == providers.ErrInvalidCallback) {
				t.Fatalf("err = %v: invalid callback classification wrong", err)
			}
			if got := errors.Is(err, providers.ErrUpstreamUnavailable); got != tt.wantUnavailable {
				t.Fatalf("unavailable = %v, want %v", got, tt.wantUnavailable)
			}
		})
	}
}

// The appsecret_proof in /me's query never shows in an error.
func TestProofNotInErrors(t *testing.T) {
	up := facebooktest.New(t, facebooktest.Settings{})
	c := open(t, up, providertest.NewDeps(t, nil), nil)
	id, err := providertest.SignIn(t, c, up)
	if err != nil {
		t.Fatal(err)
	}
	up.Close()
	_, err = c.Refresh(context.Background(), id)
	if !errors.Is(err, providers.ErrUpstreamUnavailable) || strings.Contains(err.Error(), "appsecret_proof") {
		t.Fatalf("err = %v, want unavailable without the proof", err)
	}
}

func FuzzParseGraphError(f *testing.F) {
	f.Add([]byte(graphErr(190, 460, "x")))
	f.Add([]byte(`{"error":"invalid_grant"}`))
	f.Add([]byte(`{"error":{"code":"190","message":null}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if e := facebook.ParseGraphError("/me", 400, body); e != nil {
			_ = e.Error()
		}
	})
}
