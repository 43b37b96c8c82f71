package web_test

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	crewjam "github.com/crewjam/saml"
	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/providers/saml/samltest"
	"github.com/latchkeyid/latchkey/storage"
)

// samlEnv is a fixture with a saml connector "corp" trusting an
// in-process IdP (samltest), and a client allowed to use it.
type samlEnv struct {
	f     *fixture
	idp   *samltest.IdP
	other samltest.KeyPair // a key the IdP metadata does not list
	conf  *oauth2.Config
}

const samlAppCB = "https://app.example/cb"

func newSAMLEnv(t *testing.T, be backends, extra map[string]any) *samlEnv {
	t.Helper()
	f := newFixtureOn(t, be)
	now := f.clock.Now()
	idp := samltest.NewIdP(t, samltest.NewKeyPair("idp", now), "https://idp.example.net",
		samltest.SP{EntityID: f.issuer + "/saml/corp/metadata", ACS: f.issuer + "/saml/corp/acs"}, now)
	cfg := map[string]any{"idpMetadata": idp.MetadataXML(t), "requireSignedResponse": true, "requireSignedAssertion": true}
	for k, v := range extra {
		cfg[k] = v
	}
	f.addConnector(t, "corp", "saml", cfg)
	f.addClient(storage.Client{ID: "app", RedirectURIs: []string{samlAppCB}, AllowedConnectors: []string{"corp"}}, "app-secret")
	return &samlEnv{f: f, idp: idp, other: samltest.NewKeyPair("other", now), conf: f.rp("app", "app-secret", samlAppCB, "openid", "email")}
}

// samlBrowser is a browser (cookie jar, no redirects followed).
func samlBrowser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

func send(t *testing.T, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var authnRequestID = regexp.MustCompile(`<samlp:AuthnRequest[^>]* ID="([^"]+)"`)

// start begins a login in browser b up to the redirect to the IdP and
// returns the RelayState and the AuthnRequest's ID.
func (e *samlEnv) start(t *testing.T, b *http.Client) (relay, requestID string) {
	t.Helper()
	return e.startWith(t, b, oauth2.GenerateVerifier())
}

// startWith is start with the app's PKCE verifier.
func (e *samlEnv) startWith(t *testing.T, b *http.Client, verifier string) (relay, requestID string) {
	t.Helper()
	next := e.conf.AuthCodeURL("app-state", oauth2.S256ChallengeOption(verifier))
	for step := 0; !strings.HasPrefix(next, "https://idp.example.net/sso?"); step++ {
		if step > 3 {
			t.Fatalf("no redirect to the IdP; at %s", next)
		}
		req, _ := http.NewRequest(http.MethodGet, next, nil)
		resp, page := send(t, b, req)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("GET %s: %d\n%s", next, resp.StatusCode, page)
		}
		loc, _ := req.URL.Parse(resp.Header.Get("Location"))
		next = loc.String()
	}
	return samlAuthnRequest(t, next)
}

// samlAuthnRequest reads the redirect to the IdP (HTTP-Redirect
// binding): its RelayState and the AuthnRequest's ID.
func samlAuthnRequest(t *testing.T, next string) (relay, requestID string) {
	t.Helper()
	u, _ := url.Parse(next)
	deflated, err := base64.StdEncoding.DecodeString(u.Query().Get("SAMLRequest"))
	if err != nil {
		t.Fatal(err)
	}
	xml, err := io.ReadAll(flate.NewReader(bytes.NewReader(deflated)))
	if err != nil {
		t.Fatal(err)
	}
	m := authnRequestID.FindSubmatch(xml)
	if m == nil || u.Query().Get("RelayState") == "" {
		t.Fatalf("AuthnRequest %s, RelayState %q", xml, u.Query().Get("RelayState"))
	}
	return u.Query().Get("RelayState"), string(m[1])
}

// post sends the IdP's form to the ACS in browser b and, when it is
// answered with the 303 to our own origin, follows it; it returns the
// last answer.
func (e *samlEnv) post(t *testing.T, b *http.Client, form url.Values) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.f.srv.URL+"/saml/corp/acs", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, page := send(t, b, req)
	if resp.StatusCode != http.StatusSeeOther {
		return resp, page
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "/saml/corp/acs?resume=") || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("ACS POST answered 303 to %q (Cache-Control %q)", loc, resp.Header.Get("Cache-Control"))
	}
	req, _ = http.NewRequest(http.MethodGet, e.f.srv.URL+loc, nil)
	return send(t, b, req)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestSAMLACSBadInput: every bad response posted to the ACS through the
