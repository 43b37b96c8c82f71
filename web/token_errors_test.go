package web_test

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/storage"
)

// tokenRequest is a POST to /token with body as is; a non-empty id adds
// HTTP Basic client authentication, encoded as RFC 6749 §2.3.1 says.
func tokenRequest(t *testing.T, issuer, body, id, secret string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, issuer+"/token", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	return req
}

// codes hands out authorization codes from one signed-in browser.
type codes struct {
	f        *fixture
	b        *browser
	signedIn bool
}

// code returns a fresh code for client at redirectURI, with an S256
// challenge of verifier (none when verifier is "").
func (c *codes) code(t *testing.T, client, redirectURI, verifier string) string {
	t.Helper()
	v := url.Values{"response_type": {"code"}, "client_id": {client}, "redirect_uri": {redirectURI}, "scope": {"openid"}, "state": {"s"}}
	if verifier != "" {
		v.Set("code_challenge", oauth2.S256ChallengeFromVerifier(verifier))
		v.Set("code_challenge_method", "S256")
	}
	u := c.f.issuer + "/authorize?" + v.Encode()
	c.b.t = t
	var q url.Values
	if !c.signedIn {
		q = c.b.signIn(u, "alice", alicePassword, redirectURI)
		c.signedIn = true
	} else {
		q = c.b.sessionCode(u, redirectURI)
	}
	if q.Get("code") == "" {
		t.Fatalf("no code: %v", q)
	}
	return q.Get("code")
}

// assertTokenError checks a token endpoint error answer exactly.
func assertTokenError(t *testing.T, resp *http.Response, body string, status int, code, desc string, extra map[string]string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status %d, want %d", resp.StatusCode, status)
	}
	want := map[string]string{
		"Content-Type": "application/json", "Cache-Control": "no-store", "Pragma": "no-cache",
		"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
	}
	for k, v := range extra {
		want[k] = v
	}
	assertHeaders(t, resp.Header, want)
	if _, ok := extra["WWW-Authenticate"]; !ok && resp.Header.Get("WWW-Authenticate") != "" {
		t.Errorf("unexpected WWW-Authenticate %q", resp.Header.Get("WWW-Authenticate"))
	}
	if _, ok := extra["Allow"]; !ok && resp.Header.Get("Allow") != "" {
		t.Errorf("unexpected Allow %q", resp.Header.Get("Allow"))
	}
	assertJSONError(t, body, code, desc)
}

// hideLength makes a body of unknown length (sent chunked).
type hideLength struct{ io.Reader }

