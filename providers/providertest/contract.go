package providertest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/internal/httpclient"
	"github.com/latchkeyid/latchkey/providers"
)

// CallbackURL is the callback URL the contract hands connectors. Nothing
// listens there: the contract reads the upstream's redirect to it.
const CallbackURL = "http://127.0.0.1:5556/callback/test"

// PrivateURL is where the broken upstream redirects: a private address the
// hardened client must refuse without sending a packet.
const PrivateURL = "http://10.0.0.1/latchkey-must-not-reach-this"

// Contract describes the connector under test.
type Contract struct {
	// Open returns the connector under test, configured for the fake
	// upstream at upstreamURL: as the issuer for OpenID Connect, or with
	// the endpoints upstreamURL+AuthorizePath, +TokenPath, +UserinfoPath;
	// client ClientID / ClientSecret; deps as given. Its claim choices
	// must turn Alice's claims into WantIdentity.
	Open func(t *testing.T, upstreamURL string, deps providers.Deps) providers.CallbackConnector
	// OpenID says the connector verifies ID tokens: the nonce, unknown
	// key, alg none and missing ID token cases run.
	OpenID bool

	// Upstream are options for the fake: the provider's dialect (paths,
	// answer shapes, ID token issuer). None: the generic fake.
	Upstream []Option
	// Want is what the connector must make of Alice (ConnectorData aside);
	// nil is WantIdentity. For upstreams that know less of a user (no
	// username or groups).
	Want func() providers.Identity
	// Refresh says how the connector re-checks a user; the zero value is
	// RefreshRotates.
	Refresh RefreshStyle
	// NameAtFirstLoginOnly says the upstream sends the user's name only at
	// the first login (Sign in with Apple): Refresh keeps the name it had,
	// and the refresh case changes the email instead.
	NameAtFirstLoginOnly bool
	// NoHints says the upstream takes no login_hint or prompt: that case
	// is skipped even with OpenID.
	NoHints bool
}

// RefreshStyle is how a connector re-checks a user at the upstream.
type RefreshStyle int

const (
	// RefreshRotates: the refresh token grant, and the upstream rotates
	// refresh tokens (a spent one gets invalid_grant).
	RefreshRotates RefreshStyle = iota
	// RefreshReusesToken: the refresh token grant, and the refresh token
	// stays valid (no new one comes back).
	RefreshReusesToken
	// RefreshByAccessToken: no refresh tokens; the connector re-reads the
	// user with the access token it kept (the token endpoint is not
	// called).
	RefreshByAccessToken
)

func (c Contract) want() providers.Identity {
	if c.Want != nil {
		return c.Want()
	}
	return WantIdentity()
}

// WantIdentity is what a connector must make of Alice (ConnectorData
// aside).
func WantIdentity() providers.Identity {
	return providers.Identity{
		Subject:       "248289761001",
		Username:      "alice",
		Email:         "alice@example.com",
		EmailVerified: true,
		Name:          "Alice Example",
		Groups:        []string{"staff", "admins"},
		AMR:           []string{"fed"},
	}
}

// harness is one contract case's world: a fresh upstream and connector.
type harness struct {
	t       *testing.T
	up      *Upstream
	conn    providers.CallbackConnector
	logs    *LogBuffer
	secrets LoginSecrets
	errs    []error
}

func newHarness(t *testing.T, c Contract) *harness {
	t.Helper()
	h := &harness{t: t, up: NewUpstream(t, c.Upstream...), logs: &LogBuffer{}, secrets: NewLoginSecrets()}
	h.conn = c.Open(t, h.up.URL, NewDeps(t, h.logs))
	t.Cleanup(h.checkNoSecrets)
	return h
}

func (h *harness) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*ClientTimeout)
	h.t.Cleanup(cancel)
	return ctx
}

func (h *harness) record(err error) error {
	if err != nil {
		h.errs = append(h.errs, err)
	}
	return err
}

// checkNoSecrets fails when a code, token or the client secret is in the
// logs or in an error the connector returned.
func (h *harness) checkNoSecrets() {
	logs := h.logs.String()
	for _, s := range h.up.Secrets() {
		if s == "" {
			continue
		}
		if strings.Contains(logs, s) {
			h.t.Errorf("a secret the upstream issued (%.6s…) appears in the connector's logs", s)
		}
		for _, err := range h.errs {
			if strings.Contains(err.Error(), s) {
				h.t.Errorf("a secret the upstream issued (%.6s…) appears in an error: %v", s, err)
			}
		}
	}
}

