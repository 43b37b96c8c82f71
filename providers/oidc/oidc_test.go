package oidc_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/internal/httpclient"
	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/mapping"
	"github.com/latchkeyid/latchkey/providers/oidc"
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
			raw:  `{"issuer":"https://accounts.google.com","clientID":"id","clientSecret":"s"}`,
		},
		{
			name: "everything",
			raw: `{"issuer":"https://login.microsoftonline.com/organizations/v2.0","clientID":"id","clientSecret":"s",
				"tokenEndpointAuthMethod":"client_secret_post","scopes":["openid","email","offline_access"],"prompt":"select_account consent",
				"extraParams":{"domain_hint":"example.com"},"userinfo":true,"trustEmail":true,"trustUpstreamAMR":true,
				"hostedDomain":"example.com","allowedTenants":["9188040d-6c67-4c5b-b112-36a304b66dad"],
				"claimMapping":{"email":"claims.upn","groups":"claims.roles"},"allow":["'staff' in groups"],
				"deny":[{"expr":"claims.?blocked.orValue(false) == true","reason":"blocked"}],"notAllowedReason":"no"}`,
		},
		{
			name: "empty",
			raw:  `{}`,
			want: []providers.FieldProblem{
				{Path: "issuer", Message: "required"},
				{Path: "clientID", Message: "required"},
				{Path: "clientSecret", Message: "required"},
			},
		},
		{
			name: "every key wrong",
			raw: `{"issuer":"http://idp.example.com/?x=1","clientID":" ","clientSecret":"s","tokenEndpointAuthMethod":"private_key_jwt",
				"scopes":["email","bad scope"],"prompt":"none login","extraParams":{"state":"x","nonce":"y","ok":"z"},
				"hostedDomain":"not a domain","allowedTenants":["*","t1"],"claimMapping":{"email":"1"},"redirectURI":"https://x"}`,
			want: []providers.FieldProblem{
				{Path: "redirectURI", Message: "unknown key"},
				{Path: "issuer", Message: "must use https (http only for loopback hosts)"},
				{Path: "clientID", Message: "required"},
				{Path: "tokenEndpointAuthMethod", Message: "must be client_secret_basic or client_secret_post"},
				{Path: "scopes[1]", Message: "must be a scope token (no spaces or quotes)"},
				{Path: "scopes", Message: "must include openid"},
				{Path: "prompt", Message: "none cannot be combined with other values"},
				{Path: "extraParams.nonce", Message: "reserved: Latchkey sets this parameter itself"},
				{Path: "extraParams.state", Message: "reserved: Latchkey sets this parameter itself"},
				{Path: "hostedDomain", Message: "must be a domain name or *"},
				{Path: "allowedTenants", Message: "* allows every tenant: list nothing else"},
				{Path: "claimMapping.email", Message: "must be of type string, not int"},
			},
		},
		{
			name: "issuer with a query and unknown prompt",
			raw:  `{"issuer":"https://idp.example.com/?tenant=1","clientID":"id","clientSecret":"s","prompt":"always"}`,
			want: []providers.FieldProblem{
				{Path: "issuer", Message: "must not have a query"},
				{Path: "prompt", Message: `unknown prompt value "always" (want none, login, consent, select_account)`},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := oidc.Type{}.Validate(json.RawMessage(tt.raw))
			// extraParams problems come from a map: compare as a set.
			if !sameProblems(got, tt.want) {
				t.Fatalf("problems:\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func sameProblems(a, b []providers.FieldProblem) bool {
	if len(a) != len(b) {
		return false
	}
	count := map[providers.FieldProblem]int{}
	for _, p := range a {
		count[p]++
	}
	for _, p := range b {
		count[p]--
	}
	for _, n := range count {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestOpenRefusesInvalidConfig(t *testing.T) {
	_, err := oidc.Type{}.Open(context.Background(), providers.Info{ID: "x"}, json.RawMessage(`{"issuer":""}`), providertest.NewDeps(t, nil))
	var ce *providers.ConfigError
	if !errors.As(err, &ce) || len(ce.Problems) != 3 {
		t.Fatalf("err = %v, want a ConfigError with 3 problems", err)
	}
}

type setup struct {
	t    *testing.T
	up   *providertest.Upstream
	deps providers.Deps
}

func newSetup(t *testing.T) *setup {
	return &setup{t: t, up: providertest.NewUpstream(t), deps: providertest.NewDeps(t, nil)}
}

func (s *setup) open(edit func(*oidc.Config)) *oidc.Connector {
	s.t.Helper()
	cfg := oidc.Config{
		Issuer:       s.up.URL,
		ClientID:     providertest.ClientID,
		ClientSecret: providertest.ClientSecret,
		Scopes:       []string{"openid", "email", "profile", "offline_access"},
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := oidc.New(context.Background(), providers.Info{ID: "corp", Name: "Corp SSO"}, cfg, s.deps)
	if err != nil {
		s.t.Fatalf("open: %v", err)
	}
	return c
}

func TestDiscoveryIsLazyAndCached(t *testing.T) {
	s := newSetup(t)
	c := s.open(nil)
	if n := s.up.Requests(providertest.DiscoveryPath); n != 0 {
		t.Fatalf("Open read discovery %d times; it must do no I/O", n)
	}
	for i := 0; i < 3; i++ {
		if _, err := c.LoginURL(context.Background(), providers.LoginRequest{CallbackURL: providertest.CallbackURL, State: "s"}); err != nil {
			t.Fatalf("LoginURL: %v", err)
		}
	}
	if n := s.up.Requests(providertest.DiscoveryPath); n != 1 {
		t.Fatalf("discovery read %d times, want 1", n)
	}
}

func TestDiscoveryRecoversAfterOutage(t *testing.T) {
	s := newSetup(t)
	c := s.open(nil)
	s.up.SetBehavior(providertest.Behavior{Faults: map[string]providertest.Fault{providertest.DiscoveryPath: {Status: 500}}})
	_, err := c.LoginURL(context.Background(), providers.LoginRequest{CallbackURL: providertest.CallbackURL, State: "s"})
	if !errors.Is(err, providers.ErrUpstreamUnavailable) {
		t.Fatalf("err = %v, want unavailable", err)
	}
	if n := s.up.Requests(providertest.DiscoveryPath); n != 3 {
		t.Fatalf("discovery attempts = %d, want 3 (retried with backoff)", n)
	}
	s.up.SetBehavior(providertest.Behavior{})
	if _, err := providertest.SignIn(t, c, s.up); err != nil {
		t.Fatalf("sign in after the outage: %v", err)
	}
}

func TestDiscoveryProblems(t *testing.T) {
	tests := []struct {
		name     string
		behavior func(up *providertest.Upstream) providertest.Behavior
		wantMsg  string
	}{
		{
			name: "issuer mismatch",
			behavior: func(*providertest.Upstream) providertest.Behavior {
				return providertest.Behavior{DiscoveryIssuer: "https://evil.example"}
			},
			wantMsg: `Corp SSO is unavailable: discovery: issuer "https://evil.example" in the discovery document is not the configured issuer "http://127.0.0.1:`,
		},
		{
			name: "multi-tenant issuer without allowedTenants",
			behavior: func(up *providertest.Upstream) providertest.Behavior {
				return providertest.Behavior{DiscoveryIssuer: up.URL + "/{tenantid}/v2.0"}
			},
			wantMsg: `Corp SSO is unavailable: discovery: issuer "http://127.0.0.1:`,
		},
		{
			name: "http endpoint on a public host",
			behavior: func(*providertest.Upstream) providertest.Behavior {
				return providertest.Behavior{DiscoveryOverrides: map[string]any{"token_endpoint": "http://idp.example.com/token"}}
			},
			wantMsg: "Corp SSO is unavailable: discovery: token_endpoint: must use https (http only for loopback hosts)",
		},
		{
			name: "missing jwks_uri",
			behavior: func(*providertest.Upstream) providertest.Behavior {
				return providertest.Behavior{DiscoveryOverrides: map[string]any{"jwks_uri": ""}}
			},
			wantMsg: "Corp SSO is unavailable: discovery: jwks_uri: missing",
		},
		{
			name: "not JSON",
			behavior: func(*providertest.Upstream) providertest.Behavior {
				return providertest.Behavior{DiscoveryOverrides: map[string]any{"issuer": 42}}
			},
			wantMsg: "Corp SSO is unavailable: discovery: decode: json: cannot unmarshal number into Go struct field metadata.issuer of type string",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSetup(t)
			s.up.SetBehavior(tt.behavior(s.up))
			c := s.open(nil)
			_, err := c.LoginURL(context.Background(), providers.LoginRequest{CallbackURL: providertest.CallbackURL, State: "s"})
			if !errors.Is(err, providers.ErrUpstreamUnavailable) || !strings.HasPrefix(err.Error(), tt.wantMsg) {
				t.Fatalf("err = %v, want prefix %q", err, tt.wantMsg)
			}
		})
	}
}

// A token endpoint at a private address is refused by the dialer's check,
// before connect(2): no packet reaches it.
func TestTokenEndpointAtPrivateAddress(t *testing.T) {
	s := newSetup(t)
	s.up.SetBehavior(providertest.Behavior{DiscoveryOverrides: map[string]any{"token_endpoint": "https://10.0.0.1:9/token"}})
	c := s.open(nil)
	_, err := providertest.SignIn(t, c, s.up)
	if !errors.Is(err, httpclient.ErrForbiddenAddress) || !errors.Is(err, providers.ErrUpstreamUnavailable) {
		t.Fatalf("err = %v, want ErrForbiddenAddress inside ErrUpstreamUnavailable", err)
	}
}

func TestLoginURLParameters(t *testing.T) {
	s := newSetup(t)
	c := s.open(func(cfg *oidc.Config) {
		cfg.Prompt = "consent"
		cfg.ExtraParams = map[string]string{"access_type": "offline"}
		cfg.HostedDomain = "example.com"
	})
	tests := []struct {
		name string
		req  providers.LoginRequest
		want url.Values
	}{
		{
			name: "config prompt",
			req:  providers.LoginRequest{CallbackURL: providertest.CallbackURL, State: "st", Nonce: "no", CodeChallenge: "ch"},
			want: url.Values{
				"client_id": {providertest.ClientID}, "redirect_uri": {providertest.CallbackURL}, "response_type": {"code"},
				"scope": {"openid email profile offline_access"}, "state": {"st"}, "nonce": {"no"},
				"code_challenge": {"ch"}, "code_challenge_method": {"S256"}, "prompt": {"consent"},
				"access_type": {"offline"}, "hd": {"example.com"},
			},
		},
		{
			name: "request prompt and hint win; no PKCE without a challenge",
			req:  providers.LoginRequest{CallbackURL: providertest.CallbackURL, State: "st", Prompt: "login", LoginHint: "bob@example.com"},
			want: url.Values{
				"client_id": {providertest.ClientID}, "redirect_uri": {providertest.CallbackURL}, "response_type": {"code"},
				"scope": {"openid email profile offline_access"}, "state": {"st"}, "prompt": {"login"},
				"login_hint": {"bob@example.com"}, "access_type": {"offline"}, "hd": {"example.com"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := c.LoginURL(context.Background(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(raw)
			if got := u.Query(); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("query:\n got %v\nwant %v", got, tt.want)
			}
			if u.Scheme+"://"+u.Host+u.Path != s.up.URL+providertest.AuthorizePath {
				t.Fatalf("endpoint %s", raw)
			}
		})
	}
}

func TestIdentityRules(t *testing.T) {
	alice := providertest.WantIdentity()
	with := func(f func(*providers.Identity)) providers.Identity {
		id := alice
		id.Groups = append([]string(nil), alice.Groups...)
		f(&id)
		return id
	}
	tests := []struct {
		name       string
		claims     map[string]any
		behavior   providertest.Behavior
		edit       func(*oidc.Config)
		want       providers.Identity
		wantDenied string
		wantErr    error
	}{
		{
			name:   "email_verified false",
			claims: map[string]any{"email_verified": false},
			want:   with(func(id *providers.Identity) { id.EmailVerified = false }),
		},
		{
			name:   "email_verified false but trustEmail",
			claims: map[string]any{"email_verified": false},
			edit:   func(c *oidc.Config) { c.TrustEmail = true },
			want:   alice,
		},
		{
			name:   "email_verified as a string",
			claims: map[string]any{"email_verified": "true"},
			want:   alice,
		},
		{
			name:   "no email is never verified",
			claims: map[string]any{"email": nil},
			edit:   func(c *oidc.Config) { c.TrustEmail = true },
			want:   with(func(id *providers.Identity) { id.Email, id.EmailVerified = "", false }),
		},
		{
			name:   "upstream amr ignored by default",
			claims: map[string]any{"amr": []any{"pwd", "mfa"}},
			want:   alice,
		},
		{
			name:   "upstream amr with trustUpstreamAMR",
			claims: map[string]any{"amr": []any{"pwd", "mfa", "fed"}},
			edit:   func(c *oidc.Config) { c.TrustUpstreamAMR = true },
			want:   with(func(id *providers.Identity) { id.AMR = []string{"fed", "pwd", "mfa"} }),
		},
		{
			name:   "name from given and family name",
			claims: map[string]any{"name": nil, "given_name": "Alice", "family_name": "Liddell"},
			want:   with(func(id *providers.Identity) { id.Name = "Alice Liddell" }),
		},
		{
			name:   "hosted domain matches",
			claims: map[string]any{"hd": "example.com"},
			edit:   func(c *oidc.Config) { c.HostedDomain = "example.com" },
			want:   alice,
		},
		{
			name:       "hosted domain differs",
			claims:     map[string]any{"hd": "other.example"},
			edit:       func(c *oidc.Config) { c.HostedDomain = "example.com" },
			wantDenied: "Sign in with an account of example.com.",
		},
		{
			name:       "hosted domain missing (a consumer account)",
			edit:       func(c *oidc.Config) { c.HostedDomain = "*" },
			wantDenied: "Sign in with an organization account.",
		},
		{
			name:     "userinfo merged over the ID token",
			behavior: providertest.Behavior{UserinfoExtra: map[string]any{"name": "From Userinfo", "amr": []any{"hwk"}, "picture": "x"}},
			edit:     func(c *oidc.Config) { c.Userinfo = true; c.TrustUpstreamAMR = true },
			want:     with(func(id *providers.Identity) { id.Name = "From Userinfo" }),
		},
		{
			name:     "userinfo ignored unless enabled",
			behavior: providertest.Behavior{UserinfoExtra: map[string]any{"name": "From Userinfo"}},
			want:     alice,
		},
		{
			name:     "userinfo for another subject",
			behavior: providertest.Behavior{UserinfoExtra: map[string]any{"sub": "someone-else"}},
			edit:     func(c *oidc.Config) { c.Userinfo = true },
			wantErr:  providers.ErrInvalidCallback,
		},
		{
			name: "CEL mapping",
			edit: func(c *oidc.Config) {
				c.ClaimMapping = mapping.ClaimMapping{
					Groups:   "claims.groups.map(g, 'corp:' + g)",
					Username: "claims.email.split('@')[0] + '@corp'",
				}
				c.Allow = []string{"'corp:staff' in groups"}
			},
			want: with(func(id *providers.Identity) {
				id.Groups = []string{"corp:staff", "corp:admins"}
				id.Username = "alice@corp"
			}),
		},
		{
			name: "CEL deny rule",
			edit: func(c *oidc.Config) {
				c.Deny = []mapping.Rule{{Expr: "'admins' in groups && !emailVerified", Reason: "Verify your email first."}}
			},
			claims:     map[string]any{"email_verified": false},
			wantDenied: "Verify your email first.",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSetup(t)
			for k, v := range tt.claims {
				s.up.SetClaim(providertest.Alice().Subject, k, v)
			}
			s.up.SetBehavior(tt.behavior)
			c := s.open(tt.edit)
			id, err := providertest.SignIn(t, c, s.up)
			var denied *providers.DeniedError
			switch {
			case tt.wantDenied != "":
				if !errors.As(err, &denied) || denied.Reason != tt.wantDenied {
					t.Fatalf("err = %v, want denied %q", err, tt.wantDenied)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			case err != nil:
				t.Fatalf("sign in: %v", err)
			default:
				id.ConnectorData = nil
				if !reflect.DeepEqual(id, tt.want) {
					t.Fatalf("identity:\n got %#v\nwant %#v", id, tt.want)
				}
			}
		})
	}
}

func TestMultiTenantIssuer(t *testing.T) {
	tests := []struct {
		name       string
		tenants    []string
		tid        string
		tokenIss   string // with TENANT replaced by tid
		wantDenied bool
		wantErr    error
	}{
		{name: "allowed tenant", tenants: []string{"t1"}, tid: "t1", tokenIss: "/t1/v2.0"},
		{name: "any tenant", tenants: []string{"*"}, tid: "t9", tokenIss: "/t9/v2.0"},
		{name: "tenant not allowed", tenants: []string{"t1"}, tid: "t2", tokenIss: "/t2/v2.0", wantDenied: true},
		{name: "issuer of another tenant", tenants: []string{"t1", "t2"}, tid: "t1", tokenIss: "/t2/v2.0", wantErr: providers.ErrInvalidCallback},
		{name: "no tid", tenants: []string{"*"}, tid: "", tokenIss: "/t1/v2.0", wantErr: providers.ErrInvalidCallback},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSetup(t)
			if tt.tid != "" {
				s.up.SetClaim(providertest.Alice().Subject, "tid", tt.tid)
			}
			s.up.SetBehavior(providertest.Behavior{
				DiscoveryIssuer: s.up.URL + "/{tenantid}/v2.0",
				IDTokenIssuer:   s.up.URL + tt.tokenIss,
				OmitIss:         true, // Entra ID sends no iss parameter
			})
			c := s.open(func(c *oidc.Config) { c.AllowedTenants = tt.tenants })
			id, err := providertest.SignIn(t, c, s.up)
			var denied *providers.DeniedError
			switch {
			case tt.wantDenied:
				if !errors.As(err, &denied) || denied.Reason != "Accounts of your organization cannot sign in here." {
					t.Fatalf("err = %v, want denied", err)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			case err != nil:
				t.Fatalf("sign in: %v", err)
			case id.Subject != providertest.Alice().Subject:
				t.Fatalf("subject %q", id.Subject)
			}
		})
	}
}

func TestIssParameter(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(q url.Values)
		omitIss bool
		wantErr bool
	}{
		{name: "matching iss", mutate: func(url.Values) {}},
		{name: "iss of another issuer", mutate: func(q url.Values) { q.Set("iss", "https://evil.example") }, wantErr: true},
		{name: "iss missing although advertised", mutate: func(q url.Values) { q.Del("iss") }, wantErr: true},
		{name: "iss missing and not advertised", mutate: func(url.Values) {}, omitIss: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSetup(t)
			s.up.SetBehavior(providertest.Behavior{OmitIss: tt.omitIss})
			c := s.open(nil)
			sec := providertest.NewLoginSecrets()
			raw, err := c.LoginURL(context.Background(), providers.LoginRequest{
				CallbackURL: providertest.CallbackURL, State: sec.State, Nonce: sec.Nonce, CodeChallenge: sec.Challenge,
			})
			if err != nil {
				t.Fatal(err)
			}
			q := authorize(t, raw)
			tt.mutate(q)
			_, err = c.HandleCallback(context.Background(), providers.CallbackRequest{
				CallbackURL: providertest.CallbackURL, Query: q, State: sec.State, Nonce: sec.Nonce, CodeVerifier: sec.Verifier,
			})
			if tt.wantErr != errors.Is(err, providers.ErrInvalidCallback) || (!tt.wantErr && err != nil) {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

// The ID token's lifetime is judged by the injected clock.
func TestIDTokenExpiryUsesInjectedClock(t *testing.T) {
	s := newSetup(t)
	fake := clock.NewFake(time.Now().Add(time.Hour))
	s.deps.Clock = fake
	c := s.open(nil)
	_, err := providertest.SignIn(t, c, s.up)
	if !errors.Is(err, providers.ErrInvalidCallback) || !strings.Contains(err.Error(), "token is expired") {
		t.Fatalf("err = %v, want an expired ID token", err)
	}
}

func TestRefreshWithoutUpstreamRefreshToken(t *testing.T) {
	s := newSetup(t)
	c := s.open(nil)
	id := providertest.WantIdentity()
	got, err := c.Refresh(context.Background(), id)
	if err != nil || !reflect.DeepEqual(got, id) {
		t.Fatalf("Refresh = %#v, %v; want the identity unchanged", got, err)
	}
	if n := s.up.Requests(providertest.TokenPath) + s.up.Requests(providertest.DiscoveryPath); n != 0 {
		t.Fatalf("%d upstream requests for nothing to refresh", n)
	}
}

func TestRefreshAppliesRules(t *testing.T) {
	s := newSetup(t)
	c := s.open(func(c *oidc.Config) {
		c.Deny = []mapping.Rule{{Expr: "'suspended' in groups", Reason: "Your account is suspended."}}
	})
	id, err := providertest.SignIn(t, c, s.up)
	if err != nil {
		t.Fatal(err)
	}
	s.up.SetClaim(providertest.Alice().Subject, "groups", []any{"suspended"})
	_, err = c.Refresh(context.Background(), id)
	var denied *providers.DeniedError
	if !errors.As(err, &denied) || denied.Reason != "Your account is suspended." {
		t.Fatalf("err = %v, want denied", err)
	}
}

// One upstream down does not affect a connector to another.
func TestOtherConnectorsKeepWorking(t *testing.T) {
	down, up := newSetup(t), newSetup(t)
	down.up.Close()
	cDown, cUp := down.open(nil), up.open(nil)
	for i := 0; i < 6; i++ { // enough failures to open the first breaker
		_, err := cDown.LoginURL(context.Background(), providers.LoginRequest{CallbackURL: providertest.CallbackURL, State: "s"})
		if !errors.Is(err, providers.ErrUpstreamUnavailable) {
			t.Fatalf("down connector: %v", err)
		}
	}
	if got := cDown.BreakerState(); got != "open" {
		t.Fatalf("breaker of the down upstream is %s, want open", got)
	}
	if _, err := providertest.SignIn(t, cUp, up.up); err != nil {
		t.Fatalf("healthy connector: %v", err)
	}
}

// authorize follows the login URL to the fake's authorization endpoint and
// returns the callback's query.
func authorize(t *testing.T, loginURL string) url.Values {
	t.Helper()
	client := httpclientNoRedirect()
	resp, err := client.Get(loginURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc.Query()
}

func httpclientNoRedirect() *http.Client {
	return &http.Client{
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Concurrent first logins share one discovery read.
func TestConcurrentDiscovery(t *testing.T) {
	s := newSetup(t)
	c := s.open(nil)
	errs := make(chan error, 20)
	for i := 0; i < cap(errs); i++ {
		go func() {
			_, err := c.LoginURL(context.Background(), providers.LoginRequest{CallbackURL: providertest.CallbackURL, State: "s"})
			errs <- err
		}()
	}
	for i := 0; i < cap(errs); i++ {
		if err := <-errs; err != nil {
			t.Fatalf("LoginURL: %v", err)
		}
	}
	if n := s.up.Requests(providertest.DiscoveryPath); n != 1 {
		t.Fatalf("discovery read %d times by 20 concurrent logins, want 1", n)
	}
}