func TestTokenErrors(t *testing.T) {
	f := newAppFixture(t)
	const otherCB, legacyCB = "https://other.example/cb", "https://legacy.example/cb"
	f.addClient(storage.Client{ID: "other", RedirectURIs: []string{otherCB}}, "other-secret")
	f.addClient(storage.Client{ID: "legacy", RedirectURIs: []string{legacyCB}, RequirePKCE: ptr(false)}, "legacy-secret")
	f.addClient(storage.Client{ID: "off", RedirectURIs: []string{appCB}, Disabled: true}, "off-secret")
	f.addClient(storage.Client{ID: "spa", RedirectURIs: []string{appCB}}, "")
	src := &codes{f: f, b: f.browser()}
	verifier := oauth2.GenerateVerifier()

	form := func(code string, drop ...string) url.Values {
		v := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appCB}, "code_verifier": {verifier}}
		for _, d := range drop {
			v.Del(d)
		}
		return v
	}
	basic := func(t *testing.T, body string) *http.Request {
		return tokenRequest(t, f.issuer, body, "app", appSecret)
	}
	invalidClient := map[string]string{"WWW-Authenticate": `Basic realm="latchkey"`}
	appCode := func(t *testing.T) string { return src.code(t, "app", appCB, verifier) }
	noCode := func(*testing.T) string { return "bogus-code" }

	for _, tc := range []struct {
		name   string
		code   func(t *testing.T) string
		req    func(t *testing.T, code string) *http.Request
		status int
		err    string
		desc   string
		extra  map[string]string
		// after runs once the error was answered, with the code.
		after func(t *testing.T, code string)
	}{
		{name: "no client authentication", code: appCode,
			req: func(t *testing.T, code string) *http.Request {
				return tokenRequest(t, f.issuer, form(code).Encode(), "", "")
			},
			status: 401, err: "invalid_client", desc: "client authentication is required", extra: invalidClient},
		{name: "wrong secret (basic)", code: appCode,
			req: func(t *testing.T, code string) *http.Request {
				return tokenRequest(t, f.issuer, form(code).Encode(), "app", "wrong")
			},
			status: 401, err: "invalid_client", desc: "client authentication failed", extra: invalidClient,
			// The code survives a failed client authentication.
			after: func(t *testing.T, code string) {
				resp, body := doRequest(t, basic(t, form(code).Encode()))
				if resp.StatusCode != 200 {
					t.Errorf("code after a failed client authentication: %d %s", resp.StatusCode, body)
				}
			}},
		{name: "wrong secret (post)", code: appCode,
			req: func(t *testing.T, code string) *http.Request {
				v := form(code)
				v.Set("client_id", "app")
				v.Set("client_secret", appSecret+"x")
				return tokenRequest(t, f.issuer, v.Encode(), "", "")
			},
			status: 401, err: "invalid_client", desc: "client authentication failed", extra: invalidClient},
		{name: "unknown client", code: noCode,
			req: func(t *testing.T, code string) *http.Request {
				return tokenRequest(t, f.issuer, form(code).Encode(), "nope", "x")
			},
			status: 401, err: "invalid_client", desc: "client authentication failed", extra: invalidClient},
		{name: "disabled client", code: noCode,
			req: func(t *testing.T, code string) *http.Request {
				return tokenRequest(t, f.issuer, form(code).Encode(), "off", "off-secret")
			},
			status: 401, err: "invalid_client", desc: "client authentication failed", extra: invalidClient},
		{name: "confidential client without secret", code: appCode,
			req: func(t *testing.T, code string) *http.Request {
				v := form(code)
				v.Set("client_id", "app")
				return tokenRequest(t, f.issuer, v.Encode(), "", "")
			},
			status: 401, err: "invalid_client", desc: "client authentication failed", extra: invalidClient},
		{name: "public client with a secret", code: noCode,
			req: func(t *testing.T, code string) *http.Request {
				return tokenRequest(t, f.issuer, form(code).Encode(), "spa", "guess")
			},
			status: 401, err: "invalid_client", desc: "client authentication failed", extra: invalidClient},
		{name: "basic and client_secret in the form", code: appCode,
			req: func(t *testing.T, code string) *http.Request {
				v := form(code)
				v.Set("client_secret", appSecret)
				return basic(t, v.Encode())
			},
			status: 400, err: "invalid_request", desc: "use only one client authentication method"},
		{name: "basic and another client_id in the form", code: appCode,
			req: func(t *testing.T, code string) *http.Request {
				v := form(code)
				v.Set("client_id", "other")
				return basic(t, v.Encode())
			},
			status: 400, err: "invalid_request", desc: "use only one client authentication method"},
		{name: "basic credentials not form-urlencoded", code: noCode,
			req: func(t *testing.T, code string) *http.Request {
				r := tokenRequest(t, f.issuer, form(code).Encode(), "", "")
				r.SetBasicAuth("app", "50%")
				return r
			},
			status: 401, err: "invalid_client", desc: "malformed client credentials encoding", extra: invalidClient},
		{name: "Authorization not Basic", code: noCode,
			req: func(t *testing.T, code string) *http.Request {
				r := tokenRequest(t, f.issuer, form(code).Encode(), "", "")
				r.Header.Set("Authorization", "Bearer "+base64.StdEncoding.EncodeToString([]byte("app:"+appSecret)))
				return r
			},
			status: 401, err: "invalid_client", desc: "malformed Authorization header", extra: invalidClient},
		{name: "unknown grant type", code: noCode,
			req: func(t *testing.T, code string) *http.Request {
				return basic(t, "grant_type=password&username=alice&password=x")
			},
			status: 400, err: "unsupported_grant_type", desc: "grant_type 'password' is not supported"},
		{name: "missing grant_type", code: appCode,
			req:    func(t *testing.T, code string) *http.Request { return basic(t, form(code, "grant_type").Encode()) },
			status: 400, err: "invalid_request", desc: "grant_type is required"},
		{name: "bogus code", code: noCode,
			req:    func(t *testing.T, code string) *http.Request { return basic(t, form(code).Encode()) },
			status: 400, err: "invalid_grant", desc: "the authorization code is invalid, expired or already used"},
		{name: "overlong code", code: func(*testing.T) string { return strings.Repeat("a", 300) },
			req:    func(t *testing.T, code string) *http.Request { return basic(t, form(code).Encode()) },
			status: 400, err: "invalid_grant", desc: "invalid authorization code"},
		{name: "missing code", code: noCode,
			req:    func(t *testing.T, code string) *http.Request { return basic(t, form(code, "code").Encode()) },
			status: 400, err: "invalid_request", desc: "code is required"},
		{name: "missing redirect_uri", code: appCode,
			req:    func(t *testing.T, code string) *http.Request { return basic(t, form(code, "redirect_uri").Encode()) },
			status: 400, err: "invalid_request", desc: "redirect_uri is required"},
		{name: "wrong redirect_uri", code: appCode,
			req: func(t *testing.T, code string) *http.Request {
				v := form(code)
				v.Set("redirect_uri", otherCB)
				return basic(t, v.Encode())
			},
			status: 400, err: "invalid_grant", desc: "redirect_uri does not match the authorization request"},
		{name: "wrong verifier", code: appCode,
			req: func(t *testing.T, code string) *http.Request {
				v := form(code)
				v.Set("code_verifier", oauth2.GenerateVerifier())
				return basic(t, v.Encode())
			},
			status: 400, err: "invalid_grant", desc: "code_verifier does not match the code_challenge",
			// A failed redemption used the code up.
			after: func(t *testing.T, code string) {
				resp, body := doRequest(t, basic(t, form(code).Encode()))
				assertTokenError(t, resp, body, 400, "invalid_grant", "the authorization code is invalid, expired or already used", nil)
			}},
		{name: "malformed verifier", code: appCode,
			req: func(t *testing.T, code string) *http.Request {
				v := form(code)
				v.Set("code_verifier", "short")
				return basic(t, v.Encode())
			},
			status: 400, err: "invalid_request", desc: "code_verifier must be 43 to 128 characters"},
		{name: "missing verifier", code: appCode,
			req:    func(t *testing.T, code string) *http.Request { return basic(t, form(code, "code_verifier").Encode()) },
			status: 400, err: "invalid_grant", desc: "code_verifier is required"},
		{name: "verifier for a code issued without challenge (PKCE downgrade)",
			code: func(t *testing.T) string { return src.code(t, "legacy", legacyCB, "") },
			req: func(t *testing.T, code string) *http.Request {
				v := form(code)
				v.Set("redirect_uri", legacyCB)
				return tokenRequest(t, f.issuer, v.Encode(), "legacy", "legacy-secret")
			},
			status: 400, err: "invalid_grant", desc: "code_verifier sent for a code issued without code_challenge"},
		{name: "code of another client",
			code: func(t *testing.T) string { return src.code(t, "other", otherCB, verifier) },
			req: func(t *testing.T, code string) *http.Request {
				v := form(code)
				v.Set("redirect_uri", otherCB)
				return basic(t, v.Encode())
			},
			status: 400, err: "invalid_grant", desc: "the authorization code was issued to another client",
			// The code is burnt: its own client cannot use it any more.
			after: func(t *testing.T, code string) {
				v := form(code)
				v.Set("redirect_uri", otherCB)
				resp, body := doRequest(t, tokenRequest(t, f.issuer, v.Encode(), "other", "other-secret"))
				assertTokenError(t, resp, body, 400, "invalid_grant", "the authorization code is invalid, expired or already used", nil)
			}},
		{name: "duplicated code", code: appCode,
			req:    func(t *testing.T, code string) *http.Request { return basic(t, form(code).Encode()+"&code="+code) },
			status: 400, err: "invalid_request", desc: "parameter 'code' is repeated"},
		{name: "duplicated grant_type", code: appCode,
			req: func(t *testing.T, code string) *http.Request {
				return basic(t, form(code).Encode()+"&grant_type=authorization_code")
			},
			status: 400, err: "invalid_request", desc: "parameter 'grant_type' is repeated"},
		{name: "duplicated empty parameter", code: appCode,
			req:    func(t *testing.T, code string) *http.Request { return basic(t, form(code).Encode()+"&scope=&scope=") },
			status: 400, err: "invalid_request", desc: "parameter 'scope' is repeated"},
		{name: "JSON body", code: appCode,
			req: func(t *testing.T, code string) *http.Request {
				r := basic(t, `{"grant_type":"authorization_code","code":"`+code+`"}`)
				r.Header.Set("Content-Type", "application/json")
				return r
			},
			status: 400, err: "invalid_request", desc: "Content-Type must be application/x-www-form-urlencoded"},
		{name: "no Content-Type", code: appCode,
			req: func(t *testing.T, code string) *http.Request {
				r := basic(t, form(code).Encode())
				r.Header.Del("Content-Type")
				return r
			},
			status: 400, err: "invalid_request", desc: "Content-Type must be application/x-www-form-urlencoded"},
		{name: "malformed urlencoding", code: appCode,
			req:    func(t *testing.T, code string) *http.Request { return basic(t, form(code).Encode()+"&x=%zz") },
			status: 400, err: "invalid_request", desc: "request body is not valid form encoding"},
		{name: "value not UTF-8", code: noCode,
			req: func(t *testing.T, code string) *http.Request {
				return basic(t, "grant_type=authorization_code&code=%ff")
			},
			status: 400, err: "invalid_request", desc: "parameter 'code' is not valid UTF-8"},
		{name: "GET", code: appCode,
			req: func(t *testing.T, code string) *http.Request {
				r, _ := http.NewRequest(http.MethodGet, f.issuer+"/token?"+form(code).Encode(), nil)
				r.SetBasicAuth("app", appSecret)
				return r
			},
			status: 405, err: "invalid_request", desc: "the token endpoint accepts only POST", extra: map[string]string{"Allow": "POST"}},
		{name: "PUT", code: appCode,
			req: func(t *testing.T, code string) *http.Request {
				r := basic(t, form(code).Encode())
				r.Method = http.MethodPut
				return r
			},
			status: 405, err: "invalid_request", desc: "the token endpoint accepts only POST", extra: map[string]string{"Allow": "POST"}},
		{name: "2 MiB body", code: appCode,
			req: func(t *testing.T, code string) *http.Request {
				return basic(t, form(code).Encode()+"&pad="+strings.Repeat("a", 2<<20))
			},
			status: 413, err: "invalid_request", desc: "request body is larger than 1048576 bytes"},
		{name: "2 MiB body, chunked", code: appCode,
			req: func(t *testing.T, code string) *http.Request {
				r := basic(t, "")
				r.Body = io.NopCloser(hideLength{strings.NewReader(form(code).Encode() + "&pad=" + strings.Repeat("a", 2<<20))})
				r.ContentLength = -1
				return r
			},
			status: 413, err: "invalid_request", desc: "request body is larger than 1048576 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code := tc.code(t)
			resp, body := doRequest(t, tc.req(t, code))
			assertTokenError(t, resp, body, tc.status, tc.err, tc.desc, tc.extra)
			if tc.after != nil {
				tc.after(t, code)
			}
		})
	}
}

