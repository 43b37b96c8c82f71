package web_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/providers/providertest"
	"github.com/latchkeyid/latchkey/storage"
)

// opDir is the oidc connector's real-peer server (panva's oidc-provider).
var opDir = filepath.Join("..", "providers", "oidc", "testdata", "op")

// TestFederationOIDCProvider is the upstream login end to end: an
// x/oauth2 client signs in at Latchkey, whose login page offers the oidc
// connector; Latchkey signs in at oidc-provider (its login and consent
// forms posted by the test), links the identity to a new user and issues
// an ID token with the claims mapped by CEL. A downstream refresh then
// refreshes upstream (the OP rotates its refresh token); after the
// account is removed upstream, the downstream refresh fails with
// invalid_grant and the family is revoked.
func TestFederationOIDCProvider(t *testing.T) {
	f := newFixture(t)
	callbackURL := f.issuer + "/callback/op"
	opIssuer := providertest.StartOIDCProvider(t, opDir, map[string]any{
		"clientID": "latchkey", "clientSecret": "upstream-secret-not-logged", "redirectURI": callbackURL,
		"accounts": map[string]any{
			"alice": map[string]any{"email": "alice@example.com", "email_verified": true, "name": "Alice Example",
				"preferred_username": "alice", "groups": []string{"staff", "admins"}},
		},
	})
	ctx := t.Context()
	cfg, _ := json.Marshal(map[string]any{
		"issuer": opIssuer, "clientID": "latchkey", "clientSecret": "upstream-secret-not-logged",
		"scopes": []string{"openid", "email", "profile", "groups", "offline_access"}, "prompt": "consent", "userinfo": true,
		"claimMapping": map[string]any{
			"groups":   "claims.groups.map(g, 'op:' + g)",
			"username": "claims.preferred_username.upperAscii()",
		},
	})
	now := time.Now().UTC()
	if err := f.db.CreateConnector(ctx, storage.Connector{ID: "op", Type: "oidc", Name: "Upstream OP", Config: cfg, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	list, _ := f.db.ListConnectors(ctx)
	if err := f.conns.Sync(ctx, list); err != nil {
		t.Fatal(err)
	}
	const appCB = "http://app.example/cb"
	f.addClient(storage.Client{ID: "app", Name: "The App", RedirectURIs: []string{appCB}}, "app-secret")
	conf := f.rp("app", "app-secret", appCB, "openid", "profile", "email", "groups", "offline_access")

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), appCB) || len(via) > 15 {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	get := func(u string) (*http.Response, string) {
		t.Helper()
		resp, err := browser.Get(u)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	post := func(u string, form url.Values) (*http.Response, string) {
		t.Helper()
		resp, err := browser.PostForm(u, form)
		if err != nil {
			t.Fatalf("POST %s: %v", u, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	verifier := oauth2.GenerateVerifier()
	resp, page := get(conf.AuthCodeURL("app-state", oauth2.S256ChallengeOption(verifier)))
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/login" {
		t.Fatalf("want the login page, got %d at %s", resp.StatusCode, resp.Request.URL)
	}
	for _, want := range []string{`action="/login/upstream"`, `name="connector" value="op"`, `Sign in with Upstream OP`, `name="password"`} {
		if !strings.Contains(page, want) {
			t.Fatalf("login page lacks %s:\n%s", want, page)
		}
	}
	form := hidden(t, page)
	form.Set("connector", "op")
	resp, page = post(f.issuer+"/login/upstream", form)
	// The OP's login form, then its consent form; the last answer is
	// Latchkey's redirect to the app.
	for step := 0; !strings.HasPrefix(resp.Header.Get("Location"), appCB); step++ {
		m := regexp.MustCompile(`<form[^>]*action="([^"]+)"`).FindStringSubmatch(page)
		if resp.StatusCode != 200 || m == nil || step > 4 {
			t.Fatalf("step %d: HTTP %d at %s without a form:\n%.2000s", step, resp.StatusCode, resp.Request.URL, page)
		}
		action, _ := resp.Request.URL.Parse(html.UnescapeString(m[1]))
		form := url.Values{}
		switch {
		case strings.Contains(page, `name="prompt" value="login"`):
			form.Set("prompt", "login")
			form.Set("login", "alice")
			form.Set("password", "any")
		case strings.Contains(page, `name="prompt" value="consent"`):
			form.Set("prompt", "consent")
		default:
			t.Fatalf("step %d: unknown form at %s:\n%.2000s", step, resp.Request.URL, page)
		}
		resp, page = post(action.String(), form)
	}
	q := callback(t, resp, page, appCB)
	if q.Get("state") != "app-state" || q.Get("iss") != f.issuer {
		t.Fatalf("authorization response %v", q)
	}
	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	_, _, claims := f.idToken(t, "app", tok)
	for k, want := range map[string]any{
		"preferred_username": "ALICE", "email": "alice@example.com", "email_verified": true, "name": "Alice Example",
		"groups": []any{"op:staff", "op:admins"}, "amr": []any{"fed"},
	} {
		if !reflect.DeepEqual(claims[k], want) {
			t.Errorf("ID token %s = %#v, want %#v", k, claims[k], want)
		}
	}
	sub, _ := claims["sub"].(string)
	ident, err := f.db.GetIdentity(ctx, "op", "alice")
	if err != nil || ident.UserID != sub || len(ident.ConnectorData) == 0 {
		t.Fatalf("identity %v (data %d bytes), err %v; want linked to %s with a sealed refresh token", ident, len(ident.ConnectorData), err, sub)
	}
	if bytes.Contains(ident.ConnectorData, []byte("upstream-secret")) {
		t.Fatal("connector data holds a secret in clear")
	}
	if ev := f.events(t, "identity.linked"); len(ev) != 1 || ev[0].Data["reason"] != "new_user" || ev[0].ConnectorID != "op" {
		t.Fatalf("identity.linked events %+v", ev)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no downstream refresh token")
	}

	// A downstream refresh drives an upstream refresh.
	refresh := func(rt string) (*oauth2.Token, error) {
		return conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt, Expiry: time.Unix(1, 0)}).Token()
	}
	tok2, err := refresh(tok.RefreshToken)
	if err != nil {
		t.Fatalf("downstream refresh: %v", err)
	}
	after, _ := f.db.GetIdentity(ctx, "op", "alice")
	if bytes.Equal(after.ConnectorData, ident.ConnectorData) {
		t.Fatal("the downstream refresh did not refresh upstream (the OP rotates its refresh token)")
	}

	// The account goes away upstream: the next refresh fails.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, opIssuer+"/__admin/remove?sub=alice", nil)
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != http.StatusNoContent {
		t.Fatalf("admin remove: %v %v", r, err)
	}
	_, err = refresh(tok2.RefreshToken)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("refresh after the upstream removal: %v, want invalid_grant", err)
	}
	if ev := f.events(t, "token.upstream_revoked"); len(ev) != 1 || ev[0].Data["reason"] != "upstream user gone" {
		t.Fatalf("token.upstream_revoked events %+v", ev)
	}
	if strings.Contains(f.logs.String(), "upstream-secret-not-logged") {
		t.Fatal("the upstream client secret is in the logs")
	}
}
