package broker_test

import (
	"context"
	"encoding/hex"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/broker/oauth2"
	"github.com/latchkeyid/latchkey/storage"
)

const (
	appID     = "app"
	appSecret = "app-secret"
	refreshOK = "openid profile email offline_access"
)

// TestRefreshRotationConcurrent: 20 parallel refreshes of one token all
// succeed inside the grace window with one successor; after the window
// the old token revokes the family, the successor with it.
func TestRefreshRotationConcurrent(t *testing.T) {
	forDialects(t, func(t *testing.T, dsn func(t testing.TB) string, dialect string) {
		f := newFixture(t, dialect, dsn(t))
		f.addUser("alice")
		f.addClient(storage.Client{ID: appID}, appSecret)
		cc := basic(appID, appSecret)
		first := f.login(appID, cc, "alice", refreshOK)
		if first.RefreshToken == "" {
			t.Fatal("code exchange with offline_access issued no refresh token")
		}

		const n = 20
		type result struct {
			resp *oauth2.TokenResponse
			err  *oauth2.Error
		}
		results := make([]result, n)
		startGate := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-startGate
				results[i].resp, results[i].err = f.refresh(cc, first.RefreshToken)
			})
		}
		close(startGate)
		wg.Wait()
		successor := ""
		for i, r := range results {
			if r.err != nil {
				t.Fatalf("refresh #%d: %v (status %d)", i, r.err, r.err.Status)
			}
			if successor == "" {
				successor = r.resp.RefreshToken
			}
			if r.resp.RefreshToken != successor {
				t.Fatalf("refresh #%d answered another successor", i)
			}
			if r.resp.AccessToken == "" || r.resp.IDToken == "" || r.resp.Scope != refreshOK {
				t.Fatalf("refresh #%d: incomplete response %+v", i, r.resp)
			}
		}
		if successor == first.RefreshToken {
			t.Fatal("the successor is the presented token")
		}
		old := f.getRefresh(first.RefreshToken)
		if old.RotatedAt.IsZero() || old.SuccessorHash != sha256Hex(successor) {
			t.Fatalf("presented token after the race: rotated %v, successor hash %q; want the answered successor", old.RotatedAt, old.SuccessorHash)
		}
		next := f.getRefresh(successor)
		if next.ParentHash != old.Hash || next.FamilyID != old.FamilyID || !next.RotatedAt.IsZero() || !next.RevokedAt.IsZero() {
			t.Fatalf("successor record %+v", next)
		}
		if got := len(f.events("token.refreshed")); got != n {
			t.Fatalf("%d token.refreshed events, want %d", got, n)
		}

		// After the window: the old token is reuse.
		f.clock.Advance(2*time.Second + time.Millisecond)
		_, oerr := f.refresh(cc, first.RefreshToken)
		wantOAuthError(t, "old token after the window", oerr, "invalid_grant", "the refresh token is invalid, expired or revoked", 400)
		_, oerr = f.refresh(cc, successor)
		wantOAuthError(t, "successor after reuse", oerr, "invalid_grant", "the refresh token is invalid, expired or revoked", 400)
		if r := f.getRefresh(successor); r.RevokedAt.IsZero() {
			t.Fatal("the successor is not revoked after reuse of its parent")
		}
		f.noSecretsLogged(first.RefreshToken, successor, first.AccessToken, results[0].resp.AccessToken, appSecret)
		if !strings.Contains(f.logs.String(), "refresh token reused: family revoked") {
			t.Fatalf("reuse not logged:\n%s", f.logs.String())
		}
		reused := f.events("token.refresh_reused")
		if len(reused) != 2 || reused[0].Data["reason"] != "rotated" || reused[0].Data["revoked"] != float64(2) ||
			reused[0].Data["refresh_family"] != old.FamilyID || reused[0].ClientID != appID || reused[0].UserID != "u-alice" {
			t.Fatalf("token.refresh_reused events: %+v", reused)
		}
	})
}

