package broker_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/storage"
)

// mgmtFixture has: alice and bob; "app" (confidential, refresh), "api" (a
// resource server: client_credentials, registered scopes), "spa" (public)
// and "other" (confidential).
func mgmtFixture(t *testing.T, dialect, dsn string) *fixture {
	f := newFixture(t, dialect, dsn)
	f.addUser("alice")
	f.addUser("bob")
	f.addClient(storage.Client{ID: appID, Audience: []string{"api"}}, appSecret)
	f.addClient(storage.Client{ID: "api", GrantTypes: []string{"client_credentials"}, Scope: "openid read write"}, "api-secret")
	f.addClient(storage.Client{ID: "spa", Public: true}, "")
	f.addClient(storage.Client{ID: "other"}, "other-secret")
	return f
}

func TestClientCredentials(t *testing.T) {
	tests := []struct {
		name      string
		cc        broker.ClientCredentials
		scope     string
		wantScope string
		code      string
		desc      string
		status    int
	}{
		{name: "all allowed scopes", cc: basic("api", "api-secret"), wantScope: "read write"},
		{name: "one scope", cc: basic("api", "api-secret"), scope: "write", wantScope: "write"},
		{name: "client_secret_post", cc: broker.ClientCredentials{FormID: "api", FormSecret: "api-secret", FormSecretOK: true}, scope: "read", wantScope: "read"},
		{name: "openid is for users", cc: basic("api", "api-secret"), scope: "openid read", code: "invalid_scope", desc: "scope 'openid' is not allowed for client_credentials", status: 400},
		{name: "unregistered scope", cc: basic("api", "api-secret"), scope: "admin", code: "invalid_scope", desc: "scope 'admin' is not allowed for client_credentials", status: 400},
		{name: "client without the grant", cc: basic(appID, appSecret), code: "unauthorized_client", desc: "the client may not use this grant type", status: 400},
		{name: "public client", cc: public("pubcc"), code: "unauthorized_client", desc: "client_credentials needs a confidential client", status: 400},
		{name: "wrong secret", cc: basic("api", "nope"), code: "invalid_client", desc: "client authentication failed", status: 401},
		{name: "no client authentication", cc: broker.ClientCredentials{}, code: "invalid_client", desc: "client authentication is required", status: 401},
	}
	f := mgmtFixture(t, "sqlite", databases(t, "sqlite")(t))
	// A public client with the grant (config validation forbids it; the
	// broker refuses it too).
	f.addClient(storage.Client{ID: "pubcc", Public: true, GrantTypes: []string{"client_credentials"}}, "")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, oerr := f.b.Token(context.Background(), form("grant_type", "client_credentials", "scope", tc.scope), tc.cc, meta)
			if tc.code != "" {
				wantOAuthError(t, "client_credentials", oerr, tc.code, tc.desc, tc.status)
				return
			}
			if oerr != nil {
				t.Fatal(oerr)
			}
			if resp.Scope != tc.wantScope || resp.IDToken != "" || resp.RefreshToken != "" || resp.ExpiresIn != 600 || resp.TokenType != "Bearer" {
				t.Fatalf("response %+v", resp)
			}
			at := claims(t, resp.AccessToken)
			want := map[string]any{"iss": testIssuer, "sub": "api", "client_id": "api", "aud": testIssuer, "scope": tc.wantScope,
				"iat": float64(f.clock.Now().Unix()), "exp": float64(f.clock.Now().Add(10 * time.Minute).Unix()), "jti": at["jti"]}
			if !reflect.DeepEqual(at, want) {
				t.Fatalf("access token claims\n got  %v\n want %v", at, want)
			}
			// It works at introspection, not at userinfo (no user, no openid).
			in, oerr := f.b.Introspect(context.Background(), form("token", resp.AccessToken), basic("api", "api-secret"), meta)
			if oerr != nil || !in.Active || in.Sub != "api" || in.Username != "" {
				t.Fatalf("introspect: %v %+v", oerr, in)
			}
			if _, oerr := f.b.UserInfo(context.Background(), resp.AccessToken); oerr == nil || oerr.Code != "insufficient_scope" {
				t.Fatalf("userinfo with a client token: %v", oerr)
			}
		})
	}
}

