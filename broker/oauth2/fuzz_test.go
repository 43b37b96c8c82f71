package oauth2

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func FuzzMatchRedirectURI(f *testing.F) {
	seeds := []struct {
		registered, requested string
		native                bool
	}{
		{"https://app.example/cb", "https://app.example/cb", false},
		{"https://app.example/cb", "https://app.example/cb/", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:5000/cb", true},
		{"http://[::1]:80/cb", "http://[::1]:65535/cb", true},
		{"http://localhost/cb?x=1", "http://localhost:1/cb?x=1", true},
		{"http://127.0.0.1/cb", "http://127.0.0.1:0/cb", true},
		{"http://127.0.0.1", "http://127.0.0.1:9", true},
		{"com.example.app:/cb", "com.example.app:/cb", true},
	}
	for _, s := range seeds {
		f.Add(s.registered, s.requested, s.native)
	}
	f.Fuzz(func(t *testing.T, registered, requested string, native bool) {
		regs := strings.Split(registered, "\n")
		ok := MatchRedirectURI(regs, requested, native)
		if ok && !native && !slices.Contains(regs, requested) {
			t.Fatalf("web match of %q against %q is not exact", requested, regs)
		}
		if ok && native && !slices.Contains(regs, requested) {
			// Only the loopback rule may match: http, a loopback host, and
			// nothing but the port differs from some registered URI.
			host, rest, isLoop := splitLoopback(requested)
			if !isLoop {
				t.Fatalf("native match of non-loopback %q against %q", requested, regs)
			}
			found := false
			for _, r := range regs {
				h, rr, ok := splitLoopback(r)
				found = found || ok && h == host && rr == rest
			}
			if !found {
				t.Fatalf("native match of %q has no registered counterpart in %q", requested, regs)
			}
			// Independently of splitLoopback: where net/url can read the
			// URI, it goes to a loopback host over http, without userinfo.
			if u, err := url.Parse(requested); err == nil {
				if u.Scheme != "http" || u.User != nil || !isLoopbackHost(u.Hostname()) {
					t.Fatalf("native match of %q: scheme %q, user %v, host %q", requested, u.Scheme, u.User, u.Hostname())
				}
			}
		}
	})
}

func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"", "openid", "openid email profile", "  a  b a ", "a\tb", `"x"`, "é", "\x00", "! ~ [ ]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseScope(s)
		if err != nil {
			if e, ok := As(err); !ok || e.Code != CodeInvalidScope {
				t.Fatalf("error %v is not invalid_scope", err)
			}
			if got != nil {
				t.Fatalf("tokens %q returned with an error", got)
			}
			return
		}
		seen := map[string]bool{}
		for _, tok := range got {
			if !validScopeToken(tok) {
				t.Fatalf("invalid token %q from %q", tok, s)
			}
			if seen[tok] {
				t.Fatalf("duplicate token %q from %q", tok, s)
			}
			seen[tok] = true
		}
		again, err := ParseScope(FormatScope(got))
		if err != nil || !slices.Equal(again, got) {
			t.Fatalf("round trip of %q: %q, %v", got, again, err)
		}
	})
}

func FuzzPKCE(f *testing.F) {
	for _, s := range []struct{ verifier, challenge, method string }{
		{rfcVerifier, rfcChallenge, "S256"},
		{"short", "short", "plain"},
		{strings.Repeat("~", 128), "", ""},
		{strings.Repeat("a", 129), rfcChallenge[:42] + "N", "S256"},
	} {
		f.Add(s.verifier, s.challenge, s.method)
	}
	f.Fuzz(func(t *testing.T, verifier, challenge, method string) {
		_ = ValidateChallenge(challenge, method)
		vErr := ValidateVerifier(verifier)
		c := S256Challenge(verifier)
		if err := ValidateChallenge(c, MethodS256); err != nil {
			t.Fatalf("S256Challenge(%q) = %q fails ValidateChallenge: %v", verifier, c, err)
		}
		if got := VerifyS256(verifier, c); got != (vErr == nil) {
			t.Fatalf("VerifyS256(%q, own challenge) = %v, verifier error %v", verifier, got, vErr)
		}
		if VerifyS256(verifier, challenge) && challenge != c {
			t.Fatalf("VerifyS256(%q, %q) true for a challenge other than %q", verifier, challenge, c)
		}
	})
}

