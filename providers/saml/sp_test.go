package saml_test

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	crewjam "github.com/crewjam/saml"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/saml"
)

func TestPaths(t *testing.T) {
	got := saml.Paths("https://login.example.com/auth/", "corp")
	want := saml.URLs{
		EntityID: "https://login.example.com/auth/saml/corp/metadata",
		Metadata: "https://login.example.com/auth/saml/corp/metadata",
		ACS:      "https://login.example.com/auth/saml/corp/acs",
		SLO:      "https://login.example.com/auth/saml/corp/slo",
	}
	if got != want {
		t.Fatalf("Paths = %+v", got)
	}
}

func TestSPMetadata(t *testing.T) {
	k := testKeys(t)
	b64cert := func(kp keyPair) string { return base64.StdEncoding.EncodeToString(kp.cert.Raw) }
	type keyDesc struct{ use, cert string }
	tests := []struct {
		name     string
		cfg      func(*saml.Config)
		entityID string
		keys     []keyDesc
		nameID   string
	}{
		{name: "no SP key", cfg: func(c *saml.Config) { c.SPKey, c.SPCertificate = "", "" },
			entityID: testEntity, nameID: string(crewjam.UnspecifiedNameIDFormat)},
		{name: "spKey signs and decrypts", entityID: testEntity,
			keys:   []keyDesc{{"encryption", b64cert(k["sp"])}, {"signing", b64cert(k["sp"])}},
			nameID: string(crewjam.UnspecifiedNameIDFormat)},
		{name: "separate encryption key, entityID and NameID format", cfg: func(c *saml.Config) {
			c.SPEncryptionKey, c.SPEncryptionCertificate = k["spenc"].keyPEM, k["spenc"].certPEM
			c.EntityID = "urn:latchkey:corp"
			c.NameIDFormat = "persistent"
		}, entityID: "urn:latchkey:corp",
			keys:   []keyDesc{{"encryption", b64cert(k["spenc"])}, {"signing", b64cert(k["sp"])}},
			nameID: string(crewjam.PersistentNameIDFormat)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.cfg)
			raw, err := e.conn.SPMetadata()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(raw, []byte(xml.Header)) {
				t.Fatalf("no XML header:\n%s", raw)
			}
			var ed crewjam.EntityDescriptor
			if err := xml.Unmarshal(raw, &ed); err != nil {
				t.Fatal(err)
			}
			if ed.EntityID != tc.entityID || e.conn.URLs().EntityID != tc.entityID {
				t.Fatalf("entityID = %q / %q", ed.EntityID, e.conn.URLs().EntityID)
			}
			if !ed.ValidUntil.IsZero() || ed.CacheDuration != 24*time.Hour {
				t.Fatalf("validUntil %v cacheDuration %v: uploaded SP metadata must not expire", ed.ValidUntil, ed.CacheDuration)
			}
			sp := ed.SPSSODescriptors[0]
			if len(sp.AssertionConsumerServices) != 1 || sp.AssertionConsumerServices[0].Location != testACS ||
				sp.AssertionConsumerServices[0].Binding != crewjam.HTTPPostBinding {
				t.Fatalf("ACS = %+v", sp.AssertionConsumerServices)
			}
			var slo []string
			for _, s := range sp.SingleLogoutServices {
				slo = append(slo, s.Binding+" "+s.Location)
			}
			if want := []string{crewjam.HTTPRedirectBinding + " " + testBase + "/saml/corp/slo", crewjam.HTTPPostBinding + " " + testBase + "/saml/corp/slo"}; strings.Join(slo, ",") != strings.Join(want, ",") {
				t.Fatalf("SLO = %v", slo)
			}
			var keys []keyDesc
			for _, kd := range sp.KeyDescriptors {
				keys = append(keys, keyDesc{kd.Use, kd.KeyInfo.X509Data.X509Certificates[0].Data})
			}
			if len(keys) != len(tc.keys) {
				t.Fatalf("keys = %d, want %d", len(keys), len(tc.keys))
			}
			for i := range keys {
				if keys[i] != tc.keys[i] {
					t.Fatalf("key %d = %s, want %s", i, keys[i].use, tc.keys[i].use)
				}
			}
			if len(sp.NameIDFormats) != 1 || string(sp.NameIDFormats[0]) != tc.nameID {
				t.Fatalf("NameIDFormats = %v", sp.NameIDFormats)
			}
		})
	}
}

