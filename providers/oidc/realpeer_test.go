package oidc_test

import (
	"bytes"
	"context"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/internal/httpclient"
	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/mapping"
	"github.com/latchkeyid/latchkey/providers/oidc"
	"github.com/latchkeyid/latchkey/providers/providertest"
)

const (
	peerCallbackURL  = "http://127.0.0.1:5557/callback/real-peer"
	peerClientID     = "latchkey-upstream-client"
	peerClientSecret = "real-peer-client-secret-not-logged"
)

// TestRealPeerOIDCProvider signs in at panva's oidc-provider (the version
// pinned in testdata/op/package-lock.json) through its development login
// and consent forms, maps the claims with CEL, refreshes (the OP rotates
// refresh tokens), lets a deny rule refuse another account, then removes
// the account upstream and expects the refresh to fail with
// ErrUpstreamUserGone.
func TestRealPeerOIDCProvider(t *testing.T) {
	issuer := providertest.StartOIDCProvider(t, filepath.Join("testdata", "op"), map[string]any{
		"clientID":     peerClientID,
		"clientSecret": peerClientSecret,
		"redirectURI":  peerCallbackURL,
		"accounts": map[string]any{
			"alice": map[string]any{
				"email": "alice@example.com", "email_verified": true, "name": "Alice Example",
				"preferred_username": "alice", "groups": []string{"staff", "admins"},
			},
			"mallory": map[string]any{
				"email": "mallory@example.com", "email_verified": false, "name": "Mallory",
				"preferred_username": "mallory", "groups": []string{"staff", "contractors"},
			},
		},
	})

	deps := providertest.NewDeps(t, nil)
	deps.HTTPClient = httpclient.New(httpclient.Options{
		Timeout:         10 * time.Second,
		AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	conn, err := oidc.New(ctx, providers.Info{ID: "op", Name: "Upstream OP"}, oidc.Config{
		Issuer:       issuer,
		ClientID:     peerClientID,
		ClientSecret: peerClientSecret,
		// oidc-provider issues refresh tokens for offline_access, which
		// it honours only with prompt=consent.
		Scopes:   []string{"openid", "email", "profile", "groups", "offline_access"},
		Prompt:   "consent",
		Userinfo: true, // the OP puts scope claims only in userinfo (conformIdTokenClaims)
		Config: mapping.Config{
			ClaimMapping: mapping.ClaimMapping{
				Groups:   "claims.groups.map(g, 'op:' + g)",
				Username: "claims.preferred_username.upperAscii()",
			},
			Allow: []string{"'op:staff' in groups"},
			Deny:  []mapping.Rule{{Expr: "'op:contractors' in groups", Reason: "Contractors use the partner portal."}},
		},
	}, deps)
	if err != nil {
		t.Fatalf("open: %v", err)
	}

	id, err := peerSignIn(ctx, t, conn, "alice")
	if err != nil {
		t.Fatalf("sign in: %v", err)
	}
	want := providers.Identity{
		Subject: "alice", Username: "ALICE", Email: "alice@example.com", EmailVerified: true,
		Name: "Alice Example", Groups: []string{"op:staff", "op:admins"}, AMR: []string{"fed"},
	}
	if got := withoutData(id); !reflect.DeepEqual(got, want) {
		t.Fatalf("identity:\n got %#v\nwant %#v", got, want)
	}
	if len(id.ConnectorData) == 0 {
		t.Fatal("no upstream refresh token kept")
	}

	refreshed, err := conn.Refresh(ctx, id)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if !reflect.DeepEqual(withoutData(refreshed), want) {
		t.Fatalf("refreshed identity:\n got %#v\nwant %#v", withoutData(refreshed), want)
	}
	if bytes.Equal(refreshed.ConnectorData, id.ConnectorData) {
		t.Fatal("the OP rotates refresh tokens, but ConnectorData did not change")
	}
	if refreshed, err = conn.Refresh(ctx, refreshed); err != nil {
		t.Fatalf("second refresh with the rotated token: %v", err)
	}

	_, err = peerSignIn(ctx, t, conn, "mallory")
	var denied *providers.DeniedError
	if !errors.As(err, &denied) || denied.Reason != "Contractors use the partner portal." {
		t.Fatalf("mallory: err = %v, want denied by the deny rule", err)
	}

	removeAccount(ctx, t, issuer, "alice")
	_, err = conn.Refresh(ctx, refreshed)
	if !errors.Is(err, providers.ErrUpstreamUserGone) {
		t.Fatalf("refresh after removal: err = %v, want ErrUpstreamUserGone", err)
	}
	t.Logf("refresh after removal (as expected): %v", err)
}

func withoutData(id providers.Identity) providers.Identity {
	id.ConnectorData = nil
	return id
}

func removeAccount(ctx context.Context, t *testing.T, issuer, sub string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, issuer+"/__admin/remove?sub="+url.QueryEscape(sub), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("admin remove: %d", resp.StatusCode)
	}
}

var formAction = regexp.MustCompile(`<form[^>]*action="([^"]+)"`)

// peerSignIn plays a fresh browser: LoginURL, the OP's login form (login,
// any password), its consent form, and back to the callback.
func peerSignIn(ctx context.Context, t *testing.T, conn *oidc.Connector, login string) (providers.Identity, error) {
	t.Helper()
	sec := providertest.NewLoginSecrets()
	loginURL, err := conn.LoginURL(ctx, providers.LoginRequest{
		CallbackURL: peerCallbackURL, State: sec.State, Nonce: sec.Nonce, CodeChallenge: sec.Challenge,
	})
	if err != nil {
		t.Fatalf("LoginURL: %v", err)
	}
	jar, _ := cookiejar.New(nil) // path-aware, as the OP's cookies need
	browser := &http.Client{
		Jar:     jar,
		Timeout: 10 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), peerCallbackURL) || len(via) > 10 {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, loginURL, nil)
	resp, err := browser.Do(req)
	if err != nil {
		t.Fatalf("GET login URL: %v", err)
	}
	for step := 0; ; step++ {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode/100 == 3 && strings.HasPrefix(loc, peerCallbackURL) {
			cb, err := url.Parse(loc)
			if err != nil {
				t.Fatal(err)
			}
			return conn.HandleCallback(ctx, providers.CallbackRequest{
				CallbackURL: peerCallbackURL, Query: cb.Query(),
				State: sec.State, Nonce: sec.Nonce, CodeVerifier: sec.Verifier,
			})
		}
		m := formAction.FindSubmatch(body)
		if resp.StatusCode != http.StatusOK || m == nil || step > 4 {
			t.Fatalf("step %d: HTTP %d at %s without a form:\n%.2000s", step, resp.StatusCode, resp.Request.URL, body)
		}
		action, err := resp.Request.URL.Parse(html.UnescapeString(string(m[1])))
		if err != nil {
			t.Fatal(err)
		}
		form := url.Values{}
		switch {
		case bytes.Contains(body, []byte(`name="prompt" value="login"`)):
			form.Set("prompt", "login")
			form.Set("login", login)
			form.Set("password", "any password")
		case bytes.Contains(body, []byte(`name="prompt" value="consent"`)):
			form.Set("prompt", "consent")
		default:
			t.Fatalf("step %d: unknown form at %s:\n%.2000s", step, resp.Request.URL, body)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, action.String(), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if resp, err = browser.Do(req); err != nil {
			t.Fatalf("step %d: POST %s: %v", step, action, err)
		}
	}
}