// HTTP route (POST, then the same-site GET) is refused with a clear
// error page, an audit event naming the reason, and no session, no user
// and no identity; the response itself never reaches the log.
func TestSAMLACSBadInput(t *testing.T) {
	type input struct{ resp, relay string }
	tests := []struct {
		name   string
		build  func(t *testing.T, e *samlEnv, relay, reqID string) input
		status int
		msg    string // the page's message
		reason string // the audit event's reason
	}{
		{
			name: "unsigned response and assertion",
			build: func(t *testing.T, e *samlEnv, relay, reqID string) input {
				return input{b64(e.idp.ResponseXML(t, samltest.RespOpts{UnsignedResp: true, UnsignedAssert: true})), relay}
			},
			status: 400, msg: "the SAML response carries no signature", reason: "saml unsigned",
		},
		{
			name: "signed by another key",
			build: func(t *testing.T, e *samlEnv, relay, reqID string) input {
				return input{b64(e.idp.ResponseXML(t, samltest.RespOpts{Signer: &e.other})), relay}
			},
			status: 400, msg: "the SAML response is signed by a certificate that is not in the IdP metadata", reason: "saml signature",
		},
		{
			name: "wrapping: signed assertion moved beside an unsigned one",
			build: func(t *testing.T, e *samlEnv, relay, reqID string) input {
				signed := e.idp.AssertionElement(t, samltest.RespOpts{}, e.idp.Assertion(samltest.RespOpts{}))
				evil := e.idp.AssertionElement(t, samltest.RespOpts{UnsignedAssert: true},
					e.idp.Assertion(samltest.RespOpts{AssertionID: "id-evil", NameID: "mallory@example.com"}))
				return input{b64(e.idp.ResponseDoc(t, samltest.RespOpts{}, evil, signed)), relay}
			},
			// The signed Response covers both; the first assertion, the
			// one a naive reader takes, is unsigned.
			status: 400, msg: "the SAML assertion must be signed (requireSignedAssertion)", reason: "saml unsigned",
		},
		{
			name: "wrapping: unsigned assertion added to a signed response",
			build: func(t *testing.T, e *samlEnv, relay, reqID string) input {
				x := string(e.idp.ResponseXML(t, samltest.RespOpts{}))
				evil := e.idp.AssertionElement(t, samltest.RespOpts{UnsignedAssert: true},
					e.idp.Assertion(samltest.RespOpts{AssertionID: "id-evil", NameID: "mallory@example.com"}))
				return input{b64([]byte(strings.Replace(x, "</samlp:Response>", samltest.ElementString(t, evil)+"</samlp:Response>", 1))), relay}
			},
			status: 400, msg: "the SAML response&#39;s signature is invalid", reason: "saml signature",
		},
		{
			name: "expired",
			build: func(t *testing.T, e *samlEnv, relay, reqID string) input {
				return input{b64(e.idp.ResponseXML(t, samltest.RespOpts{Now: e.f.clock.Now().Add(-10 * time.Minute)})), relay}
			},
			status: 400, msg: "the SAML assertion has expired", reason: "saml expired",
		},
		{
			name: "not yet valid",
			build: func(t *testing.T, e *samlEnv, relay, reqID string) input {
				return input{b64(e.idp.ResponseXML(t, samltest.RespOpts{Now: e.f.clock.Now().Add(10 * time.Minute)})), relay}
			},
			status: 400, msg: "the SAML assertion is not valid yet", reason: "saml not_yet_valid",
		},
		{
			name: "wrong audience",
			build: func(t *testing.T, e *samlEnv, relay, reqID string) input {
				return input{b64(e.idp.ResponseXML(t, samltest.RespOpts{EditAssertion: func(a *crewjam.Assertion) {
					a.Conditions.AudienceRestrictions[0].Audience.Value = "https://other-sp.example.com/metadata"
				}})), relay}
			},
			status: 400, msg: "the SAML assertion is meant for another service provider (audience)", reason: "saml audience",
		},
		{
			name: "wrong recipient",
			build: func(t *testing.T, e *samlEnv, relay, reqID string) input {
				return input{b64(e.idp.ResponseXML(t, samltest.RespOpts{EditAssertion: func(a *crewjam.Assertion) {
					a.Subject.SubjectConfirmations[0].SubjectConfirmationData.Recipient = "https://other-sp.example.com/acs"
				}})), relay}
			},
			status: 400, msg: "the SAML assertion is meant for another ACS URL (recipient)", reason: "saml recipient",
		},
		{
			name: "wrong destination",
			build: func(t *testing.T, e *samlEnv, relay, reqID string) input {
				return input{b64(e.idp.ResponseXML(t, samltest.RespOpts{EditResponse: func(r *crewjam.Response) {
					r.Destination = "https://other-sp.example.com/acs"
				}})), relay}
			},
			status: 400, msg: "the SAML response is addressed to another ACS URL (destination)", reason: "saml destination",
		},
		{
			name: "InResponseTo of another request",
			build: func(t *testing.T, e *samlEnv, relay, reqID string) input {
				return input{b64(e.idp.ResponseXML(t, samltest.RespOpts{InResponseTo: "id-request-other"})), relay}
			},
			status: 400, msg: "the SAML response answers another login request (InResponseTo)", reason: "saml in_response_to",
		},
		{
			name: "unsolicited response (IdP-initiated login is off)",
			build: func(t *testing.T, e *samlEnv, relay, reqID string) input {
				return input{b64(e.idp.ResponseXML(t, samltest.RespOpts{InResponseTo: "-"})), ""}
			},
			status: 400, msg: "unsolicited SAML response: IdP-initiated login is not allowed for this connector", reason: "saml unsolicited",
		},
		{
			name: "unknown RelayState answering a request",
			build: func(t *testing.T, e *samlEnv, relay, reqID string) input {
				return input{b64(e.idp.ResponseXML(t, samltest.RespOpts{})), "not-a-relay-state-of-ours"}
			},
			status: 400, msg: "the SAML response answers a login request that is not pending here (expired, or started in another browser)",
			reason: "saml in_response_to",
		},
		{
			name: "malformed base64",
			build: func(t *testing.T, e *samlEnv, relay, reqID string) input {
				return input{"PHNhbWxwOlJlc3BvbnNl!!!", relay}
			},
			status: 400, msg: "the SAML response is not valid base64", reason: "saml malformed",
		},
		{
			name: "XML bomb: entity expansion",
			build: func(t *testing.T, e *samlEnv, relay, reqID string) input {
				return input{b64([]byte(samltest.BillionLaughs)), relay}
			},
			status: 400, msg: "the SAML response contains a document type declaration (DTD), which SAML never uses", reason: "saml xml_forbidden",
		},
		{
			name: "XML bomb: deep nesting",
			build: func(t *testing.T, e *samlEnv, relay, reqID string) input {
				return input{b64([]byte(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">` +
					strings.Repeat("<a>", 1000) + strings.Repeat("</a>", 1000) + `</samlp:Response>`)), relay}
			},
			status: 400, msg: "the SAML response nests elements too deeply", reason: "saml xml_forbidden",
		},
		{
			name: "SAMLResponse over 512 KiB",
			build: func(t *testing.T, e *samlEnv, relay, reqID string) input {
				return input{strings.Repeat("A", 512<<10+4), relay}
			},
			status: 413, msg: "it is too large", reason: "saml it is too large",
		},
		{
			name:   "no SAMLResponse",
			build:  func(t *testing.T, e *samlEnv, relay, reqID string) input { return input{"", relay} },
			status: 400, msg: "it carries no SAMLResponse", reason: "saml it carries no SAMLResponse",
		},
	}
	e := newSAMLEnv(t, backends{}, nil)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := samlBrowser()
			relay, reqID := e.start(t, b)
			e.idp.RequestID, e.idp.Now = reqID, e.f.clock.Now()
			in := tc.build(t, e, relay, reqID)
			resp, page := e.post(t, b, url.Values{"SAMLResponse": {in.resp}, "RelayState": {in.relay}})
			if resp.StatusCode != tc.status || !strings.Contains(page, html.EscapeString(tc.msg)) && !strings.Contains(page, tc.msg) {
				t.Fatalf("HTTP %d, want %d with %q:\n%.3000s", resp.StatusCode, tc.status, tc.msg, page)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type %q, want an HTML page", ct)
			}
			failed := e.f.events(t, "user.login.failed")
			if len(failed) != i+1 || failed[len(failed)-1].ConnectorID != "corp" || failed[len(failed)-1].Data["reason"] != tc.reason {
				t.Fatalf("user.login.failed events %+v, want %d, the last with reason %q", failed, i+1, tc.reason)
			}
			if ok := e.f.events(t, "user.login.succeeded"); len(ok) != 0 {
				t.Fatalf("a session was created: %+v", ok)
			}
			for _, c := range b.Jar.Cookies(mustURL(t, e.f.issuer)) {
				if c.Name == "latchkey_session" {
					t.Fatal("the browser got a session cookie")
				}
			}
			if users, _ := e.f.db.ListUsersByEmail(t.Context(), "alice@example.com"); len(users) != 0 {
				t.Fatalf("a user was created: %+v", users)
			}
			if len(in.resp) > 40 && strings.Contains(e.f.logs.String(), in.resp[:40]) {
				t.Fatal("the SAML response is in the log")
			}
		})
	}
}