func (h *harness) loginRequest() providers.LoginRequest {
	return providers.LoginRequest{
		CallbackURL:   CallbackURL,
		State:         h.secrets.State,
		Nonce:         h.secrets.Nonce,
		CodeChallenge: h.secrets.Challenge,
	}
}

func (h *harness) loginURL(req providers.LoginRequest) (string, error) {
	return h.conn.LoginURL(h.ctx(), req)
}

// authorize plays the browser at the upstream's authorization endpoint
// and returns the query the upstream sent back to the callback, or the
// form it had the browser post there (response_mode=form_post).
func (h *harness) authorize(loginURL string) url.Values {
	h.t.Helper()
	if !strings.HasPrefix(loginURL, h.up.AuthorizeURL()+"?") {
		h.t.Fatalf("login URL %q is not the upstream's authorization endpoint %s", loginURL, h.up.AuthorizeURL())
	}
	browser := &http.Client{
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := browser.Get(loginURL)
	if err != nil {
		h.t.Fatalf("authorize: %v", err)
	}
	if resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		page, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			h.t.Fatalf("authorize: read the form_post page: %v", err)
		}
		action, form, err := ParseFormPost(page)
		if err != nil {
			h.t.Fatalf("authorize answered 200 without a form_post form: %v", err)
		}
		if action != CallbackURL {
			h.t.Fatalf("upstream posts the browser to %q, not the callback", action)
		}
		return form
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil {
		h.t.Fatalf("authorize answered %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if !strings.HasPrefix(loc.String(), CallbackURL+"?") {
		h.t.Fatalf("upstream redirected to %q, not the callback", loc)
	}
	return loc.Query()
}

// login runs LoginURL and the authorization endpoint.
func (h *harness) login() url.Values {
	h.t.Helper()
	u, err := h.loginURL(h.loginRequest())
	if err != nil {
		h.t.Fatalf("LoginURL: %v", err)
	}
	return h.authorize(u)
}

func (h *harness) callbackRequest(q url.Values) providers.CallbackRequest {
	return providers.CallbackRequest{
		CallbackURL:  CallbackURL,
		Query:        q,
		State:        h.secrets.State,
		Nonce:        h.secrets.Nonce,
		CodeVerifier: h.secrets.Verifier,
	}
}

func (h *harness) callback(req providers.CallbackRequest) (providers.Identity, error) {
	id, err := h.conn.HandleCallback(h.ctx(), req)
	return id, h.record(err)
}

// signIn runs a whole successful login.
func (h *harness) signIn() providers.Identity {
	h.t.Helper()
	id, err := h.callback(h.callbackRequest(h.login()))
	if err != nil {
		h.t.Fatalf("HandleCallback: %v", err)
	}
	return id
}

func (h *harness) refresher() providers.RefreshConnector {
	h.t.Helper()
	r, ok := h.conn.(providers.RefreshConnector)
	if !ok {
		h.t.Fatalf("%T is not a providers.RefreshConnector", h.conn)
	}
	return r
}

func (h *harness) refresh(id providers.Identity) (providers.Identity, error) {
	out, err := h.refresher().Refresh(h.ctx(), id)
	return out, h.record(err)
}

func (h *harness) name() string {
	h.t.Helper()
	c, ok := h.conn.(providers.Connector)
	if !ok {
		h.t.Fatalf("%T is not a providers.Connector", h.conn)
	}
	return c.Name()
}

func wantIs(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("err = %v, want errors.Is(err, %v)", err, target)
	}
	t.Logf("error (as expected): %v", err)
}

func (h *harness) wantUnavailable(err error) {
	h.t.Helper()
	var ue *providers.UnavailableError
	if !errors.As(err, &ue) || !errors.Is(err, providers.ErrUpstreamUnavailable) {
		h.t.Fatalf("err = %v, want a *providers.UnavailableError", err)
	}
	if ue.Connector != h.name() {
		h.t.Fatalf("UnavailableError.Connector = %q, want the connector's name %q", ue.Connector, h.name())
	}
	h.t.Logf("error (as expected): %v", err)
}

func withoutData(id providers.Identity) providers.Identity {
	id.ConnectorData = nil
	return id
}

// untilFirstError runs the login until a step fails and returns that
// error; each network step must end within 2×ClientTimeout.
func (h *harness) untilFirstError() error {
	h.t.Helper()
	bounded := func(step string, f func() error) error {
		start := time.Now()
		err := f()
		if d := time.Since(start); d > 2*ClientTimeout {
			h.t.Fatalf("%s took %v, more than 2× the client timeout %v", step, d, ClientTimeout)
		}
		return h.record(err)
	}
	var u string
	if err := bounded("LoginURL", func() (err error) { u, err = h.loginURL(h.loginRequest()); return err }); err != nil {
		return err
	}
	q := h.authorize(u)
	return bounded("HandleCallback", func() error { _, err := h.conn.HandleCallback(h.ctx(), h.callbackRequest(q)); return err })
}

