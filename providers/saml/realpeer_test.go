package saml_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/mapping"
	"github.com/latchkeyid/latchkey/providers/providertest"
	"github.com/latchkeyid/latchkey/providers/saml"
	"github.com/latchkeyid/latchkey/providers/saml/samltest"
)

// realPeerBase is Latchkey's base URL in this test: nothing listens there,
// the test plays the browser and hands the posted form to HandleACS.
const realPeerBase = "http://localhost:5556"

// TestRealPeerCrewjamIdP signs alice in at crewjam's example IdP twice:
// once with signed assertions (no SP key, HTTP-Redirect binding), once
// with the SP publishing an encryption key (the IdP then encrypts the
// assertion with AES-256-GCM) and signing its AuthnRequests (HTTP-POST
// binding), with single logout at the IdP; and an IdP-initiated login.
// The IdP metadata is fetched from the IdP through the hardened client
// and its signature checked against the certificate the IdP wrote
// (idpMetadataCertificates).
func TestRealPeerCrewjamIdP(t *testing.T) {
	bin := samltest.InstallCrewjamIdP(t)
	base, certPEM := samltest.StartCrewjamIdP(t, bin)
	k := testKeys(t)

	tests := []struct {
		name      string
		cfg       func(*saml.Config)
		encrypted bool
	}{
		{name: "signed assertion", cfg: func(c *saml.Config) {}},
		{name: "encrypted assertion, signed AuthnRequest, HTTP-POST", encrypted: true, cfg: func(c *saml.Config) {
			c.SPKey, c.SPCertificate = k["sp"].keyPEM, k["sp"].certPEM
			c.SignAuthnRequests = true
			c.Binding = "post"
		}},
	}
	t.Run("IdP-initiated", func(t *testing.T) { realPeerIdPInitiated(t, base, certPEM) })
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cfg := saml.Config{
				IdPMetadataURL:          base + "/metadata",
				IdPMetadataCertificates: []string{certPEM},
				RequireSignedResponse:   ptr(true),
				RequireSignedAssertion:  ptr(true),
				Attributes:              saml.AttributeNames{Groups: "eduPersonAffiliation"},
				AllowedGroups:           []string{"idp:Users"},
				Config: mapping.Config{ClaimMapping: mapping.ClaimMapping{
					Groups: "claims.eduPersonAffiliation.map(g, 'idp:' + g)",
				}},
			}
			tc.cfg(&cfg)
			replay := newMemReplay()
			id := fmt.Sprintf("crewjam-%d", i)
			conn, err := saml.New(ctx, saml.Type{BaseURL: realPeerBase, Replay: replay},
				providers.Info{ID: id, Name: "crewjam IdP"}, cfg, providertest.NewDeps(t, nil))
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			registerSP(ctx, t, base, id, conn)

			browser := newBrowser(t)
			// The IdP's login form re-posts the AuthnRequest without the
			// redirect binding's signature (PEERS.md): sign in first.
			postForm(ctx, t, browser, base+"/login", url.Values{"user": {"alice"}, "password": {"hunter2"}})

			relay := "relay-" + id
			login, err := conn.StartLogin(ctx, saml.LoginRequest{RelayState: relay})
			if err != nil {
				t.Fatalf("StartLogin: %v", err)
			}
			var page []byte
			if login.RedirectURL != "" {
				page = get(ctx, t, browser, login.RedirectURL)
			} else {
				action, fields := parseForm(t, login.PostForm)
				page = postForm(ctx, t, browser, action, fields)
			}
			action, fields := parseForm(t, page)
			if action != conn.URLs().ACS || fields.Get("RelayState") != relay {
				t.Fatalf("the IdP posts to %s with RelayState %q", action, fields.Get("RelayState"))
			}
			rawResp, _ := base64.StdEncoding.DecodeString(fields.Get("SAMLResponse"))
			if got := bytes.Contains(rawResp, []byte("EncryptedAssertion")); got != tc.encrypted {
				t.Fatalf("encrypted assertion: %v, want %v", got, tc.encrypted)
			}

			res, err := conn.HandleACS(ctx, saml.ACSRequest{
				SAMLResponse: fields.Get("SAMLResponse"), RelayState: fields.Get("RelayState"),
				ExpectedRelayState: relay, RequestIDs: []string{login.RequestID},
			})
			if err != nil {
				t.Fatalf("HandleACS: %v", err)
			}
			want := providers.Identity{
				Subject: "alice@example.com", Username: "alice", Email: "alice@example.com", EmailVerified: true,
				Name: "Alice Smith", Groups: []string{"idp:Administrators", "idp:Users"}, AMR: []string{"fed"},
			}
			if got := withoutData(res.Identity); !reflect.DeepEqual(got, want) {
				t.Fatalf("identity:\n got %#v\nwant %#v", got, want)
			}
			if res.InResponseTo != login.RequestID || res.SessionIndex == "" || len(replay.seen) != 1 {
				t.Fatalf("result %+v, replay %v", res, replay.seen)
			}
			// The same response again is a replay.
			_, err = conn.HandleACS(ctx, saml.ACSRequest{
				SAMLResponse: fields.Get("SAMLResponse"), RelayState: relay, ExpectedRelayState: relay, RequestIDs: []string{login.RequestID},
			})
			if ae := acsErr(t, err); ae.Reason != saml.ReasonReplayed {
				t.Fatalf("replay: %v", err)
			}
			// Single logout at the IdP's SLO endpoint, and its answer.
			lo, err := conn.LogoutRequest(ctx, res.Identity, "bye")
			if err != nil || lo.Empty() != (cfg.SPKey == "") {
				t.Fatalf("LogoutRequest: %+v, %v (without spKey there is none: it must be signed)", lo, err)
			}
			if lo.Empty() {
				return
			}
			var answer *http.Request
			if lo.RedirectURL != "" {
				if !strings.HasPrefix(lo.RedirectURL, base+"/slo?SAMLRequest=") {
					t.Fatalf("LogoutRequest sent to %s", lo.RedirectURL)
				}
				answer = sloAnswer(t, browser, mustRequest(ctx, t, http.MethodGet, lo.RedirectURL, nil))
			} else {
				action, fields := parseForm(t, lo.PostForm)
				if action != base+"/slo" {
					t.Fatalf("LogoutRequest posted to %s", action)
				}
				answer = sloAnswer(t, browser, mustRequest(ctx, t, http.MethodPost, action, fields))
			}
			if err := conn.HandleLogoutResponse(ctx, answer, []string{lo.RequestID}); err != nil {
				t.Fatalf("HandleLogoutResponse: %v", err)
			}
		})
	}
}