// TestCodeReuse: a second redemption fails and revokes what the first
// issued (RFC 6749 §4.1.2).
func TestCodeReuse(t *testing.T) {
	f := newAppFixture(t)
	src := &codes{f: f, b: f.browser()}
	verifier := oauth2.GenerateVerifier()
	conf := f.rp("app", appSecret, appCB, "openid")
	code := src.code(t, "app", appCB, verifier)
	tok := exchange(t, conf, code, verifier)
	other := exchange(t, conf, src.code(t, "app", appCB, verifier), verifier)

	resp, body := bearerGet(t, f.issuer+"/userinfo", tok.AccessToken)
	if resp.StatusCode != 200 {
		t.Fatalf("userinfo before reuse: %d %s", resp.StatusCode, body)
	}
	_, err := conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	assertRetrieveError(t, err, 400, "invalid_grant", "the authorization code is invalid, expired or already used")
	resp, body = bearerGet(t, f.issuer+"/userinfo", tok.AccessToken)
	assertBearerError(t, resp, body, 401, "invalid_token", "the access token was revoked")
	// Tokens from other codes are untouched.
	if resp, body := bearerGet(t, f.issuer+"/userinfo", other.AccessToken); resp.StatusCode != 200 {
		t.Errorf("userinfo with an unrelated token: %d %s", resp.StatusCode, body)
	}
	// A third attempt is the same error.
	_, err = conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	assertRetrieveError(t, err, 400, "invalid_grant", "the authorization code is invalid, expired or already used")
}