// TestRefreshSequence: each rotation answers a new token that works, with
// the same auth_time and sid, no nonce, and a fresh access token.
func TestRefreshSequence(t *testing.T) {
	forDialects(t, func(t *testing.T, dsn func(t testing.TB) string, dialect string) {
		f := newFixture(t, dialect, dsn(t))
		f.addUser("alice")
		f.addClient(storage.Client{ID: appID}, appSecret)
		cc := basic(appID, appSecret)
		first := f.login(appID, cc, "alice", refreshOK)
		idt := claims(t, first.IDToken)
		if idt["nonce"] != "n0nce" {
			t.Fatalf("first ID token nonce %v", idt["nonce"])
		}
		rt := first.RefreshToken
		for i := range 3 {
			f.clock.Advance(time.Hour)
			resp, oerr := f.refresh(cc, rt)
			if oerr != nil {
				t.Fatalf("refresh %d: %v", i, oerr)
			}
			if resp.RefreshToken == rt || resp.RefreshToken == "" {
				t.Fatalf("refresh %d: no new refresh token", i)
			}
			got := claims(t, resp.IDToken)
			for _, c := range []string{"sub", "auth_time", "sid", "acr"} {
				if got[c] != idt[c] {
					t.Errorf("refresh %d: ID token %s = %v, want %v", i, c, got[c], idt[c])
				}
			}
			if _, ok := got["nonce"]; ok {
				t.Errorf("refresh %d: ID token has a nonce", i)
			}
			if got["iat"] != float64(f.clock.Now().Unix()) || got["email"] != "alice@example.com" {
				t.Errorf("refresh %d: ID token iat %v email %v", i, got["iat"], got["email"])
			}
			at := claims(t, resp.AccessToken)
			if at["sub"] != "u-alice" || at["client_id"] != appID || at["scope"] != refreshOK || at["iat"] != float64(f.clock.Now().Unix()) {
				t.Errorf("refresh %d: access token %v", i, at)
			}
			if resp.ExpiresIn != 600 || resp.TokenType != "Bearer" {
				t.Errorf("refresh %d: expires_in %d token_type %q", i, resp.ExpiresIn, resp.TokenType)
			}
			ui, oerr := f.b.UserInfo(context.Background(), resp.AccessToken)
			if oerr != nil || ui["sub"] != "u-alice" {
				t.Fatalf("refresh %d: userinfo %v %v", i, ui, oerr)
			}
			rt = resp.RefreshToken
		}
	})
}