// login signs in through the ACS with the response resp builds and
// returns the ID token's claims.
func (e *samlEnv) login(t *testing.T, b *http.Client, opts samltest.RespOpts) map[string]any {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	relay, reqID := e.startWith(t, b, verifier)
	e.idp.RequestID, e.idp.Now = reqID, e.f.clock.Now()
	resp, page := e.post(t, b, url.Values{"SAMLResponse": {b64(e.idp.ResponseXML(t, opts))}, "RelayState": {relay}})
	q := callback(t, resp, page, samlAppCB)
	tok, err := e.conf.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	_, claims := decodeJWT(t, tok.Extra("id_token").(string))
	return claims
}

// TestSAMLACSReplay: an assertion accepted once is refused when it comes
// again (its ID is in the ephemeral store until NotOnOrAfter), in a
// response to a new login or the very same POST again; on SQLite and on
// Redis.
func TestSAMLACSReplay(t *testing.T) {
	for _, be := range []struct {
		name string
		be   backends
	}{{"sqlite", backends{}}, {"redis", backends{redis: true}}} {
		t.Run(be.name, func(t *testing.T) {
			e := newSAMLEnv(t, be.be, nil)
			claims := e.login(t, samlBrowser(), samltest.RespOpts{AssertionID: "id-assertion-once"})
			if claims["email"] != "alice@example.com" || claims["amr"].([]any)[0] != "fed" {
				t.Fatalf("claims %v", claims)
			}
			// A new login answered with a response carrying the same assertion.
			b := samlBrowser()
			relay, reqID := e.start(t, b)
			e.idp.RequestID = reqID
			first := b64(e.idp.ResponseXML(t, samltest.RespOpts{AssertionID: "id-assertion-once"}))
			resp, page := e.post(t, b, url.Values{"SAMLResponse": {first}, "RelayState": {relay}})
			if resp.StatusCode != 400 || !strings.Contains(page, "the SAML assertion was already used") {
				t.Fatalf("replay: HTTP %d\n%s", resp.StatusCode, page)
			}
			// The same POST again: its RelayState was used up.
			resp, page = e.post(t, b, url.Values{"SAMLResponse": {first}, "RelayState": {relay}})
			if resp.StatusCode != 400 || !strings.Contains(page, "is not pending here") {
				t.Fatalf("same POST again: HTTP %d\n%s", resp.StatusCode, page)
			}
			failed := e.f.events(t, "user.login.failed")
			if len(failed) != 2 || failed[0].Data["reason"] != "saml replayed" || failed[1].Data["reason"] != "saml in_response_to" {
				t.Fatalf("user.login.failed %+v", failed)
			}
			if ok := e.f.events(t, "user.login.succeeded"); len(ok) != 1 {
				t.Fatalf("user.login.succeeded %+v, want the first login only", ok)
			}
		})
	}
}