func TestIntrospect(t *testing.T) {
	forDialects(t, func(t *testing.T, dsn func(t testing.TB) string, dialect string) {
		f := mgmtFixture(t, dialect, dsn(t))
		ctx := context.Background()
		appCC := basic(appID, appSecret)
		alice := f.login(appID, appCC, "alice", refreshOK)
		bob := f.login(appID, appCC, "bob", "openid")
		spa := f.login("spa", public("spa"), "alice", refreshOK)
		now := f.clock.Now()
		at := claims(t, alice.AccessToken)
		aliceRT := f.getRefresh(alice.RefreshToken)

		wantAccess := &broker.Introspection{Active: true, Scope: refreshOK, ClientID: appID, Username: "alice", TokenType: "Bearer",
			Exp: now.Add(10 * time.Minute).Unix(), Iat: now.Unix(), Sub: "u-alice", Aud: []string{"api"}, Iss: testIssuer, JTI: at["jti"].(string)}
		wantRefresh := &broker.Introspection{Active: true, Scope: refreshOK, ClientID: appID, Username: "alice",
			Exp: now.Add(24 * time.Hour).Unix(), Iat: now.Unix(), Sub: "u-alice", Iss: testIssuer}
		inactive := &broker.Introspection{}
		tests := []struct {
			name  string
			cc    broker.ClientCredentials
			token string
			hint  string
			want  *broker.Introspection
		}{
			{"own access token", appCC, alice.AccessToken, "", wantAccess},
			{"own access token, wrong hint", appCC, alice.AccessToken, "refresh_token", wantAccess},
			{"access token for my audience", basic("api", "api-secret"), alice.AccessToken, "access_token", wantAccess},
			{"other client's access token", basic("other", "other-secret"), alice.AccessToken, "", inactive},
			{"own refresh token", appCC, alice.RefreshToken, "refresh_token", wantRefresh},
			{"refresh token of another client", basic("api", "api-secret"), alice.RefreshToken, "", inactive},
			{"public client's refresh token, asked by a confidential one", appCC, spa.RefreshToken, "", inactive},
			{"unknown opaque token", appCC, "no-such-token", "", inactive},
			{"garbage JWT", appCC, "a.b.c", "", inactive},
			{"ID token", appCC, alice.IDToken, "", inactive},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				got, oerr := f.b.Introspect(ctx, form("token", tc.token, "token_type_hint", tc.hint), tc.cc, meta)
				if oerr != nil {
					t.Fatal(oerr)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("introspection\n got  %+v\n want %+v", got, tc.want)
				}
			})
		}
		if b, _ := json.Marshal(inactive); string(b) != `{"active":false}` {
			t.Fatalf("inactive answer %s", b)
		}

		t.Run("client authentication", func(t *testing.T) {
			for _, c := range []struct {
				name   string
				cc     broker.ClientCredentials
				desc   string
				status int
			}{
				{"none", broker.ClientCredentials{}, "client authentication is required", 401},
				{"wrong secret", basic(appID, "wrong"), "client authentication failed", 401},
				{"unknown client", basic("ghost", "x"), "client authentication failed", 401},
				{"public client", public("spa"), "introspection needs client authentication", 401},
			} {
				_, oerr := f.b.Introspect(ctx, form("token", alice.AccessToken), c.cc, meta)
				wantOAuthError(t, c.name, oerr, "invalid_client", c.desc, c.status)
			}
			_, oerr := f.b.Introspect(ctx, url0(), appCC, meta)
			wantOAuthError(t, "no token", oerr, "invalid_request", "token is required", 400)
		})

		t.Run("state changes", func(t *testing.T) {
			check := func(what, tok string, want *broker.Introspection) {
				t.Helper()
				got, oerr := f.b.Introspect(ctx, form("token", tok), appCC, meta)
				if oerr != nil {
					t.Fatal(oerr)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s:\n got  %+v\n want %+v", what, got, want)
				}
			}
			// A disabled user's tokens are inactive.
			f.setUserDisabled("u-bob")
			check("disabled user's access token", bob.AccessToken, inactive)

			// Rotated: active for the grace window, then not.
			f.clock.Advance(time.Minute)
			next, oerr := f.refresh(appCC, alice.RefreshToken)
			if oerr != nil {
				t.Fatal(oerr)
			}
			rotated := *wantRefresh
			rotated.Exp = f.clock.Now().Add(2 * time.Second).Unix()
			check("rotated, inside the grace window", alice.RefreshToken, &rotated)
			f.clock.Advance(3 * time.Second)
			check("rotated, after the grace window", alice.RefreshToken, inactive)
			succ := *wantRefresh
			succ.Iat, succ.Exp = f.clock.Now().Add(-3*time.Second).Unix(), f.clock.Now().Add(-3*time.Second+24*time.Hour).Unix()
			check("successor", next.RefreshToken, &succ)

			// Expired access token.
			f.clock.Advance(10 * time.Minute)
			check("expired access token", alice.AccessToken, inactive)
			_ = aliceRT
		})
	})
}