// TestRefreshErrors is the table of refused refreshes. Each case gets a
// fresh fixture on SQLite (the PostgreSQL paths are the same SQL).
func TestRefreshErrors(t *testing.T) {
	const (
		invalid   = "the refresh token is invalid, expired or revoked"
		otherDesc = "the refresh token was issued to another client"
	)
	tests := []struct {
		name string
		// setup returns the token to present and the credentials.
		setup      func(f *fixture) (rt string, cc clientCreds, extra []string)
		code, desc string
		status     int
		// familyRevoked: the presented token's family ends revoked.
		familyRevoked bool
	}{
		{
			name:  "missing refresh_token",
			setup: func(f *fixture) (string, clientCreds, []string) { return "", appCreds, nil },
			code:  "invalid_request", desc: "refresh_token is required", status: 400,
		},
		{
			name:  "bogus token",
			setup: func(f *fixture) (string, clientCreds, []string) { return "bogus", appCreds, nil },
			code:  "invalid_grant", desc: invalid, status: 400,
		},
		{
			name:  "overlong token",
			setup: func(f *fixture) (string, clientCreds, []string) { return strings.Repeat("x", 300), appCreds, nil },
			code:  "invalid_grant", desc: invalid, status: 400,
		},
		{
			name: "other client's token",
			setup: func(f *fixture) (string, clientCreds, []string) {
				return f.seedRefresh(storage.RefreshToken{ClientID: "other", UserID: "u-alice"}), appCreds, nil
			},
			code: "invalid_grant", desc: otherDesc, status: 400,
		},
		{
			name: "revoked token",
			setup: func(f *fixture) (string, clientCreds, []string) {
				return f.seedRefresh(storage.RefreshToken{ClientID: appID, UserID: "u-alice", RevokedAt: f.clock.Now().Add(-time.Minute)}), appCreds, nil
			},
			code: "invalid_grant", desc: invalid, status: 400, familyRevoked: true,
		},
		{
			name: "idle expired",
			setup: func(f *fixture) (string, clientCreds, []string) {
				return f.seedRefresh(storage.RefreshToken{ClientID: appID, UserID: "u-alice", IssuedAt: f.clock.Now().Add(-24 * time.Hour)}), appCreds, nil
			},
			code: "invalid_grant", desc: invalid, status: 400,
		},
		{
			name: "absolute expired",
			setup: func(f *fixture) (string, clientCreds, []string) {
				return f.seedRefresh(storage.RefreshToken{ClientID: appID, UserID: "u-alice",
					IssuedAt: f.clock.Now().Add(-time.Minute), FamilyCreatedAt: f.clock.Now().Add(-72 * time.Hour)}), appCreds, nil
			},
			code: "invalid_grant", desc: invalid, status: 400,
		},
		{
			name: "rotated after the grace window",
			setup: func(f *fixture) (string, clientCreds, []string) {
				return f.seedRefresh(storage.RefreshToken{ClientID: appID, UserID: "u-alice", RotatedAt: f.clock.Now().Add(-3 * time.Second), SuccessorHash: "x"}), appCreds, nil
			},
			code: "invalid_grant", desc: invalid, status: 400, familyRevoked: true,
		},
		{
			name: "disabled user",
			setup: func(f *fixture) (string, clientCreds, []string) {
				f.setUserDisabled("u-bob")
				return f.seedRefresh(storage.RefreshToken{ClientID: appID, UserID: "u-bob"}), appCreds, nil
			},
			code: "invalid_grant", desc: "the account is not available", status: 400,
		},
		{
			name: "disabled client",
			setup: func(f *fixture) (string, clientCreds, []string) {
				rt := f.seedRefresh(storage.RefreshToken{ClientID: appID, UserID: "u-alice"})
				f.setClientDisabled(appID)
				return rt, appCreds, nil
			},
			code: "invalid_client", desc: "client authentication failed", status: 401,
		},
		{
			name: "client without the refresh_token grant",
			setup: func(f *fixture) (string, clientCreds, []string) {
				return f.seedRefresh(storage.RefreshToken{ClientID: "codeonly", UserID: "u-alice"}), codeOnlyCreds, nil
			},
			code: "unauthorized_client", desc: "the client may not use this grant type", status: 400,
		},
		{
			name: "wider scope",
			setup: func(f *fixture) (string, clientCreds, []string) {
				return f.seedRefresh(storage.RefreshToken{ClientID: appID, UserID: "u-alice", Scopes: []string{"openid", "offline_access"}}), appCreds, []string{"scope", "openid email"}
			},
			code: "invalid_scope", desc: "scope 'email' was not granted", status: 400,
		},
		{
			name: "malformed scope",
			setup: func(f *fixture) (string, clientCreds, []string) {
				return f.seedRefresh(storage.RefreshToken{ClientID: appID, UserID: "u-alice"}), appCreds, []string{"scope", "openid\tx"}
			},
			code: "invalid_scope", desc: "scope contains a character not allowed by RFC 6749 section 3.3", status: 400,
		},
		{
			name: "wrong secret",
			setup: func(f *fixture) (string, clientCreds, []string) {
				return f.seedRefresh(storage.RefreshToken{ClientID: appID, UserID: "u-alice"}), clientCreds{appID, "wrong"}, nil
			},
			code: "invalid_client", desc: "client authentication failed", status: 401,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "sqlite", databases(t, "sqlite")(t))
			f.addUser("alice")
			f.addUser("bob")
			f.addClient(storage.Client{ID: appID}, appSecret)
			f.addClient(storage.Client{ID: "other"}, "other-secret")
			f.addClient(storage.Client{ID: "codeonly", GrantTypes: []string{"authorization_code"}}, "codeonly-secret")
			rt, cc, extra := tc.setup(f)
			_, oerr := f.refresh(basic(cc.id, cc.secret), rt, extra...)
			wantOAuthError(t, "refresh", oerr, tc.code, tc.desc, tc.status)
			if rt == "" || len(rt) > 256 || rt == "bogus" {
				return
			}
			rec := f.getRefresh(rt)
			if tc.familyRevoked != !rec.RevokedAt.IsZero() {
				t.Fatalf("family revoked = %v, want %v", !rec.RevokedAt.IsZero(), tc.familyRevoked)
			}
			if !tc.familyRevoked && !rec.RotatedAt.IsZero() {
				t.Fatal("a refused refresh rotated the token")
			}
			if got := len(f.events("token.refresh_reused")); (got == 1) != tc.familyRevoked {
				t.Fatalf("%d token.refresh_reused events; family revoked %v", got, tc.familyRevoked)
			}
		})
	}
}