// realPeerIdPInitiated: an unsolicited login from crewjam's example IdP
// (a /login/{shortcut}) is accepted only with allowIdPInitiated, and then
// names the default client.
func realPeerIdPInitiated(t *testing.T, base, certPEM string) {
	for i, allow := range []bool{true, false} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cfg := saml.Config{IdPMetadataURL: base + "/metadata", IdPMetadataCertificates: []string{certPEM}}
		if allow {
			cfg.AllowIdPInitiated, cfg.DefaultClient = true, "intranet"
		}
		id := fmt.Sprintf("crewjam-unsolicited-%d", i)
		conn, err := saml.New(ctx, saml.Type{BaseURL: realPeerBase, Replay: newMemReplay()},
			providers.Info{ID: id}, cfg, providertest.NewDeps(t, nil))
		if err != nil {
			t.Fatal(err)
		}
		registerSP(ctx, t, base, id, conn)
		shortcut := fmt.Sprintf(`{"name": %q, "service_provider": %q, "relay_state": "/welcome"}`, id, conn.URLs().EntityID)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, base+"/shortcuts/"+id, strings.NewReader(shortcut))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("PUT /shortcuts/%s: HTTP %d", id, resp.StatusCode)
		}
		browser := newBrowser(t)
		postForm(ctx, t, browser, base+"/login", url.Values{"user": {"bob"}, "password": {"hunter2"}})
		action, fields := parseForm(t, get(ctx, t, browser, base+"/login/"+id))
		if action != conn.URLs().ACS || fields.Get("RelayState") != "/welcome" {
			t.Fatalf("posted to %s with RelayState %q", action, fields.Get("RelayState"))
		}
		res, err := conn.HandleACS(ctx, saml.ACSRequest{SAMLResponse: fields.Get("SAMLResponse"), RelayState: fields.Get("RelayState")})
		if !allow {
			if ae := acsErr(t, err); ae.Reason != saml.ReasonUnsolicited {
				t.Fatalf("IdP-initiated off: %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("HandleACS: %v", err)
		}
		if !res.IdPInitiated || res.DefaultClient != "intranet" || res.InResponseTo != "" || res.Identity.Subject != "bob@example.com" {
			t.Fatalf("result: %+v", res)
		}
	}
}

