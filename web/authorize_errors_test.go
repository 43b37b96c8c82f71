package web_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/storage"
)

// authorizeOutcome is what /authorize must answer.
type authorizeOutcome struct {
	// page: an error page with this title and message (status 400).
	pageTitle, pageMessage string
	// redirect: an error (or nothing else) at redirectTo with exactly
	// these parameters.
	redirectTo string
	params     map[string]string
	// login: on to the password form.
	login bool
}

var loginRedirectRE = regexp.MustCompile(`^/login\?req=[A-Za-z0-9_-]{32}$`)

func assertAuthorizeOutcome(t *testing.T, resp *http.Response, page string, want authorizeOutcome) {
	t.Helper()
	assertHeaders(t, resp.Header, map[string]string{
		"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
	})
	switch {
	case want.pageTitle != "":
		assertErrorPage(t, resp, page, 400, want.pageTitle, want.pageMessage)
	case want.login:
		if resp.StatusCode != http.StatusSeeOther || !loginRedirectRE.MatchString(resp.Header.Get("Location")) {
			t.Errorf("want 303 to the login page, got %d %q\n%s", resp.StatusCode, resp.Header.Get("Location"), page)
		}
	default:
		assertParams(t, callback(t, resp, page, want.redirectTo), want.params)
	}
}

// authorizeURL builds a request from the valid base, with set replacing
// or (for "") deleting parameters, and raw appended to the query as is.
func authorizeURL(issuer string, base url.Values, set map[string]string, raw string) string {
	v := cloneValues(base)
	for k, s := range set {
		if s == "" {
			v.Del(k)
		} else {
			v.Set(k, s)
		}
	}
	q := v.Encode()
	if raw != "" {
		q += "&" + raw
	}
	return issuer + "/authorize?" + q
}