func inflate(t *testing.T, s string) []byte {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(flate.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestStartLogin(t *testing.T) {
	k := testKeys(t)
	t.Run("redirect, signed, ForceAuthn", func(t *testing.T) {
		e := newEnv(t, func(c *saml.Config) { c.SignAuthnRequests = true; c.NameIDFormat = "persistent" })
		l, err := e.conn.StartLogin(context.Background(), saml.LoginRequest{RelayState: testRelay, ForceAuthn: true})
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(l.RedirectURL)
		if err != nil || l.PostForm != nil {
			t.Fatalf("redirect URL %q, form %q", l.RedirectURL, l.PostForm)
		}
		if got := u.Scheme + "://" + u.Host + u.Path; got != testIdPURL+"/sso" {
			t.Fatalf("sent to %s", got)
		}
		q := u.Query()
		var ar crewjam.AuthnRequest
		if err := xml.Unmarshal(inflate(t, q.Get("SAMLRequest")), &ar); err != nil {
			t.Fatal(err)
		}
		if ar.ID != l.RequestID || ar.Destination != testIdPURL+"/sso" || ar.AssertionConsumerServiceURL != testACS ||
			ar.ProtocolBinding != crewjam.HTTPPostBinding || ar.Issuer.Value != testEntity ||
			ar.ForceAuthn == nil || !*ar.ForceAuthn || ar.NameIDPolicy == nil || *ar.NameIDPolicy.Format != string(crewjam.PersistentNameIDFormat) ||
			!ar.IssueInstant.Equal(t0) {
			t.Fatalf("AuthnRequest: %+v", ar)
		}
		if q.Get("RelayState") != testRelay || q.Get("SigAlg") != "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256" {
			t.Fatalf("query: %v", q)
		}
		// saml-bindings §3.4.4.1: the signature covers the raw
		// SAMLRequest, RelayState and SigAlg parameters, in that order.
		var signed []string
		for _, p := range strings.Split(u.RawQuery, "&") {
			if !strings.HasPrefix(p, "Signature=") {
				signed = append(signed, p)
			}
		}
		sum := sha256.Sum256([]byte(strings.Join(signed, "&")))
		sig, _ := base64.StdEncoding.DecodeString(q.Get("Signature"))
		if err := rsa.VerifyPKCS1v15(&k["sp"].key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
			t.Fatalf("redirect signature: %v", err)
		}
	})
	t.Run("post, unsigned, CSP nonce", func(t *testing.T) {
		e := newEnv(t, func(c *saml.Config) { c.Binding = "post" })
		l, err := e.conn.StartLogin(context.Background(), saml.LoginRequest{RelayState: testRelay, CSPNonce: "n0nce"})
		if err != nil {
			t.Fatal(err)
		}
		form := string(l.PostForm)
		if l.RedirectURL != "" || !strings.Contains(form, `action="`+testIdPURL+`/sso"`) ||
			!strings.Contains(form, `name="RelayState" value="`+testRelay+`"`) || !strings.Contains(form, `<script nonce="n0nce">`) {
			t.Fatalf("form:\n%s", form)
		}
		m := regexp.MustCompile(`name="SAMLRequest" value="([^"]+)"`).FindStringSubmatch(form)
		raw, _ := base64.StdEncoding.DecodeString(html.UnescapeString(m[1]))
		var ar crewjam.AuthnRequest
		if err := xml.Unmarshal(raw, &ar); err != nil {
			t.Fatal(err)
		}
		if ar.ID != l.RequestID || ar.Signature != nil || ar.ForceAuthn != nil {
			t.Fatalf("AuthnRequest %+v", ar)
		}
		// The same form as data, for a caller that renders its own.
		if l.PostURL != testIdPURL+"/sso" || len(l.PostFields) != 2 || l.PostFields.Get("RelayState") != testRelay ||
			l.PostFields.Get("SAMLRequest") != html.UnescapeString(m[1]) {
			t.Fatalf("PostURL %q, PostFields %v", l.PostURL, l.PostFields)
		}
	})
	t.Run("post, signed", func(t *testing.T) {
		e := newEnv(t, func(c *saml.Config) { c.Binding = "post"; c.SignAuthnRequests = true })
		l, err := e.conn.StartLogin(context.Background(), saml.LoginRequest{RelayState: testRelay})
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`name="SAMLRequest" value="([^"]+)"`).FindStringSubmatch(string(l.PostForm))
		raw, _ := base64.StdEncoding.DecodeString(html.UnescapeString(m[1]))
		if !bytes.Contains(raw, []byte("SignatureValue")) {
			t.Fatalf("the posted AuthnRequest is not signed:\n%s", raw)
		}
		if l.PostFields.Get("SAMLRequest") != html.UnescapeString(m[1]) {
			t.Fatal("PostFields differ from the form")
		}
	})
	for _, tc := range []struct{ name, relay, want string }{
		{"no RelayState", "", "saml: StartLogin needs a RelayState"},
		{"RelayState over 80 bytes", strings.Repeat("r", 81), "saml: RelayState is 81 bytes, at most 80 are allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			_, err := e.conn.StartLogin(context.Background(), saml.LoginRequest{RelayState: tc.relay})
			if errString(err) != tc.want {
				t.Fatalf("err = %v, want %s", err, tc.want)
			}
		})
	}
}