func newBrowser(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second}
}

func do(t *testing.T, browser *http.Client, req *http.Request) []byte {
	t.Helper()
	resp, err := browser.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: HTTP %d\n%.2000s", req.Method, req.URL.Path, resp.StatusCode, body)
	}
	return body
}

func get(ctx context.Context, t *testing.T, browser *http.Client, u string) []byte {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	return do(t, browser, req)
}

func postForm(ctx context.Context, t *testing.T, browser *http.Client, u string, form url.Values) []byte {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, browser, req)
}

func mustRequest(ctx context.Context, t *testing.T, method, u string, form url.Values) *http.Request {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return req
}

// sloAnswer sends a LogoutRequest to the IdP and returns the request the
// browser would then make to our SLO URL with the IdP's LogoutResponse
// (a redirect, or an auto-posted form).
func sloAnswer(t *testing.T, browser *http.Client, req *http.Request) *http.Request {
	t.Helper()
	noFollow := *browser
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatalf("send LogoutRequest: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if loc := resp.Header.Get("Location"); resp.StatusCode/100 == 3 {
		return httptestRequest(t, http.MethodGet, loc, nil)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("LogoutRequest: HTTP %d\n%.2000s", resp.StatusCode, body)
	}
	action, fields := parseForm(t, body)
	return httptestRequest(t, http.MethodPost, action, fields)
}

// httptestRequest is the request as our SLO handler would receive it.
func httptestRequest(t *testing.T, method, u string, form url.Values) *http.Request {
	t.Helper()
	if !strings.HasPrefix(u, realPeerBase+"/saml/") {
		t.Fatalf("the IdP answers at %s, not our SLO URL", u)
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, u, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return req
}

var (
	formActionRE = regexp.MustCompile(`<form[^>]*action="([^"]+)"`)
	hiddenRE     = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)"`)
)

// parseForm reads an auto-posting SAML form: its action and hidden fields.
func parseForm(t *testing.T, page []byte) (string, url.Values) {
	t.Helper()
	m := formActionRE.FindSubmatch(page)
	if m == nil {
		t.Fatalf("no form in:\n%.2000s", page)
	}
	fields := url.Values{}
	for _, f := range hiddenRE.FindAllSubmatch(page, -1) {
		fields.Set(html.UnescapeString(string(f[1])), html.UnescapeString(string(f[2])))
	}
	return html.UnescapeString(string(m[1])), fields
}

// registerSP gives the IdP the connector's SP metadata.
func registerSP(ctx context.Context, t *testing.T, base, id string, conn *saml.Connector) {
	t.Helper()
	md, err := conn.SPMetadata()
	if err != nil {
		t.Fatal(err)
	}
	samltest.RegisterSP(ctx, t, base, id, md)
}