// TestCodeExpiry: codes live 60 seconds.
func TestCodeExpiry(t *testing.T) {
	f := newAppFixture(t)
	src := &codes{f: f, b: f.browser()}
	verifier := oauth2.GenerateVerifier()
	conf := f.rp("app", appSecret, appCB, "openid")

	code := src.code(t, "app", appCB, verifier)
	f.clock.Advance(59 * time.Second)
	exchange(t, conf, code, verifier)

	code = src.code(t, "app", appCB, verifier)
	f.clock.Advance(61 * time.Second)
	_, err := conf.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
	assertRetrieveError(t, err, 400, "invalid_grant", "the authorization code is invalid, expired or already used")
}

// TestCodeRedemptionRace: of concurrent redemptions of one code exactly
// one succeeds.
func TestCodeRedemptionRace(t *testing.T) {
	f := newAppFixture(t)
	src := &codes{f: f, b: f.browser()}
	verifier := oauth2.GenerateVerifier()
	code := src.code(t, "app", appCB, verifier)
	body := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appCB}, "code_verifier": {verifier}}.Encode()
	const n = 6
	statuses := make(chan int, n)
	for range n {
		go func() {
			req, _ := http.NewRequest(http.MethodPost, f.issuer+"/token", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("app", appSecret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	ok := 0
	for range n {
		switch s := <-statuses; s {
		case 200:
			ok++
		case 400:
		default:
			t.Errorf("status %d", s)
		}
	}
	if ok != 1 {
		t.Errorf("%d successful redemptions of one code", ok)
	}
}