// TestSAMLACSOtherBrowser: a valid response for a login started in
// another browser (login CSRF, session swapping) is refused on the GET
// that needs the binding cookie, and the login cannot be finished later.
func TestSAMLACSOtherBrowser(t *testing.T) {
	e := newSAMLEnv(t, backends{}, nil)
	victim, attacker := samlBrowser(), samlBrowser()
	relay, reqID := e.start(t, attacker)
	e.idp.RequestID = reqID
	resp, page := e.post(t, victim, url.Values{"SAMLResponse": {b64(e.idp.ResponseXML(t, samltest.RespOpts{}))}, "RelayState": {relay}})
	if resp.StatusCode != 400 || !strings.Contains(page, "started in another browser") {
		t.Fatalf("HTTP %d\n%s", resp.StatusCode, page)
	}
	if failed := e.f.events(t, "user.login.failed"); len(failed) != 1 || failed[0].Data["reason"] != "saml Sign-in not recognised" {
		t.Fatalf("user.login.failed %+v", failed)
	}
	if ok := e.f.events(t, "user.login.succeeded"); len(ok) != 0 {
		t.Fatalf("signed in: %+v", ok)
	}
}

// TestSAMLACSOversizedBody: a POST body over the ACS limit is cut off
// and answered 413 with an audit event.
func TestSAMLACSOversizedBody(t *testing.T) {
	e := newSAMLEnv(t, backends{}, nil)
	body := "RelayState=x&SAMLResponse=" + strings.Repeat("A", 1<<20)
	req, _ := http.NewRequest(http.MethodPost, e.f.srv.URL+"/saml/corp/acs", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, page := send(t, samlBrowser(), req)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(page, "it is too large") {
		t.Fatalf("HTTP %d\n%s", resp.StatusCode, page)
	}
	if failed := e.f.events(t, "user.login.failed"); len(failed) != 1 || failed[0].Data["reason"] != "saml it is too large" {
		t.Fatalf("user.login.failed %+v", failed)
	}
	// Unknown connectors have no ACS.
	req, _ = http.NewRequest(http.MethodPost, e.f.srv.URL+"/saml/nope/acs", strings.NewReader("SAMLResponse=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, _ := send(t, samlBrowser(), req); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown connector: HTTP %d", resp.StatusCode)
	}
}

// TestSAMLCommentInNameID: a comment injected into the signed NameID
// (the signature still verifies) does not shorten the subject: the user
// linked to alice@example.com is not signed in.
func TestSAMLCommentInNameID(t *testing.T) {
	e := newSAMLEnv(t, backends{}, nil)
	first := e.login(t, samlBrowser(), samltest.RespOpts{AssertionID: "id-a1"})
	b := samlBrowser()
	verifier := oauth2.GenerateVerifier()
	relay, reqID := e.startWith(t, b, verifier)
	e.idp.RequestID = reqID
	// Another mail too, so that no account matches it by email and the
	// login goes through as whoever the whole NameID is.
	attrs := samltest.DefaultAttributes()
	attrs[0].Values[0].Value = "mallory@evil.example"
	x := string(e.idp.ResponseXML(t, samltest.RespOpts{AssertionID: "id-a2", NameID: "alice@example.com.evil.example", Attributes: attrs}))
	injected := strings.Replace(x, ">alice@example.com.evil.example<", ">alice@example.com<!---->.evil.example<", 1)
	if injected == x {
		t.Fatal("NameID not found")
	}
	resp, page := e.post(t, b, url.Values{"SAMLResponse": {b64([]byte(injected))}, "RelayState": {relay}})
	q := callback(t, resp, page, samlAppCB)
	tok, err := e.conf.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	_, claims := decodeJWT(t, tok.Extra("id_token").(string))
	if claims["sub"] == first["sub"] {
		t.Fatal("the injected comment signed in as alice")
	}
	if _, err := e.f.db.GetIdentity(t.Context(), "corp", "alice@example.com.evil.example"); err != nil {
		t.Fatalf("the whole NameID is not the subject: %v", err)
	}
}

// TestSAMLIdPInitiated: with allowIdPInitiated an unsolicited response
// signs the user in (an SSO session) and sends the browser to the
// default client's site only, whose own login then needs no prompt.
func TestSAMLIdPInitiated(t *testing.T) {
	e := newSAMLEnv(t, backends{}, map[string]any{"allowIdPInitiated": true, "defaultClient": "app"})
	b := samlBrowser()
	e.idp.Now = e.f.clock.Now()
	resp, page := e.post(t, b, url.Values{"SAMLResponse": {b64(e.idp.ResponseXML(t, samltest.RespOpts{InResponseTo: "-"}))}, "RelayState": {"/anything"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "https://app.example/" {
		t.Fatalf("HTTP %d Location %q\n%s", resp.StatusCode, resp.Header.Get("Location"), page)
	}
	ok := e.f.events(t, "user.login.succeeded")
	if len(ok) != 1 || ok[0].ClientID != "app" || ok[0].Data["idp_initiated"] != true {
		t.Fatalf("user.login.succeeded %+v", ok)
	}
	// The app's own login finds the session: straight back with a code.
	verifier := oauth2.GenerateVerifier()
	req, _ := http.NewRequest(http.MethodGet, e.conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)), nil)
	resp, page = send(t, b, req)
	q := callback(t, resp, page, samlAppCB)
	if q.Get("code") == "" {
		t.Fatalf("no code: %v", q)
	}
}