func TestAuthorizeErrors(t *testing.T) {
	f := newAppFixture(t)
	f.addClient(storage.Client{ID: "spa", RedirectURIs: []string{"https://spa.example/cb"}}, "")
	f.addClient(storage.Client{ID: "legacy", RedirectURIs: []string{"https://legacy.example/cb"}, RequirePKCE: ptr(false)}, "legacy-secret")
	f.addClient(storage.Client{ID: "scoped", RedirectURIs: []string{"https://scoped.example/cb"}, Scope: "openid profile"}, "scoped-secret")
	f.addClient(storage.Client{ID: "machine", RedirectURIs: []string{"https://m.example/cb"}, GrantTypes: []string{"client_credentials"}}, "m-secret")
	f.addClient(storage.Client{ID: "off", RedirectURIs: []string{"https://off.example/cb"}, Disabled: true}, "off-secret")
	f.addClient(storage.Client{ID: "pwless", RedirectURIs: []string{"https://pwless.example/cb"}, AllowedConnectors: []string{"github"}}, "p-secret")

	challenge := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())
	base := url.Values{
		"response_type": {"code"}, "client_id": {"app"}, "redirect_uri": {appCB}, "scope": {"openid"},
		"state": {"xyz"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}
	invalidRedirect := authorizeOutcome{pageTitle: "Invalid redirect", pageMessage: "The address to return to is not registered for this application."}
	unknownClient := authorizeOutcome{pageTitle: "Unknown application", pageMessage: "The application that sent you here is not registered."}
	repeated := authorizeOutcome{pageTitle: "Invalid request", pageMessage: "The sign-in request repeats client_id or redirect_uri."}
	toApp := func(code, desc string) authorizeOutcome {
		return authorizeOutcome{redirectTo: appCB, params: map[string]string{"error": code, "error_description": desc, "state": "xyz", "iss": f.issuer}}
	}
	login := authorizeOutcome{login: true}

	for _, tc := range []struct {
		name string
		set  map[string]string
		raw  string
		want authorizeOutcome
	}{
		// The client and the redirect URI cannot be trusted: a page.
		{"unknown client", map[string]string{"client_id": "nope"}, "", unknownClient},
		{"disabled client", map[string]string{"client_id": "off", "redirect_uri": "https://off.example/cb"}, "", unknownClient},
		{"unknown client and bad response_type", map[string]string{"client_id": "nope", "response_type": "token"}, "", unknownClient},
		{"missing client_id", map[string]string{"client_id": ""}, "", authorizeOutcome{pageTitle: "Invalid request", pageMessage: "The request does not name a client (client_id is missing)."}},
		{"missing redirect_uri", map[string]string{"redirect_uri": ""}, "", authorizeOutcome{pageTitle: "Invalid request", pageMessage: "The request does not say where to return (redirect_uri is missing)."}},
		{"redirect_uri of another host", map[string]string{"redirect_uri": "https://evil.example/cb"}, "", invalidRedirect},
		{"redirect_uri with ..", map[string]string{"redirect_uri": "https://app.example/x/../cb"}, "", invalidRedirect},
		{"redirect_uri with extra query", map[string]string{"redirect_uri": appCB + "?next=https://evil.example"}, "", invalidRedirect},
		{"redirect_uri with userinfo", map[string]string{"redirect_uri": "https://evil.example@app.example/cb"}, "", invalidRedirect},
		{"redirect_uri with a fragment", map[string]string{"redirect_uri": appCB + "#x"}, "", invalidRedirect},
		{"redirect_uri with a trailing slash", map[string]string{"redirect_uri": appCB + "/"}, "", invalidRedirect},
		{"redirect_uri with another case", map[string]string{"redirect_uri": "https://APP.example/cb"}, "", invalidRedirect},
		{"redirect_uri with a default port", map[string]string{"redirect_uri": "https://app.example:443/cb"}, "", invalidRedirect},
		{"redirect_uri over http", map[string]string{"redirect_uri": "http://app.example/cb"}, "", invalidRedirect},
		{"redirect_uri of another client", map[string]string{"redirect_uri": "https://spa.example/cb"}, "", invalidRedirect},
		{"client_id twice", nil, "client_id=app", repeated},
		{"redirect_uri twice", nil, "redirect_uri=" + url.QueryEscape(appCB), repeated},
		{"redirect_uri twice, second evil", nil, "redirect_uri=https%3A%2F%2Fevil.example%2Fcb", repeated},
		{"malformed query", nil, "x=%zz", authorizeOutcome{pageTitle: "Invalid request", pageMessage: "The sign-in request is malformed."}},

		// Client and redirect URI verified: errors go back to the client.
		{"unsupported response_type", map[string]string{"response_type": "token"}, "", toApp("unsupported_response_type", "only response_type code is supported")},
		{"hybrid response_type", map[string]string{"response_type": "code id_token"}, "", toApp("unsupported_response_type", "only response_type code is supported")},
		{"missing response_type", map[string]string{"response_type": ""}, "", toApp("invalid_request", "response_type is required")},
		{"plain challenge", map[string]string{"code_challenge_method": "plain"}, "", toApp("invalid_request", "code_challenge_method plain is not supported")},
		{"challenge without method (plain)", map[string]string{"code_challenge_method": ""}, "", toApp("invalid_request", "code_challenge_method plain is not supported")},
		{"method S512", map[string]string{"code_challenge_method": "S512"}, "", toApp("invalid_request", "code_challenge_method must be S256")},
		{"short challenge", map[string]string{"code_challenge": "abc"}, "", toApp("invalid_request", "code_challenge must be 43 characters of base64url")},
		{"challenge not base64url", map[string]string{"code_challenge": strings.Repeat("+", 43)}, "", toApp("invalid_request", "code_challenge must be 43 characters of base64url")},
		{"challenge with stray bits", map[string]string{"code_challenge": strings.Repeat("A", 42) + "B"}, "", toApp("invalid_request", "code_challenge must be 43 characters of base64url")},
		{"method without challenge", map[string]string{"code_challenge": ""}, "", toApp("invalid_request", "code_challenge is required")},
		{"confidential client without PKCE", map[string]string{"code_challenge": "", "code_challenge_method": ""}, "", toApp("invalid_request", "code_challenge is required (PKCE with S256)")},
		{"public client without PKCE", map[string]string{"client_id": "spa", "redirect_uri": "https://spa.example/cb", "code_challenge": "", "code_challenge_method": ""}, "",
			authorizeOutcome{redirectTo: "https://spa.example/cb", params: map[string]string{"error": "invalid_request", "error_description": "code_challenge is required (PKCE with S256)", "state": "xyz", "iss": f.issuer}}},
		{"require_pkce false without PKCE", map[string]string{"client_id": "legacy", "redirect_uri": "https://legacy.example/cb", "code_challenge": "", "code_challenge_method": ""}, "", login},
		{"require_pkce false with plain", map[string]string{"client_id": "legacy", "redirect_uri": "https://legacy.example/cb", "code_challenge_method": "plain"}, "",
			authorizeOutcome{redirectTo: "https://legacy.example/cb", params: map[string]string{"error": "invalid_request", "error_description": "code_challenge_method plain is not supported", "state": "xyz", "iss": f.issuer}}},
		{"state twice", nil, "state=other", toApp("invalid_request", "parameter 'state' is repeated")},
		{"nonce twice", map[string]string{"nonce": "n1"}, "nonce=n2", toApp("invalid_request", "parameter 'nonce' is repeated")},
		{"scope twice", nil, "scope=openid", toApp("invalid_request", "parameter 'scope' is repeated")},
		{"request object", map[string]string{"request": "eyJhbGciOiJub25lIn0.e30."}, "", toApp("request_not_supported", "the request parameter is not supported")},
		{"request_uri", map[string]string{"request_uri": "https://app.example/req.jwt"}, "", toApp("request_uri_not_supported", "the request_uri parameter is not supported")},
		{"registration", map[string]string{"registration": "{}"}, "", toApp("registration_not_supported", "the registration parameter is not supported")},
		{"missing openid", map[string]string{"scope": "profile email"}, "", toApp("invalid_scope", "the openid scope is required")},
		{"no scope", map[string]string{"scope": ""}, "", toApp("invalid_scope", "the openid scope is required")},
		{"only unknown scopes", map[string]string{"scope": "foo bar"}, "", toApp("invalid_scope", "the openid scope is required")},
		{"scope with a forbidden character", map[string]string{"scope": `openid "x`}, "", toApp("invalid_scope", "scope contains a character not allowed by RFC 6749 section 3.3")},
		{"unknown scopes dropped", map[string]string{"scope": "openid foo https://api.example/read"}, "", login},
		{"scope outside the registered scope", map[string]string{"client_id": "scoped", "redirect_uri": "https://scoped.example/cb", "scope": "openid email"}, "",
			authorizeOutcome{redirectTo: "https://scoped.example/cb", params: map[string]string{"error": "invalid_scope", "error_description": "scope 'email' is not allowed for this client", "state": "xyz", "iss": f.issuer}}},
		{"unknown scope outside the registered scope", map[string]string{"client_id": "scoped", "redirect_uri": "https://scoped.example/cb", "scope": "openid foo"}, "",
			authorizeOutcome{redirectTo: "https://scoped.example/cb", params: map[string]string{"error": "invalid_scope", "error_description": "scope 'foo' is not allowed for this client", "state": "xyz", "iss": f.issuer}}},
		{"scope inside the registered scope", map[string]string{"client_id": "scoped", "redirect_uri": "https://scoped.example/cb", "scope": "openid profile"}, "", login},
		{"unknown parameters ignored", map[string]string{"approval_prompt": "force", "access_type": "offline"}, "", login},
		{"response_mode fragment", map[string]string{"response_mode": "fragment"}, "", toApp("invalid_request", "response_mode fragment is not supported: only the code flow is")},
		{"response_mode unknown", map[string]string{"response_mode": "web_message"}, "", toApp("invalid_request", "response_mode must be query or form_post")},
		{"prompt unknown", map[string]string{"prompt": "bogus"}, "", toApp("invalid_request", "prompt value 'bogus' is not supported")},
		{"prompt none with login", map[string]string{"prompt": "none login"}, "", toApp("invalid_request", "prompt none cannot be combined with other values")},
		{"negative max_age", map[string]string{"max_age": "-1"}, "", toApp("invalid_request", "max_age must be a non-negative integer")},
		{"max_age not a number", map[string]string{"max_age": "1e3"}, "", toApp("invalid_request", "max_age must be a non-negative integer")},
		{"claims not JSON", map[string]string{"claims": "{"}, "", toApp("invalid_request", "claims must be a JSON object")},
		{"claims member not an object", map[string]string{"claims": `{"id_token":[]}`}, "", toApp("invalid_request", "claims member id_token must be a JSON object")},
		{"acr_values with a quote", map[string]string{"acr_values": `a"b`}, "", toApp("invalid_request", "acr_values contains a character not allowed")},
		{"unknown connector", map[string]string{"connector_id": "github"}, "", toApp("invalid_request", "unknown or not allowed connector_id")},
		{"local connector", map[string]string{"connector_id": "local"}, "", login},
		{"local connector not allowed for the client", map[string]string{"client_id": "pwless", "redirect_uri": "https://pwless.example/cb", "connector_id": "local"}, "",
			authorizeOutcome{redirectTo: "https://pwless.example/cb", params: map[string]string{"error": "invalid_request", "error_description": "unknown or not allowed connector_id", "state": "xyz", "iss": f.issuer}}},
		{"client without the code grant", map[string]string{"client_id": "machine", "redirect_uri": "https://m.example/cb"}, "",
			authorizeOutcome{redirectTo: "https://m.example/cb", params: map[string]string{"error": "unauthorized_client", "error_description": "the client may not use the authorization code flow", "state": "xyz", "iss": f.issuer}}},
		{"error without state", map[string]string{"state": "", "response_type": "token"}, "",
			authorizeOutcome{redirectTo: appCB, params: map[string]string{"error": "unsupported_response_type", "error_description": "only response_type code is supported", "iss": f.issuer}}},
		{"state echoed exactly", map[string]string{"state": "a b+c&d=é", "response_type": "token"}, "",
			authorizeOutcome{redirectTo: appCB, params: map[string]string{"error": "unsupported_response_type", "error_description": "only response_type code is supported", "state": "a b+c&d=é", "iss": f.issuer}}},
		{"prompt none without a session", map[string]string{"prompt": "none"}, "", toApp("login_required", "the user is not signed in")},
		{"valid request", nil, "", login},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := f.browser()
			resp, page := b.getRaw(authorizeURL(f.issuer, base, tc.set, tc.raw))
			assertAuthorizeOutcome(t, resp, page, tc.want)
		})
	}
}

