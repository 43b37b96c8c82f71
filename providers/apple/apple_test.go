package apple_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/apple"
	"github.com/latchkeyid/latchkey/providers/apple/appletest"
	"github.com/latchkeyid/latchkey/providers/mapping"
	"github.com/latchkeyid/latchkey/providers/providertest"
)

func pemOf(t *testing.T, typ string, der []byte) string {
	t.Helper()
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func TestValidate(t *testing.T) {
	p8, _ := appletest.NewKey(t)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sec1, _ := x509.MarshalECPrivateKey(ec)
	rk, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsaDER, _ := x509.MarshalPKCS8PrivateKey(rk)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ := x509.MarshalPKCS8PrivateKey(p384)
	cfg := func(extra map[string]any) string {
		m := map[string]any{"clientID": "com.example.signin", "teamID": "TEAM123456", "keyID": "KEY7890ABC", "privateKey": p8}
		for k, v := range extra {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	tests := []struct {
		name string
		raw  string
		want []providers.FieldProblem
	}{
		{name: "minimal", raw: cfg(nil)},
		{
			name: "everything",
			raw: cfg(map[string]any{"scopes": []string{"email"}, "clientSecretTTL": "4380h", "baseURL": "https://appleid.apple.com",
				"deny": []map[string]string{{"expr": "claims.?is_private_email.orValue(false)", "reason": "Share your real address."}}}),
		},
		{name: "no scopes", raw: cfg(map[string]any{"scopes": []string{}})},
		{
			name: "empty",
			raw:  `{}`,
			want: []providers.FieldProblem{
				{Path: "clientID", Message: "required"}, {Path: "teamID", Message: "required"},
				{Path: "keyID", Message: "required"}, {Path: "privateKey", Message: "required"},
			},
		},
		{
			name: "every key wrong",
			raw: cfg(map[string]any{"teamID": "team", "keyID": "KEY7890ABCD", "privateKey": "file:/etc/AuthKey.p8", "scopes": []string{"openid", "profile"},
				"clientSecretTTL": "4383h", "baseURL": "http://appleid.apple.com", "clientSecret": "x"}),
			want: []providers.FieldProblem{
				{Path: "clientSecret", Message: "unknown key"},
				{Path: "teamID", Message: "must be the 10-character team id"},
				{Path: "keyID", Message: "must be the 10-character key id"},
				{Path: "privateKey", Message: "must be a PEM private key (the .p8 file's content, e.g. file:/etc/latchkey/AuthKey_KEYID.p8)"},
				{Path: "scopes[0]", Message: "must be name or email"},
				{Path: "scopes[1]", Message: "must be name or email"},
				{Path: "clientSecretTTL", Message: "must be between 5m and 4382h30m0s (Apple's limit, about 6 months)"},
				{Path: "baseURL", Message: "must use https (http only for loopback hosts)"},
			},
		},
		{
			name: "a SEC1 key",
			raw:  cfg(map[string]any{"privateKey": pemOf(t, "EC PRIVATE KEY", sec1)}),
			want: []providers.FieldProblem{{Path: "privateKey", Message: `must be a PKCS#8 "PRIVATE KEY" PEM block (the .p8 file), not "EC PRIVATE KEY"`}},
		},
		{
			name: "an RSA key",
			raw:  cfg(map[string]any{"privateKey": pemOf(t, "PRIVATE KEY", rsaDER)}),
			want: []providers.FieldProblem{{Path: "privateKey", Message: "must be an ECDSA P-256 key (a Sign in with Apple key)"}},
		},
		{
			name: "a P-384 key",
			raw:  cfg(map[string]any{"privateKey": pemOf(t, "PRIVATE KEY", p384DER)}),
			want: []providers.FieldProblem{{Path: "privateKey", Message: "must be an ECDSA P-256 key (a Sign in with Apple key)"}},
		},
		{
			name: "garbage inside the PEM block",
			raw:  cfg(map[string]any{"privateKey": pemOf(t, "PRIVATE KEY", []byte("not a key")), "clientSecretTTL": "soon"}),
			want: []providers.FieldProblem{
				{Path: "privateKey", Message: "is not a PKCS#8 private key"},
				{Path: "clientSecretTTL", Message: "must be a duration such as 1h or 720h"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := apple.Type{}.Validate(json.RawMessage(tt.raw))
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("problems:\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

type setup struct {
	t    *testing.T
	p8   string
	pub  *ecdsa.PublicKey
	up   *providertest.Upstream
	deps providers.Deps
	logs *providertest.LogBuffer
	seen []map[string]any
}

func newSetup(t *testing.T) *setup {
	s := &setup{t: t, logs: &providertest.LogBuffer{}}
	s.p8, s.pub = appletest.NewKey(t)
	s.up = appletest.New(t, appletest.Settings{Key: s.pub, OnClientSecret: func(c map[string]any) { s.seen = append(s.seen, c) }})
	s.deps = providertest.NewDeps(t, s.logs)
	return s
}

func (s *setup) open(edit func(*apple.Config)) *apple.Connector {
	s.t.Helper()
	cfg := apple.Config{
		ClientID: providertest.ClientID, TeamID: appletest.TeamID, KeyID: appletest.KeyID, PrivateKey: s.p8, BaseURL: s.up.URL,
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := apple.New(context.Background(), providers.Info{ID: "apple", Name: "Apple"}, cfg, s.deps)
	if err != nil {
		s.t.Fatalf("open: %v", err)
	}
	return c
}

func TestLoginURL(t *testing.T) {
	s := newSetup(t)
	c := s.open(nil)
	got, err := c.LoginURL(context.Background(), providers.LoginRequest{
		CallbackURL: "https://id.example.com/callback/apple", State: "st", Nonce: "no", CodeChallenge: "ch", LoginHint: "a@b.c", Prompt: "login",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := s.up.URL + "/auth/authorize?client_id=" + providertest.ClientID +
		"&code_challenge=ch&code_challenge_method=S256&nonce=no&redirect_uri=https%3A%2F%2Fid.example.com%2Fcallback%2Fapple" +
		"&response_mode=form_post&response_type=code&scope=name%20email&state=st"
	if got != want {
		t.Fatalf("login URL\n got %s\nwant %s", got, want)
	}
}

// The client secret: ES256 by the .p8 key, kid, iss/sub/aud/iat/exp;
// reused while more than a quarter of its lifetime is left, then renewed.
func TestClientSecret(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		ttl      string
		life     time.Duration
		steps    []time.Duration // clock offsets from t0
		wantIats []time.Duration // iat offset of the secret at each step
	}{
		{
			name: "default 1h", life: time.Hour,
			steps:    []time.Duration{0, 44 * time.Minute, 45*time.Minute + time.Second, 89 * time.Minute, 91 * time.Minute},
			wantIats: []time.Duration{0, 0, 45*time.Minute + time.Second, 45*time.Minute + time.Second, 91 * time.Minute},
		},
		{
			name: "Apple's maximum", ttl: "4382h30m", life: apple.MaxClientSecretTTL,
			steps:    []time.Duration{0, 3000 * time.Hour, 3300 * time.Hour},
			wantIats: []time.Duration{0, 0, 3300 * time.Hour},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSetup(t)
			clk := clock.NewFake(t0)
			s.deps.Clock = clk
			c := s.open(func(c *apple.Config) { c.ClientSecretTTL = tt.ttl })
			for i, step := range tt.steps {
				clk.Set(t0.Add(step))
				secret, err := c.ClientSecret()
				if err != nil {
					t.Fatal(err)
				}
				jws, err := jose.ParseSigned(secret, []jose.SignatureAlgorithm{jose.ES256})
				if err != nil {
					t.Fatal(err)
				}
				if kid := jws.Signatures[0].Header.KeyID; kid != appletest.KeyID {
					t.Fatalf("kid = %q", kid)
				}
				payload, err := jws.Verify(s.pub)
				if err != nil {
					t.Fatalf("signature: %v", err)
				}
				var claims map[string]any
				_ = json.Unmarshal(payload, &claims)
				iat := t0.Add(tt.wantIats[i])
				want := map[string]any{
					"iss": appletest.TeamID, "sub": providertest.ClientID, "aud": "https://appleid.apple.com",
					"iat": float64(iat.Unix()), "exp": float64(iat.Add(tt.life).Unix()),
				}
				if !reflect.DeepEqual(claims, want) {
					t.Fatalf("step %d: claims\n got %v\nwant %v", i, claims, want)
				}
			}
		})
	}
}

// The fake checks the client secret with the public key: one signed by
// another key, or naming another team, is invalid_client, a config
// error, not the user's.
func TestClientSecretRefused(t *testing.T) {
	other, _ := appletest.NewKey(t)
	tests := []struct {
		name string
		edit func(*apple.Config)
	}{
		{name: "another key", edit: func(c *apple.Config) { c.PrivateKey = other }},
		{name: "another team", edit: func(c *apple.Config) { c.TeamID = "OTHER12345" }},
		{name: "another key id", edit: func(c *apple.Config) { c.KeyID = "OTHERKEY12" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSetup(t)
			_, err := providertest.SignIn(t, s.open(tt.edit), s.up)
			want := "apple: redeem code (Apple refused the client secret: check teamID, keyID, clientID and privateKey): token endpoint answered HTTP 400 invalid_client"
			if err == nil || err.Error() != want {
				t.Fatalf("err = %v\nwant %s", err, want)
			}
			if errors.Is(err, providers.ErrInvalidCallback) || errors.Is(err, providers.ErrUpstreamUnavailable) {
				t.Fatalf("err = %v: a config error, neither the user's nor an outage", err)
			}
		})
	}
}

// Two logins within the secret's lifetime present the same client
// secret; the fake accepted both.
func TestClientSecretCachedAcrossLogins(t *testing.T) {
	s := newSetup(t)
	c := s.open(nil)
	for i := 0; i < 2; i++ {
		if _, err := providertest.SignIn(t, c, s.up); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.seen) != 2 || !reflect.DeepEqual(s.seen[0], s.seen[1]) {
		t.Fatalf("client secrets seen: %v, want the same one twice", s.seen)
	}
}

// The name arrives only at the first login; MergeIdentity and Refresh
// keep it.
func TestNameOnlyAtFirstLogin(t *testing.T) {
	s := newSetup(t)
	s.up.AddUser(providertest.User{Subject: "001234.5d8a1f.0913", Claims: map[string]any{
		"given_name": "Jane", "family_name": "Appleseed", "email": "jane@example.com", "email_verified": "true",
	}})
	s.up.LoginAs("001234.5d8a1f.0913")
	c := s.open(nil)
	first, err := providertest.SignIn(t, c, s.up)
	if err != nil {
		t.Fatal(err)
	}
	second, err := providertest.SignIn(t, c, s.up)
	if err != nil {
		t.Fatal(err)
	}
	if first.Name != "Jane Appleseed" || second.Name != "" {
		t.Fatalf("names: first login %q, second %q; want \"Jane Appleseed\" then \"\"", first.Name, second.Name)
	}
	merged := c.MergeIdentity(first, second)
	want := second
	want.Name = "Jane Appleseed"
	if !reflect.DeepEqual(merged, want) {
		t.Fatalf("merged:\n got %#v\nwant %#v", merged, want)
	}
	refreshed, err := c.Refresh(context.Background(), merged)
	if err != nil {
		t.Fatal(err)
	}
	if refreshed.Name != "Jane Appleseed" || refreshed.Email != "jane@example.com" {
		t.Fatalf("refreshed %#v", refreshed)
	}
}

func TestIdentity(t *testing.T) {
	relay := "k7x2p9qz4m@privaterelay.appleid.com"
	tests := []struct {
		name       string
		claims     map[string]any
		behavior   providertest.Behavior
		edit       func(*apple.Config)
		want       providers.Identity
		wantRelay  bool
		wantDenied string
		wantErr    *providers.UpstreamError
	}{
		{
			name:      "private relay address, email_verified and is_private_email as strings",
			claims:    map[string]any{"name": "Jane Appleseed", "email": relay, "email_verified": "true", "is_private_email": "true"},
			want:      providers.Identity{Subject: "001234.5d8a1f.0913", Name: "Jane Appleseed", Email: relay, EmailVerified: true, AMR: []string{"fed"}},
			wantRelay: true,
		},
		{
			name:   "email_verified as a boolean",
			claims: map[string]any{"name": "Jane Appleseed", "email": "jane@example.com", "email_verified": true, "is_private_email": false},
			want:   providers.Identity{Subject: "001234.5d8a1f.0913", Name: "Jane Appleseed", Email: "jane@example.com", EmailVerified: true, AMR: []string{"fed"}},
		},
		{
			name:   `email_verified "false"`,
			claims: map[string]any{"name": "Jane Appleseed", "email": "jane@example.com", "email_verified": "false"},
			want:   providers.Identity{Subject: "001234.5d8a1f.0913", Name: "Jane Appleseed", Email: "jane@example.com", AMR: []string{"fed"}},
		},
		{
			name:   "no scopes: no name, no email",
			claims: map[string]any{"name": "Jane Appleseed", "email": "jane@example.com", "email_verified": "true"},
			edit:   func(c *apple.Config) { c.Scopes = []string{} },
			// The fake's ID token still has the email: Apple sends it when
			// the user shared it before.
			want: providers.Identity{Subject: "001234.5d8a1f.0913", Email: "jane@example.com", EmailVerified: true, AMR: []string{"fed"}},
		},
		{
			name:   "a rule refusing relay addresses",
			claims: map[string]any{"name": "Jane Appleseed", "email": relay, "email_verified": "true", "is_private_email": "true"},
			edit: func(c *apple.Config) {
				c.Deny = []mapping.Rule{{Expr: "claims.?is_private_email.orValue(false)", Reason: "Share your real address to sign in."}}
			},
			wantDenied: "Share your real address to sign in.",
		},
		{
			name:   "rules see the first login's user field",
			claims: map[string]any{"name": "Jane Appleseed", "email": "jane@example.com", "email_verified": "true"},
			edit: func(c *apple.Config) {
				c.ClaimMapping = mapping.ClaimMapping{Username: "claims.?user.name.firstName.orValue('').lowerAscii()"}
			},
			want: providers.Identity{Subject: "001234.5d8a1f.0913", Username: "jane", Name: "Jane Appleseed", Email: "jane@example.com", EmailVerified: true, AMR: []string{"fed"}},
		},
		{
			name:     "the user cancels",
			claims:   map[string]any{"email": "jane@example.com"},
			behavior: providertest.Behavior{AuthorizeError: "user_cancelled_authorize"},
			wantErr:  &providers.UpstreamError{Code: "access_denied", Description: "user_cancelled_authorize"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSetup(t)
			s.up.AddUser(providertest.User{Subject: "001234.5d8a1f.0913", Claims: tt.claims})
			s.up.LoginAs("001234.5d8a1f.0913")
			s.up.SetBehavior(tt.behavior)
			id, err := providertest.SignIn(t, s.open(tt.edit), s.up)
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
			if apple.IsPrivateRelay(id.Email) != tt.wantRelay {
				t.Fatalf("IsPrivateRelay(%q) = %v", id.Email, !tt.wantRelay)
			}
		})
	}
}

// postedForm plays the browser at Apple's authorization endpoint and
// returns the form it would post to the callback.
func postedForm(t *testing.T, c *apple.Connector, up *providertest.Upstream, sec providertest.LoginSecrets) url.Values {
	t.Helper()
	u, err := c.LoginURL(context.Background(), providers.LoginRequest{
		CallbackURL: providertest.CallbackURL, State: sec.State, Nonce: sec.Nonce, CodeChallenge: sec.Challenge,
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	action, form, err := providertest.ParseFormPost(page)
	if err != nil || action != providertest.CallbackURL {
		t.Fatalf("form_post page: action %q, %v\n%s", action, err, page)
	}
	return form
}

// The user field is unsigned browser input: garbage costs the name, not
// the login; an email in it is never used.
func TestUserFieldIsNotTrusted(t *testing.T) {
	tests := []struct {
		name, field, wantName string
	}{
		{name: "not JSON", field: "{not json", wantName: ""},
		{name: "too long", field: `{"name":{"firstName":"` + strings.Repeat("a", 5000) + `"}}`, wantName: ""},
		{name: "another email in it", field: `{"name":{"firstName":"Eve","lastName":"\u0007Mallory"},"email":"ceo@example.com"}`, wantName: "Eve Mallory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSetup(t)
			c := s.open(nil)
			sec := providertest.NewLoginSecrets()
			form := postedForm(t, c, s.up, sec)
			if !form.Has("user") {
				t.Fatalf("the first login's form has no user field: %v", form)
			}
			form.Set("user", tt.field)
			id, err := c.HandleCallback(context.Background(), providers.CallbackRequest{
				CallbackURL: providertest.CallbackURL, Query: form, State: sec.State, Nonce: sec.Nonce, CodeVerifier: sec.Verifier,
			})
			if err != nil {
				t.Fatal(err)
			}
			if id.Name != tt.wantName || id.Email != "alice@example.com" {
				t.Fatalf("name %q email %q, want %q and the ID token's email", id.Name, id.Email, tt.wantName)
			}
		})
	}
}

// Apple's authorization endpoint refuses scopes without form_post, and
// scopes joined by "+": the fake holds the connector to both.
func TestFakeHoldsAppleRules(t *testing.T) {
	s := newSetup(t)
	for _, q := range []string{
		"client_id=" + providertest.ClientID + "&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&response_type=code&scope=name%20email&state=s",
		"client_id=" + providertest.ClientID + "&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&response_type=code&response_mode=form_post&scope=name+email&state=s",
	} {
		resp, err := http.Get(s.up.URL + "/auth/authorize?" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: status %d, want 400", q, resp.StatusCode)
		}
	}
}

func TestIsPrivateRelay(t *testing.T) {
	for in, want := range map[string]bool{
		"x@privaterelay.appleid.com": true, "x@PrivateRelay.AppleID.com": true, "x@appleid.com": false,
		"privaterelay.appleid.com": false, "x@privaterelay.appleid.com.evil": false, "": false,
	} {
		if got := apple.IsPrivateRelay(in); got != want {
			t.Errorf("IsPrivateRelay(%q) = %v", in, got)
		}
	}
}

func FuzzParseUser(f *testing.F) {
	f.Add(`{"name":{"firstName":"Jane","lastName":"Appleseed"},"email":"j@example.com"}`)
	f.Add(`{"name":null}`)
	f.Add(`{"name":{"firstName":1}}`)
	f.Add("\"\\u0000\"")
	f.Fuzz(func(t *testing.T, field string) {
		u, ok := apple.ParseUser(field)
		if !ok {
			return
		}
		if n := u.FullName(); len(n) > 200+len("…") {
			t.Fatalf("FullName is %d bytes", len(n))
		}
	})
}

func ExampleIsPrivateRelay() {
	fmt.Println(apple.IsPrivateRelay("k7x2p9qz4m@privaterelay.appleid.com"))
	// Output: true
}

// Neither the client secret, nor the key, nor a token or code is logged.
func TestNothingSecretLogged(t *testing.T) {
	s := newSetup(t)
	c := s.open(nil)
	id, err := providertest.SignIn(t, c, s.up)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Refresh(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	secret, err := c.ClientSecret()
	if err != nil {
		t.Fatal(err)
	}
	logs := s.logs.String()
	if !strings.Contains(logs, "apple login") {
		t.Fatalf("no login logged:\n%s", logs)
	}
	key := strings.Split(strings.TrimSpace(s.p8), "\n")[1]
	for _, v := range append(s.up.Secrets(), secret, key) {
		if strings.Contains(logs, v) {
			t.Fatalf("a secret (%.8s…) is in the logs", v)
		}
	}
}