func FuzzParseTokenForm(f *testing.F) {
	for _, s := range []struct {
		method, contentType, body string
	}{
		{"POST", "application/x-www-form-urlencoded", "grant_type=authorization_code&code=x"},
		{"POST", "application/x-www-form-urlencoded; charset=UTF-8", "a=1&a=2"},
		{"POST", "application/json", "{}"},
		{"GET", "", ""},
		{"POST", "application/x-www-form-urlencoded", "a=%zz;b"},
		{"POST", "application/x-www-form-urlencoded", strings.Repeat("x", 300)},
	} {
		f.Add(s.method, s.contentType, s.body)
	}
	f.Fuzz(func(t *testing.T, method, contentType, body string) {
		r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(body))
		r.Method = method // any string, valid HTTP token or not
		r.Header.Set("Content-Type", contentType)
		v, e := ParseTokenForm(r, 256)
		if e != nil {
			switch e.Status {
			case http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusRequestEntityTooLarge:
			default:
				t.Fatalf("status %d: %v", e.Status, e)
			}
			if e.Code != CodeInvalidRequest || v != nil {
				t.Fatalf("error %v with values %v", e, v)
			}
			return
		}
		if method != http.MethodPost || len(body) > 256 {
			t.Fatalf("accepted method %q with %d bytes", method, len(body))
		}
		for k, vs := range v {
			if len(vs) != 1 || vs[0] == "" {
				t.Fatalf("parameter %q has values %q", k, vs)
			}
		}
	})
}

func FuzzValidateRedirectURI(f *testing.F) {
	for _, s := range []string{
		"https://app.example/cb", "http://127.0.0.1:8080/cb", "http://[::1]/cb", "com.example.app:/cb",
		"https://app.example/a/%2e%2e/b", "https://u@app.example/", "http://app.example/cb", "javascript:alert(1)",
	} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, raw string, native bool) {
		err := ValidateRedirectURI(raw, native)
		if err != nil {
			if e, ok := As(err); !ok || e.Code != CodeInvalidRedirectURI {
				t.Fatalf("error %v is not invalid_redirect_uri", err)
			}
			return
		}
		u, perr := url.Parse(raw)
		if perr != nil || u.Scheme == "" || u.User != nil || strings.Contains(raw, "#") {
			t.Fatalf("accepted %q: parse error %v", raw, perr)
		}
		switch {
		case u.Scheme == "https":
		case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
		case native && strings.Contains(u.Scheme, "."):
		default:
			t.Fatalf("accepted %q (native %v) with scheme %q host %q", raw, native, u.Scheme, u.Hostname())
		}
		if !MatchRedirectURI([]string{raw}, raw, native) {
			t.Fatalf("accepted %q does not match itself", raw)
		}
	})
}

func FuzzParseAuthorizeRequest(f *testing.F) {
	for _, s := range []string{
		"client_id=app&response_type=code&scope=openid&state=s",
		"client_id=app&response_type=code&prompt=none+login&max_age=-1",
		"client_id=app&response_type=code&claims=%7B%22userinfo%22%3A%5B%5D%7D",
		"client_id=app&response_type=code&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
		"request=x&request_uri=y&state=a&state=b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, query string) {
		v, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		m, e := SingleValues(v)
		if e != nil {
			return
		}
		req, e := ParseAuthorizeRequest(m)
		if req.State != m["state"] || req.ClientID != m["client_id"] {
			t.Fatalf("state/client_id not carried: %+v", req)
		}
		if e != nil {
			return
		}
		if req.ResponseType != ResponseTypeCode || req.ClientID == "" {
			t.Fatalf("accepted response_type %q client_id %q", req.ResponseType, req.ClientID)
		}
		if req.MaxAge != nil && *req.MaxAge < 0 {
			t.Fatalf("negative max_age %d", *req.MaxAge)
		}
		if len(req.Prompt) > 1 && slices.Contains(req.Prompt, PromptNone) {
			t.Fatalf("prompt none combined: %q", req.Prompt)
		}
		if (req.CodeChallenge != "" || req.CodeChallengeMethod != "") && req.CodeChallengeMethod != MethodS256 {
			t.Fatalf("accepted PKCE method %q", req.CodeChallengeMethod)
		}
		if req.Claims != nil && req.Claims[0] != '{' {
			t.Fatalf("claims not an object: %s", req.Claims)
		}
	})
}