func url0() map[string][]string { return map[string][]string{} }

func TestRevoke(t *testing.T) {
	forDialects(t, func(t *testing.T, dsn func(t testing.TB) string, dialect string) {
		f := mgmtFixture(t, dialect, dsn(t))
		ctx := context.Background()
		appCC := basic(appID, appSecret)

		// Access token: denied at userinfo and introspection until it expires.
		alice := f.login(appID, appCC, "alice", refreshOK)
		if oerr := f.b.Revoke(ctx, form("token", alice.AccessToken, "token_type_hint", "access_token"), appCC, meta); oerr != nil {
			t.Fatal(oerr)
		}
		if _, oerr := f.b.UserInfo(ctx, alice.AccessToken); oerr == nil || oerr.Description != "the access token was revoked" {
			t.Fatalf("userinfo after revocation: %v", oerr)
		}
		if in, _ := f.b.Introspect(ctx, form("token", alice.AccessToken), appCC, meta); in.Active {
			t.Fatal("revoked access token is active")
		}
		ttl, err := f.eph.TTL(ctx, "revoked-jti:"+claims(t, alice.AccessToken)["jti"].(string))
		if err != nil || ttl != 10*time.Minute {
			t.Fatalf("denylist entry TTL %v %v, want the token's remaining 10m", ttl, err)
		}
		// The refresh token is untouched by revoking an access token.
		next, oerr := f.refresh(appCC, alice.RefreshToken)
		if oerr != nil {
			t.Fatal(oerr)
		}

		// Refresh token: the whole family goes.
		if oerr := f.b.Revoke(ctx, form("token", next.RefreshToken), appCC, meta); oerr != nil {
			t.Fatal(oerr)
		}
		for _, rt := range []string{alice.RefreshToken, next.RefreshToken} {
			if r := f.getRefresh(rt); r.RevokedAt.IsZero() {
				t.Fatal("a token of the revoked family is not revoked")
			}
		}
		_, oerr = f.refresh(appCC, next.RefreshToken)
		wantOAuthError(t, "refresh after revocation", oerr, "invalid_grant", "the refresh token is invalid, expired or revoked", 400)
		revoked := f.events("token.revoked")
		if len(revoked) != 2 || revoked[0].Data["token_type"] != "access_token" || revoked[1].Data["token_type"] != "refresh_token" ||
			revoked[1].Data["revoked"] != float64(2) || revoked[1].UserID != "u-alice" {
			t.Fatalf("token.revoked events %+v", revoked)
		}

		// A public client revokes its own token by client_id.
		spa := f.login("spa", public("spa"), "alice", refreshOK)
		if oerr := f.b.Revoke(ctx, form("token", spa.RefreshToken), public("spa"), meta); oerr != nil {
			t.Fatal(oerr)
		}
		if r := f.getRefresh(spa.RefreshToken); r.RevokedAt.IsZero() {
			t.Fatal("public client's revocation did nothing")
		}

		bob := f.login(appID, appCC, "bob", refreshOK)
		tests := []struct {
			name   string
			cc     broker.ClientCredentials
			form   map[string][]string
			code   string
			desc   string
			status int
		}{
			{name: "unknown token", cc: appCC, form: form("token", "no-such-token")},
			{name: "unknown token, hinted", cc: appCC, form: form("token", "no-such-token", "token_type_hint", "refresh_token")},
			{name: "garbage JWT", cc: appCC, form: form("token", "x.y.z")},
			{name: "unsupported hint", cc: appCC, form: form("token", "no-such-token", "token_type_hint", "saml")},
			{name: "no token", cc: appCC, form: form(), code: "invalid_request", desc: "token is required", status: 400},
			{name: "no client authentication", cc: broker.ClientCredentials{}, form: form("token", bob.RefreshToken), code: "invalid_client", desc: "client authentication is required", status: 401},
			{name: "wrong secret", cc: basic(appID, "nope"), form: form("token", bob.RefreshToken), code: "invalid_client", desc: "client authentication failed", status: 401},
			{name: "confidential client without its secret", cc: public(appID), form: form("token", bob.RefreshToken), code: "invalid_client", desc: "client authentication failed", status: 401},
			{name: "other client's refresh token", cc: basic("other", "other-secret"), form: form("token", bob.RefreshToken), code: "unauthorized_client", desc: "the token was not issued to this client", status: 400},
			{name: "other client's access token", cc: basic("other", "other-secret"), form: form("token", bob.AccessToken), code: "unauthorized_client", desc: "the token was not issued to this client", status: 400},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				oerr := f.b.Revoke(ctx, tc.form, tc.cc, meta)
				if tc.code == "" {
					if oerr != nil {
						t.Fatal(oerr)
					}
					return
				}
				wantOAuthError(t, "revoke", oerr, tc.code, tc.desc, tc.status)
			})
		}
		// None of the refused revocations touched bob's tokens.
		if r := f.getRefresh(bob.RefreshToken); !r.RevokedAt.IsZero() {
			t.Fatal("a refused revocation revoked bob's refresh token")
		}
		if _, oerr := f.b.UserInfo(ctx, bob.AccessToken); oerr != nil {
			t.Fatalf("a refused revocation revoked bob's access token: %v", oerr)
		}
		f.noSecretsLogged(alice.AccessToken, alice.RefreshToken, next.RefreshToken, bob.AccessToken, bob.RefreshToken, spa.RefreshToken, appSecret)
	})
}