// TestAuthorizePost: /authorize also takes its parameters as a POSTed form
// (OIDC Core §3.1.2.1).
func TestAuthorizePost(t *testing.T) {
	f := newAppFixture(t)
	challenge := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())
	form := url.Values{
		"response_type": {"code"}, "client_id": {"app"}, "redirect_uri": {appCB}, "scope": {"openid"},
		"state": {"xyz"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}
	post := func(body, contentType string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodPost, f.issuer+"/authorize", strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		b := f.browser()
		return b.do(b.raw, req)
	}
	resp, page := post(form.Encode(), "application/x-www-form-urlencoded")
	assertAuthorizeOutcome(t, resp, page, authorizeOutcome{login: true})

	bad := cloneValues(form)
	bad.Set("response_type", "token")
	resp, page = post(bad.Encode(), "application/x-www-form-urlencoded")
	assertAuthorizeOutcome(t, resp, page, authorizeOutcome{redirectTo: appCB, params: map[string]string{
		"error": "unsupported_response_type", "error_description": "only response_type code is supported", "state": "xyz", "iss": f.issuer}})

	resp, page = post(form.Encode()+"&state=again", "application/x-www-form-urlencoded")
	assertAuthorizeOutcome(t, resp, page, authorizeOutcome{redirectTo: appCB, params: map[string]string{
		"error": "invalid_request", "error_description": "parameter 'state' is repeated", "state": "xyz", "iss": f.issuer}})

	resp, page = post(form.Encode()+"&client_id=app", "application/x-www-form-urlencoded")
	assertAuthorizeOutcome(t, resp, page, authorizeOutcome{pageTitle: "Invalid request", pageMessage: "The sign-in request repeats client_id or redirect_uri."})

	resp, page = post(`{"client_id":"app"}`, "application/json")
	assertAuthorizeOutcome(t, resp, page, authorizeOutcome{pageTitle: "Invalid request", pageMessage: "The sign-in request could not be read."})
}
