package web_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/providers/saml/samltest"
	"github.com/latchkeyid/latchkey/storage"
)

// addConnector stores a connector and opens it.
func (f *fixture) addConnector(t *testing.T, id, typ string, cfg map[string]any) {
	t.Helper()
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := f.db.CreateConnector(t.Context(), storage.Connector{ID: id, Type: typ, Name: "Corp SAML", Config: raw, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	list, _ := f.db.ListConnectors(t.Context())
	if err := f.conns.Sync(t.Context(), list); err != nil {
		t.Fatal(err)
	}
}

// spMetadata fetches a saml connector's SP metadata from its route.
func (f *fixture) spMetadata(t *testing.T, id string) []byte {
	t.Helper()
	resp, err := http.Get(f.srv.URL + "/saml/" + id + "/metadata")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/samlmetadata+xml" {
		t.Fatalf("GET metadata: %d %s %.300s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	return body
}

// TestSAMLCrewjamIdPInChromium: a downstream x/oauth2 client signs in
// through Latchkey (on localhost) at crewjam's example SAML IdP (on
// 127.0.0.1: another site) in headless Chromium: alice types her
// password at the IdP, its page posts the SAMLResponse cross-site to the
// ACS (no Lax cookies), Latchkey stores it and continues on its own
// origin where the binding cookie arrives, and the app gets an ID token
// with the mapped attributes. Once with a signed assertion (no SP key,
// HTTP-Redirect), once with the SP publishing a key: the IdP encrypts
// the assertion, the AuthnRequest is signed (HTTP-POST binding, whose
// signature survives the IdP's login form) and the RP-initiated logout
// goes on to the IdP's single logout and back.
func TestSAMLCrewjamIdPInChromium(t *testing.T) {
	chromium := testenv.Program(t, "chromium")
	node := ensureNodePackage(t, chromiumDir)
	idpBase, idpCert := samltest.StartCrewjamIdP(t, samltest.InstallCrewjamIdP(t))
	spKey, spCert := testSPKeyPair(t)

	tests := []struct {
		name      string
		extra     map[string]any
		encrypted bool
	}{
		{name: "signed assertion"},
		{name: "encrypted assertion, signed AuthnRequest, single logout", encrypted: true, extra: map[string]any{
			"spKey": spKey, "spCertificate": spCert, "signAuthnRequests": true, "binding": "post",
		}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixtureOn(t, backends{localhost: true})
			connID := []string{"corp", "corp-enc"}[i]
			cfg := map[string]any{
				"idpMetadataURL": idpBase + "/metadata", "idpMetadataCertificates": []string{idpCert},
				"requireSignedResponse": true, "requireSignedAssertion": true,
				"attributes":    map[string]any{"groups": "eduPersonAffiliation"},
				"allowedGroups": []string{"idp:Users"},
				"claimMapping":  map[string]any{"groups": "claims.eduPersonAffiliation.map(g, 'idp:' + g)"},
			}
			for k, v := range tc.extra {
				cfg[k] = v
			}
			f.addConnector(t, connID, "saml", cfg)
			md := f.spMetadata(t, connID)
			if got := bytes.Contains(md, []byte(`use="encryption"`)); got != tc.encrypted {
				t.Fatalf("SP metadata publishes an encryption key: %v, want %v", got, tc.encrypted)
			}
			samltest.RegisterSP(t.Context(), t, idpBase, connID, md)

			rp := &chromiumRP{verifier: oauth2.GenerateVerifier()}
			rp.srv = httptest.NewServer(rp)
			t.Cleanup(rp.srv.Close)
			f.addClient(storage.Client{ID: "rp", RedirectURIs: []string{rp.srv.URL + "/cb"}, PostLogoutRedirectURIs: []string{rp.srv.URL + "/bye"},
				AllowedConnectors: []string{connID}}, "rp-secret")
			rp.conf = f.rp("rp", "rp-secret", rp.srv.URL+"/cb", "openid", "profile", "email", "groups")
			in := map[string]string{
				"authorizeURL": rp.conf.AuthCodeURL("st", oauth2.S256ChallengeOption(rp.verifier)),
				"username":     "alice", "password": samltest.Password, "callbackPrefix": rp.srv.URL + "/cb?",
			}
			if tc.encrypted {
				in["startLogoutURL"], in["byePrefix"] = rp.srv.URL+"/start-logout", rp.srv.URL+"/bye"
			}
			var res struct {
				URLs          []string `json:"urls"`
				ConsoleErrors []string `json:"consoleErrors"`
			}
			runChromium(t, chromium, node, "saml-flow.mjs", in, &res)
			if len(res.ConsoleErrors) > 0 {
				t.Errorf("console errors (CSP?): %q", res.ConsoleErrors)
			}
			urls := res.URLs

			rp.mu.Lock()
			defer rp.mu.Unlock()
			if len(rp.errs) > 0 {
				t.Fatalf("relying party: %v", rp.errs)
			}
			// The browser went: Latchkey, the IdP's login form, Latchkey's
			// ACS (POST, then the GET on our origin), the app.
			for _, want := range []string{
				`"method":"POST","path":"/saml/` + connID + `/acs","status":303`,
				`"method":"GET","path":"/saml/` + connID + `/acs","status":303`,
				fmt.Sprintf(`"signed_response":true,"signed_assertion":true,"encrypted_assertion":%v`, tc.encrypted),
			} {
				if !strings.Contains(f.logs.String(), want) {
					t.Errorf("no request %s in the log", want)
				}
			}
			_, claims := decodeJWT(t, rp.idToken)
			for k, want := range map[string]any{
				"email": "alice@example.com", "email_verified": true, "name": "Alice Smith", "preferred_username": "alice",
				"groups": []any{"idp:Administrators", "idp:Users"}, "amr": []any{"fed"}, "iss": f.issuer,
			} {
				if !reflect.DeepEqual(claims[k], want) {
					t.Errorf("ID token %s = %#v, want %#v", k, claims[k], want)
				}
			}
			ident, err := f.db.GetIdentity(t.Context(), connID, "alice@example.com")
			if err != nil || ident.UserID != claims["sub"] {
				t.Fatalf("identity %+v, %v; want linked to %v", ident, err, claims["sub"])
			}
			if ev := f.events(t, "user.login.succeeded"); len(ev) != 1 || ev[0].ConnectorID != connID {
				t.Errorf("user.login.succeeded events %+v", ev)
			}
			if !tc.encrypted {
				return
			}
			// Logout: Latchkey ends the session, sends the browser to the
			// IdP's SLO with a signed LogoutRequest, checks the answer at
			// /saml/{connector}/slo and continues to the app.
			sawSLO := strings.Contains(f.logs.String(), `"path":"/saml/`+connID+`/slo","status":303`)
			if !sawSLO || len(rp.bye) != 1 || rp.bye[0].Get("state") != "st-chromium" {
				t.Errorf("single logout: SLO answer seen %v, bye %v; urls %v", sawSLO, rp.bye, urls)
			}
			if ended := f.events(t, "session.ended"); len(ended) != 1 || ended[0].Data["reason"] != "logout" {
				t.Errorf("session.ended = %+v", ended)
			}
		})
	}
}

// testSPKeyPair returns a fresh RSA key and a self-signed certificate for
// it (PEM), valid around now.
func testSPKeyPair(t *testing.T) (string, string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "latchkey sp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})),
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