func TestDiscovery(t *testing.T) {
	md, err := broker.NewMetadata(testIssuer, []string{"RS256", "ES256"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := md.WithCodeFlow().JSON()
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	algs := []any{"RS256", "PS256", "ES256", "EdDSA"}
	want := map[string]any{
		"token_endpoint":                                           testIssuer + "/token",
		"introspection_endpoint":                                   testIssuer + "/introspect",
		"revocation_endpoint":                                      testIssuer + "/revoke",
		"grant_types_supported":                                    []any{"authorization_code", "refresh_token", "client_credentials"},
		"token_endpoint_auth_methods_supported":                    []any{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"},
		"token_endpoint_auth_signing_alg_values_supported":         algs,
		"introspection_endpoint_auth_methods_supported":            []any{"client_secret_basic", "client_secret_post", "private_key_jwt"},
		"introspection_endpoint_auth_signing_alg_values_supported": algs,
		"revocation_endpoint_auth_methods_supported":               []any{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"},
		"revocation_endpoint_auth_signing_alg_values_supported":    algs,
	}
	for k, v := range want {
		if !reflect.DeepEqual(got[k], v) {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

func TestDiscoveryLogout(t *testing.T) {
	md, err := broker.NewMetadata(testIssuer, []string{"RS256"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		md   broker.Metadata
		want map[string]any
	}{
		{"code flow only", md.WithCodeFlow(), map[string]any{
			"end_session_endpoint": nil, "backchannel_logout_supported": nil, "backchannel_logout_session_supported": nil,
			"frontchannel_logout_supported": nil, "frontchannel_logout_session_supported": nil,
		}},
		{"with logout", md.WithCodeFlow().WithLogout(), map[string]any{
			"end_session_endpoint": testIssuer + "/logout", "backchannel_logout_supported": true, "backchannel_logout_session_supported": true,
			"frontchannel_logout_supported": true, "frontchannel_logout_session_supported": true,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.md.JSON()
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.want {
				if !reflect.DeepEqual(got[k], v) {
					t.Errorf("%s = %v, want %v", k, got[k], v)
				}
			}
		})
	}
}