type clientCreds struct{ id, secret string }

var (
	appCreds      = clientCreds{appID, appSecret}
	codeOnlyCreds = clientCreds{"codeonly", "codeonly-secret"}
)

func (f *fixture) setUserDisabled(id string) {
	f.t.Helper()
	if err := f.db.UpdateUser(context.Background(), id, func(u storage.User) (storage.User, error) { u.Disabled = true; return u, nil }); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) setClientDisabled(id string) {
	f.t.Helper()
	if err := f.db.UpdateClient(context.Background(), id, func(c storage.Client) (storage.Client, error) { c.Disabled = true; return c, nil }); err != nil {
		f.t.Fatal(err)
	}
}

// TestRefreshGraceZero: with no grace window a second use of a rotated
// token is reuse, even at the same instant.
func TestRefreshGraceZero(t *testing.T) {
	forDialects(t, func(t *testing.T, dsn func(t testing.TB) string, dialect string) {
		f := newFixture(t, dialect, dsn(t), withGrace(0))
		f.addUser("alice")
		f.addClient(storage.Client{ID: appID}, appSecret)
		cc := basic(appID, appSecret)
		first := f.login(appID, cc, "alice", refreshOK)
		resp, oerr := f.refresh(cc, first.RefreshToken)
		if oerr != nil {
			t.Fatal(oerr)
		}
		_, oerr = f.refresh(cc, first.RefreshToken)
		wantOAuthError(t, "second use", oerr, "invalid_grant", "the refresh token is invalid, expired or revoked", 400)
		_, oerr = f.refresh(cc, resp.RefreshToken)
		wantOAuthError(t, "successor after reuse", oerr, "invalid_grant", "the refresh token is invalid, expired or revoked", 400)
	})
}

// TestRefreshGraceWindowEdges: inside the window (to its last instant) the
// rotated token answers the successor, with fresh access tokens.
func TestRefreshGraceWindowEdges(t *testing.T) {
	f := newFixture(t, "sqlite", databases(t, "sqlite")(t))
	f.addUser("alice")
	f.addClient(storage.Client{ID: appID}, appSecret)
	cc := basic(appID, appSecret)
	first := f.login(appID, cc, "alice", refreshOK)
	a, oerr := f.refresh(cc, first.RefreshToken)
	if oerr != nil {
		t.Fatal(oerr)
	}
	f.clock.Advance(2 * time.Second)
	b, oerr := f.refresh(cc, first.RefreshToken)
	if oerr != nil {
		t.Fatalf("at the end of the window: %v", oerr)
	}
	if a.RefreshToken != b.RefreshToken || a.AccessToken == b.AccessToken {
		t.Fatal("inside the window: want the same successor and a new access token")
	}
	// The successor itself still rotates normally.
	if _, oerr := f.refresh(cc, a.RefreshToken); oerr != nil {
		t.Fatalf("successor: %v", oerr)
	}
}

// TestRefreshIdleExpiry uses the real flow: a token unused for the idle
// lifetime is refused without revoking anything; one used in time lives
// on.
func TestRefreshIdleExpiry(t *testing.T) {
	f := newFixture(t, "sqlite", databases(t, "sqlite")(t))
	f.addUser("alice")
	f.addClient(storage.Client{ID: appID}, appSecret)
	cc := basic(appID, appSecret)
	rt := f.login(appID, cc, "alice", refreshOK).RefreshToken
	// Used every 23 hours, the family lives on to its absolute end (72h).
	for i := range 3 {
		f.clock.Advance(23 * time.Hour)
		resp, oerr := f.refresh(cc, rt)
		if oerr != nil {
			t.Fatalf("refresh %d: %v", i, oerr)
		}
		rt = resp.RefreshToken
	}
	f.clock.Advance(3 * time.Hour) // 72h after the code exchange
	_, oerr := f.refresh(cc, rt)
	wantOAuthError(t, "after the absolute lifetime", oerr, "invalid_grant", "the refresh token is invalid, expired or revoked", 400)

	rt = f.login(appID, cc, "alice", refreshOK).RefreshToken
	f.clock.Advance(24 * time.Hour)
	_, oerr = f.refresh(cc, rt)
	wantOAuthError(t, "after the idle lifetime", oerr, "invalid_grant", "the refresh token is invalid, expired or revoked", 400)
	if r := f.getRefresh(rt); !r.RevokedAt.IsZero() || !r.RotatedAt.IsZero() {
		t.Fatalf("expired token was rotated or revoked: %+v", r)
	}
}