func TestSingleLogout(t *testing.T) {
	e := newEnv(t, nil)
	res, err := e.acs(b64(e.idp.responseXML(t, respOpts{nameIDFormat: string(crewjam.PersistentNameIDFormat), nameID: "p-4711"})))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	lo, err := e.conn.LogoutRequest(ctx, res.Identity, "logout-relay")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(lo.RedirectURL)
	if lo.Empty() || u.Host != "idp.example.net" || u.Path != "/slo" || u.Query().Get("Signature") == "" ||
		u.Query().Get("RelayState") != "logout-relay" {
		t.Fatalf("logout: %+v", lo)
	}
	var lr crewjam.LogoutRequest
	if err := xml.Unmarshal(inflate(t, u.Query().Get("SAMLRequest")), &lr); err != nil {
		t.Fatal(err)
	}
	if lr.ID != lo.RequestID || lr.NameID.Value != "p-4711" || lr.NameID.Format != string(crewjam.PersistentNameIDFormat) ||
		lr.NameID.SPNameQualifier != testEntity || lr.NameID.NameQualifier != testIdPURL+"/metadata" ||
		len(lr.AllSessionIndexes()) != 1 || lr.AllSessionIndexes()[0].Value != "session-index-1" || lr.Destination != testIdPURL+"/slo" {
		t.Fatalf("LogoutRequest: %+v", lr)
	}

	// The IdP's answer, by HTTP-POST.
	answer := func(inResponseTo, destination string) *http.Request {
		r := &crewjam.LogoutResponse{
			ID: "id-logout-response", InResponseTo: inResponseTo, Version: "2.0", IssueInstant: t0, Destination: destination,
			Issuer: &crewjam.Issuer{Value: e.idp.entityID()},
			Status: crewjam.Status{StatusCode: crewjam.StatusCode{Value: crewjam.StatusSuccess}},
		}
		signed, err := e.idp.signingContext(t, e.idp.kp).SignEnveloped(r.Element())
		if err != nil {
			t.Fatal(err)
		}
		r.Signature = signed.ChildElements()[len(signed.ChildElements())-1]
		doc := etree.NewDocument()
		doc.SetRoot(r.Element())
		b, _ := doc.WriteToBytes()
		req := httptest.NewRequest(http.MethodPost, testBase+"/saml/corp/slo",
			strings.NewReader(url.Values{"SAMLResponse": {b64(b)}, "RelayState": {"logout-relay"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req
	}
	if err := e.conn.HandleLogoutResponse(ctx, answer(lo.RequestID, testBase+"/saml/corp/slo"), []string{lo.RequestID}); err != nil {
		t.Fatalf("LogoutResponse: %v", err)
	}
	err = e.conn.HandleLogoutResponse(ctx, answer("id-other", testBase+"/saml/corp/slo"), []string{lo.RequestID})
	if ae := acsErr(t, err); ae.Reason != saml.ReasonInResponseTo {
		t.Fatalf("LogoutResponse to another request: %v", err)
	}
	err = e.conn.HandleLogoutResponse(ctx, answer(lo.RequestID, "https://evil.example.com/slo"), []string{lo.RequestID})
	if ae := acsErr(t, err); ae.Reason != saml.ReasonDestination {
		t.Fatalf("LogoutResponse to another SP: %v", err)
	}

	// Without spKey nothing can be signed, so nothing is sent.
	unsignedEnv := newEnv(t, func(c *saml.Config) { c.SPKey, c.SPCertificate = "", "" })
	if lo, err := unsignedEnv.conn.LogoutRequest(ctx, res.Identity, ""); err != nil || !lo.Empty() {
		t.Fatalf("without spKey: %+v, %v", lo, err)
	}

	// Nothing to log out of.
	for name, id := range map[string]providers.Identity{
		"no connector data": {Subject: "x"},
		"no NameID":         {Subject: "x", ConnectorData: []byte(`{"nameID":""}`)},
	} {
		lo, err := e.conn.LogoutRequest(ctx, id, "")
		if err != nil || !lo.Empty() {
			t.Fatalf("%s: %+v, %v", name, lo, err)
		}
	}
}