func allFaults(f Fault) map[string]Fault {
	return map[string]Fault{DiscoveryPath: f, JWKSPath: f, TokenPath: f, UserinfoPath: f}
}

// RunCallbackContract runs the contract every callback connector passes.
func RunCallbackContract(t *testing.T, c Contract) {
	type tcase struct {
		name    string
		openID  bool // only for connectors that verify ID tokens
		hints   bool // only for upstreams that take login_hint and prompt
		rotates bool // only for upstreams that rotate refresh tokens
		run     func(t *testing.T, h *harness)
	}
	cases := []tcase{
		{name: "happy path", run: func(t *testing.T, h *harness) {
			u, err := h.loginURL(h.loginRequest())
			if err != nil {
				t.Fatalf("LoginURL: %v", err)
			}
			q := h.authorize(u)
			auth := h.up.LastAuthorize()
			want := map[string]string{
				"client_id": ClientID, "redirect_uri": CallbackURL, "response_type": "code",
				"state": h.secrets.State, "code_challenge": h.secrets.Challenge, "code_challenge_method": "S256",
			}
			if c.OpenID {
				want["nonce"] = h.secrets.Nonce
			}
			for k, v := range want {
				if got := auth.Get(k); got != v {
					t.Errorf("authorization request %s = %q, want %q", k, got, v)
				}
			}
			id, err := h.callback(h.callbackRequest(q))
			if err != nil {
				t.Fatalf("HandleCallback: %v", err)
			}
			if got := withoutData(id); !reflect.DeepEqual(got, c.want()) {
				t.Fatalf("identity:\n got %#v\nwant %#v", got, c.want())
			}
			tok := h.up.LastToken()
			for k, v := range map[string]string{"grant_type": "authorization_code", "redirect_uri": CallbackURL, "code_verifier": h.secrets.Verifier} {
				if got := tok.Get(k); got != v {
					t.Errorf("token request %s = %q, want %q", k, got, v)
				}
			}
			if len(id.ConnectorData) == 0 {
				t.Fatalf("ConnectorData is empty: the upstream refresh (or access) token was not kept")
			}
			for _, rt := range h.up.RefreshTokens() {
				if bytes.Contains(id.ConnectorData, []byte(rt)) {
					t.Fatalf("ConnectorData holds the upstream refresh token in clear")
				}
			}
		}},
		{name: "login hint and prompt are passed", openID: true, hints: true, run: func(t *testing.T, h *harness) {
			req := h.loginRequest()
			req.LoginHint, req.Prompt = "alice@example.com", "login"
			u, err := h.loginURL(req)
			if err != nil {
				t.Fatalf("LoginURL: %v", err)
			}
			h.authorize(u)
			auth := h.up.LastAuthorize()
			if auth.Get("login_hint") != "alice@example.com" || auth.Get("prompt") != "login" {
				t.Fatalf("login_hint = %q, prompt = %q", auth.Get("login_hint"), auth.Get("prompt"))
			}
		}},
		{name: "state mismatch", run: func(t *testing.T, h *harness) {
			q := h.login()
			q.Set("state", Random())
			_, err := h.callback(h.callbackRequest(q))
			wantIs(t, err, providers.ErrInvalidCallback)
			if n := h.up.Requests(TokenPath); n != 0 {
				t.Fatalf("token endpoint called %d times: a forged callback spent the code", n)
			}
		}},
		{name: "state missing", run: func(t *testing.T, h *harness) {
			q := h.login()
			q.Del("state")
			_, err := h.callback(h.callbackRequest(q))
			wantIs(t, err, providers.ErrInvalidCallback)
		}},
		{name: "no code", run: func(t *testing.T, h *harness) {
			q := h.login()
			q.Del("code")
			_, err := h.callback(h.callbackRequest(q))
			wantIs(t, err, providers.ErrInvalidCallback)
		}},
		{name: "replayed callback", run: func(t *testing.T, h *harness) {
			q := h.login()
			if _, err := h.callback(h.callbackRequest(q)); err != nil {
				t.Fatalf("first HandleCallback: %v", err)
			}
			_, err := h.callback(h.callbackRequest(q))
			wantIs(t, err, providers.ErrInvalidCallback)
			if errors.Is(err, providers.ErrUpstreamUnavailable) {
				t.Fatalf("a refused code is not an outage: %v", err)
			}
		}},
		{name: "wrong PKCE verifier", run: func(t *testing.T, h *harness) {
			req := h.callbackRequest(h.login())
			req.CodeVerifier = NewLoginSecrets().Verifier
			_, err := h.callback(req)
			wantIs(t, err, providers.ErrInvalidCallback)
		}},
		{name: "upstream error response", run: func(t *testing.T, h *harness) {
			h.up.SetBehavior(Behavior{AuthorizeError: "access_denied", AuthorizeErrorDescription: "The user cancelled."})
			_, err := h.callback(h.callbackRequest(h.login()))
			var ue *providers.UpstreamError
			if !errors.As(err, &ue) || *ue != (providers.UpstreamError{Code: "access_denied", Description: "The user cancelled."}) {
				t.Fatalf("err = %#v, want UpstreamError{access_denied, The user cancelled.}", err)
			}
			if n := h.up.Requests(TokenPath); n != 0 {
				t.Fatalf("token endpoint called %d times after an error response", n)
			}
		}},
		{name: "wrong nonce", openID: true, run: func(t *testing.T, h *harness) {
			req := h.callbackRequest(h.login())
			req.Nonce = Random()
			_, err := h.callback(req)
			wantIs(t, err, providers.ErrInvalidCallback)
		}},
		{name: "ID token nonce from another login", openID: true, run: func(t *testing.T, h *harness) {
			h.up.SetBehavior(Behavior{Nonce: Random()})
			_, err := h.callback(h.callbackRequest(h.login()))
			wantIs(t, err, providers.ErrInvalidCallback)
		}},
		{name: "ID token by an unknown key", openID: true, run: func(t *testing.T, h *harness) {
			h.up.SetBehavior(Behavior{Signing: SignUnknownKey})
			_, err := h.callback(h.callbackRequest(h.login()))
			wantIs(t, err, providers.ErrInvalidCallback)
			if n := h.up.Requests(JWKSPath); n == 0 {
				t.Fatalf("the JWKS was never read for the unknown kid")
			}
		}},
		{name: "ID token with alg none", openID: true, run: func(t *testing.T, h *harness) {
			h.up.SetBehavior(Behavior{Signing: SignAlgNone})
			_, err := h.callback(h.callbackRequest(h.login()))
			wantIs(t, err, providers.ErrInvalidCallback)
		}},
		{name: "token response without ID token", openID: true, run: func(t *testing.T, h *harness) {
			h.up.SetBehavior(Behavior{OmitIDToken: true})
			_, err := h.callback(h.callbackRequest(h.login()))
			wantIs(t, err, providers.ErrInvalidCallback)
		}},
		{name: "hanging token endpoint", run: func(t *testing.T, h *harness) {
			q := h.login()
			h.up.SetBehavior(Behavior{Faults: map[string]Fault{TokenPath: {Hang: true}}})
			start := time.Now()
			_, err := h.callback(h.callbackRequest(q))
			if d := time.Since(start); d > 2*ClientTimeout {
				t.Fatalf("HandleCallback took %v, more than 2× the client timeout %v", d, ClientTimeout)
			}
			h.wantUnavailable(err)
		}},
		{name: "hanging upstream", run: func(t *testing.T, h *harness) {
			h.up.SetBehavior(Behavior{Faults: allFaults(Fault{Hang: true})})
			h.wantUnavailable(h.untilFirstError())
		}},
		{name: "upstream answers 503", run: func(t *testing.T, h *harness) {
			h.up.SetBehavior(Behavior{Faults: allFaults(Fault{Status: http.StatusServiceUnavailable})})
			h.wantUnavailable(h.untilFirstError())
		}},
		{name: "redirect to a private address", run: func(t *testing.T, h *harness) {
			h.up.SetBehavior(Behavior{Faults: allFaults(Fault{RedirectTo: PrivateURL})})
			err := h.untilFirstError()
			h.wantUnavailable(err)
			wantIs(t, err, httpclient.ErrRedirectOtherHost)
		}},
		{name: "upstream down", run: func(t *testing.T, h *harness) {
			h.up.Close()
			start := time.Now()
			_, err := h.loginURL(h.loginRequest())
			if err == nil {
				// Connectors that need no discovery build the URL
				// offline; the code exchange then meets the closed port.
				q := url.Values{"state": {h.secrets.State}, "code": {"code-for-a-down-upstream"}, "iss": {h.up.URL}}
				_, err = h.callback(h.callbackRequest(q))
			}
			h.record(err)
			if d := time.Since(start); d > 2*ClientTimeout {
				t.Fatalf("took %v, more than 2× the client timeout %v", d, ClientTimeout)
			}
			h.wantUnavailable(err)
		}},
		{name: "refresh", run: func(t *testing.T, h *harness) {
			id := h.signIn()
			want := c.want()
			if c.NameAtFirstLoginOnly {
				h.up.SetClaim(Alice().Subject, "email", "alice@new.example.com")
				want.Email = "alice@new.example.com"
			} else {
				h.up.SetClaim(Alice().Subject, "name", "Alice Renamed")
				want.Name = "Alice Renamed"
			}
			tokenCalls, userCalls := h.up.Requests(TokenPath), h.up.Requests(UserinfoPath)
			got, err := h.refresh(id)
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if !reflect.DeepEqual(withoutData(got), want) {
				t.Fatalf("refreshed identity:\n got %#v\nwant %#v", withoutData(got), want)
			}
			switch c.Refresh {
			case RefreshByAccessToken:
				if n := h.up.Requests(TokenPath); n != tokenCalls {
					t.Fatalf("the token endpoint was called %d times; this connector re-checks with the access token", n-tokenCalls)
				}
				if h.up.Requests(UserinfoPath) == userCalls {
					t.Fatalf("the user was not re-read upstream")
				}
				if len(got.ConnectorData) == 0 {
					t.Fatalf("ConnectorData lost the access token")
				}
			default:
				if tok := h.up.LastToken(); tok.Get("grant_type") != "refresh_token" {
					t.Fatalf("last token request grant_type = %q", tok.Get("grant_type"))
				}
				if len(got.ConnectorData) == 0 {
					t.Fatalf("ConnectorData lost the refresh token")
				}
				if c.Refresh == RefreshRotates && bytes.Equal(got.ConnectorData, id.ConnectorData) {
					t.Fatalf("ConnectorData not replaced by the rotated refresh token")
				}
			}
			if _, err := h.refresh(got); err != nil {
				t.Fatalf("second Refresh with the new ConnectorData: %v", err)
			}
		}},
		{name: "refresh with a rotated-away token", rotates: true, run: func(t *testing.T, h *harness) {
			id := h.signIn()
			if _, err := h.refresh(id); err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			_, err := h.refresh(id)
			wantIs(t, err, providers.ErrUpstreamUserGone)
		}},
		{name: "refresh after the user was removed upstream", run: func(t *testing.T, h *harness) {
			id := h.signIn()
			h.up.RemoveUser(Alice().Subject)
			_, err := h.refresh(id)
			wantIs(t, err, providers.ErrUpstreamUserGone)
		}},
		{name: "refresh while the upstream is down", run: func(t *testing.T, h *harness) {
			id := h.signIn()
			h.up.Close()
			_, err := h.refresh(id)
			h.wantUnavailable(err)
			if errors.Is(err, providers.ErrUpstreamUserGone) {
				t.Fatalf("an outage must not end the user's sessions: %v", err)
			}
		}},
		{name: "refresh data is bound to the subject", run: func(t *testing.T, h *harness) {
			id := h.signIn()
			before, beforeUser := h.up.Requests(TokenPath), h.up.Requests(UserinfoPath)
			id.Subject = "someone-else"
			_, err := h.refresh(id)
			if err == nil || errors.Is(err, providers.ErrUpstreamUserGone) || errors.Is(err, providers.ErrUpstreamUnavailable) {
				t.Fatalf("err = %v, want a server error", err)
			}
			if n := h.up.Requests(TokenPath); n != before {
				t.Fatalf("the refresh token was sent upstream for another subject")
			}
			if n := h.up.Requests(UserinfoPath); n != beforeUser {
				t.Fatalf("the access token was sent upstream for another subject")
			}
		}},
	}
	for _, tc := range cases {
		if tc.openID && !c.OpenID || tc.hints && c.NoHints || tc.rotates && c.Refresh != RefreshRotates {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, newHarness(t, c))
		})
	}
}

// SignIn runs one login of conn against up with fresh login secrets:
// LoginURL, the upstream's authorization endpoint, HandleCallback. A
// failing LoginURL or authorization step fails the test; HandleCallback's
// outcome is returned.
func SignIn(t *testing.T, conn providers.CallbackConnector, up *Upstream) (providers.Identity, error) {
	t.Helper()
	h := &harness{t: t, up: up, conn: conn, logs: &LogBuffer{}, secrets: NewLoginSecrets()}
	return h.callback(h.callbackRequest(h.login()))
}