// TestRefreshScope: scope narrows the new tokens, not the family.
func TestRefreshScope(t *testing.T) {
	f := newFixture(t, "sqlite", databases(t, "sqlite")(t))
	f.addUser("alice")
	f.addClient(storage.Client{ID: appID}, appSecret)
	cc := basic(appID, appSecret)
	first := f.login(appID, cc, "alice", refreshOK)
	resp, oerr := f.refresh(cc, first.RefreshToken, "scope", "profile openid")
	if oerr != nil {
		t.Fatal(oerr)
	}
	if resp.Scope != "profile openid" || claims(t, resp.AccessToken)["scope"] != "profile openid" {
		t.Fatalf("narrowed scope %q", resp.Scope)
	}
	if idt := claims(t, resp.IDToken); idt["email"] != nil || idt["name"] != "ALICE" {
		t.Fatalf("narrowed ID token %v", idt)
	}
	if got := f.getRefresh(resp.RefreshToken).Scopes; !slices.Equal(got, strings.Fields(refreshOK)) {
		t.Fatalf("successor scopes %q, want the family's", got)
	}
	// Without openid there is no ID token.
	resp, oerr = f.refresh(cc, resp.RefreshToken, "scope", "email")
	if oerr != nil {
		t.Fatal(oerr)
	}
	if resp.IDToken != "" || resp.Scope != "email" {
		t.Fatalf("scope email: id_token %q scope %q", resp.IDToken, resp.Scope)
	}
	// The next refresh without scope has everything again.
	resp, oerr = f.refresh(cc, resp.RefreshToken)
	if oerr != nil || resp.Scope != refreshOK {
		t.Fatalf("full scope again: %v %+v", oerr, resp)
	}
}

// TestRefreshIssuance: who gets a refresh token at the code exchange.
func TestRefreshIssuance(t *testing.T) {
	tests := []struct {
		name      string
		client    storage.Client
		secret    string
		scope     string
		want      bool
		wantScope string
	}{
		{"offline_access", storage.Client{ID: "c"}, "s", "openid offline_access", true, "openid offline_access"},
		{"no offline_access", storage.Client{ID: "c"}, "s", "openid email", false, "openid email"},
		{"no refresh_token grant", storage.Client{ID: "c", GrantTypes: []string{"authorization_code"}}, "s", "openid offline_access", false, "openid"},
		{"public client", storage.Client{ID: "c", Public: true}, "", "openid offline_access", true, "openid offline_access"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "sqlite", databases(t, "sqlite")(t))
			f.addUser("alice")
			f.addClient(tc.client, tc.secret)
			cc := basic("c", tc.secret)
			if tc.secret == "" {
				cc = public("c")
			}
			resp := f.login("c", cc, "alice", tc.scope)
			if (resp.RefreshToken != "") != tc.want || resp.Scope != tc.wantScope || claims(t, resp.AccessToken)["scope"] != tc.wantScope {
				t.Fatalf("refresh token %v scope %q, want %v %q", resp.RefreshToken != "", resp.Scope, tc.want, tc.wantScope)
			}
			if !tc.want {
				return
			}
			rec := f.getRefresh(resp.RefreshToken)
			if rec.ClientID != "c" || rec.UserID != "u-alice" || rec.ParentHash != "" || !rec.IssuedAt.Equal(f.clock.Now()) ||
				!rec.FamilyCreatedAt.Equal(f.clock.Now()) || rec.SID == "" || !slices.Equal(rec.AMR, []string{"pwd"}) {
				t.Fatalf("stored refresh token %+v", rec)
			}
			if _, oerr := f.refresh(cc, resp.RefreshToken); oerr != nil {
				t.Fatalf("refresh: %v", oerr)
			}
		})
	}
}

// TestCodeReuseRevokesRefreshFamily: redeeming a code twice revokes what
// the first redemption issued, the refresh family included.
func TestCodeReuseRevokesRefreshFamily(t *testing.T) {
	f := newFixture(t, "sqlite", databases(t, "sqlite")(t))
	f.addUser("alice")
	f.addClient(storage.Client{ID: appID}, appSecret)
	cc := basic(appID, appSecret)
	code, verifier := f.code(appID, "alice", refreshOK)
	resp := f.exchange(cc, code, verifier)
	_, oerr := f.b.Token(context.Background(), form("grant_type", "authorization_code", "code", code, "redirect_uri", redirectURI, "code_verifier", verifier), cc, meta)
	wantOAuthError(t, "second redemption", oerr, "invalid_grant", "the authorization code is invalid, expired or already used", 400)
	_, oerr = f.refresh(cc, resp.RefreshToken)
	wantOAuthError(t, "refresh after code reuse", oerr, "invalid_grant", "the refresh token is invalid, expired or revoked", 400)
	ev := f.events("token.code_reused")
	if len(ev) != 1 || ev[0].Data["refresh_family"] != f.getRefresh(resp.RefreshToken).FamilyID {
		t.Fatalf("token.code_reused events %+v", ev)
	}
}

// TestDeriveRefreshKey pins the derivation: every replica, and every
// version, must compute the same key from the same secret.
func TestDeriveRefreshKey(t *testing.T) {
	k, err := broker.DeriveRefreshKey([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(k); got != wantRefreshKeyHex {
		t.Fatalf("derived key %s, want %s", got, wantRefreshKeyHex)
	}
	if _, err := broker.DeriveRefreshKey(make([]byte, 31)); err == nil || err.Error() != "derive refresh key: the secret must be at least 32 bytes" {
		t.Fatalf("short secret: %v", err)
	}
}

const wantRefreshKeyHex = "a047074c53b991fbe04ab8b14c4f01c1735874fbf7edd05eb31b5b7fa884521f"

// TestRefreshReuseRevokesAccessTokens: a reused refresh token revokes its
// family and the access tokens the client got under that session until
// then (userinfo: invalid_token); another user's tokens and tokens
// minted later are untouched.
func TestRefreshReuseRevokesAccessTokens(t *testing.T) {
	forDialects(t, func(t *testing.T, dsn func(t testing.TB) string, dialect string) {
		f := newFixture(t, dialect, dsn(t), withGrace(0))
		f.addUser("alice")
		f.addUser("bob")
		f.addClient(storage.Client{ID: appID}, appSecret)
		cc := basic(appID, appSecret)
		ctx := context.Background()
		first := f.login(appID, cc, "alice", refreshOK)
		bobs := f.login(appID, cc, "bob", refreshOK)
		f.clock.Advance(time.Second)
		second, oerr := f.refresh(cc, first.RefreshToken)
		if oerr != nil {
			t.Fatal(oerr)
		}
		for name, at := range map[string]string{"first": first.AccessToken, "second": second.AccessToken, "bob's": bobs.AccessToken} {
			if _, oerr := f.b.UserInfo(ctx, at); oerr != nil {
				t.Fatalf("%s access token before the reuse: %v", name, oerr)
			}
		}
		f.clock.Advance(time.Second)
		_, oerr = f.refresh(cc, first.RefreshToken)
		wantOAuthError(t, "reuse", oerr, "invalid_grant", "the refresh token is invalid, expired or revoked", 400)
		for name, at := range map[string]string{"first": first.AccessToken, "second": second.AccessToken} {
			_, oerr := f.b.UserInfo(ctx, at)
			wantOAuthError(t, name+" access token after the reuse", oerr, "invalid_token", "the access token was revoked", 401)
		}
		if _, oerr := f.b.UserInfo(ctx, bobs.AccessToken); oerr != nil {
			t.Fatalf("bob's access token after alice's reuse: %v", oerr)
		}
		f.clock.Advance(time.Second)
		if again := f.login(appID, cc, "alice", refreshOK); again.AccessToken != "" {
			if _, oerr := f.b.UserInfo(ctx, again.AccessToken); oerr != nil {
				t.Fatalf("a new sign-in's access token: %v", oerr)
			}
		}
	})
}
