package saml_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/providertest"
	"github.com/latchkeyid/latchkey/providers/saml"
)

func TestValidate(t *testing.T) {
	k := testKeys(t)
	idp := newTestIdP(t, k["idp"], testIdPURL)
	md := idp.metadataXML(t)
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	dir := t.TempDir()
	mdFile := filepath.Join(dir, "idp.xml")
	if err := os.WriteFile(mdFile, []byte(md), 0o600); err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalECPrivateKey(ec)
	ecKey := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}))
	tests := []struct {
		name string
		json string
		want []string
	}{
		{name: "inline metadata, defaults", json: `{"idpMetadata": ` + q(md) + `}`},
		{name: "metadata file reference", json: `{"idpMetadata": ` + q("file:"+mdFile) + `}`},
		{name: "metadata URL with everything", json: `{
			"idpMetadataURL": "https://idp.example.net/metadata", "idpMetadataRefresh": "6h",
			"idpMetadataCertificates": [` + q(k["metadata"].certPEM) + `], "idpEntityID": "https://idp.example.net/metadata",
			"entityID": "urn:latchkey:corp", "spKey": ` + q(k["sp"].keyPEM) + `, "spCertificate": ` + q(k["sp"].certPEM) + `,
			"spEncryptionKey": ` + q(k["spenc"].keyPEM) + `, "spEncryptionCertificate": ` + q(k["spenc"].certPEM) + `,
			"signAuthnRequests": true, "binding": "post", "requireSignedResponse": true, "requireSignedAssertion": false,
			"nameIDFormat": "persistent", "allowIdPInitiated": true, "defaultClient": "intranet", "clockSkew": "30s",
			"attributes": {"subject": "objectGUID", "email": "mail", "name": "cn", "username": "uid", "groups": "memberOf"},
			"allowedGroups": ["staff"], "emailVerified": false,
			"claimMapping": {"username": "claims.uid[0]"}, "allow": ["'staff' in groups"]}`},
		{name: "nothing", json: `{}`, want: []string{"idpMetadataURL: required (or idpMetadata)"}},
		{name: "never neither", json: `{"idpMetadata": ` + q(md) + `, "requireSignedAssertion": false}`,
			want: []string{"requireSignedAssertion: requireSignedResponse and requireSignedAssertion cannot both be false: an unsigned assertion would be accepted"}},
		{name: "never neither, both explicit", json: `{"idpMetadata": ` + q(md) + `, "requireSignedAssertion": false, "requireSignedResponse": false}`,
			want: []string{"requireSignedAssertion: requireSignedResponse and requireSignedAssertion cannot both be false: an unsigned assertion would be accepted"}},
		{name: "every problem at once", json: `{
			"idpMetadataURL": "http://idp.example.net/metadata", "idpMetadata": "<x/>", "idpMetadataRefresh": "10s",
			"idpMetadataCertificates": ["nope"], "spKey": ` + q(k["sp"].keyPEM) + `, "spCertificate": ` + q(k["other"].certPEM) + `,
			"spEncryptionKey": ` + q(ecKey) + `, "spEncryptionCertificate": ` + q(k["spenc"].certPEM) + `, "binding": "artifact", "nameIDFormat": "email",
			"allowIdPInitiated": true, "clockSkew": "10m", "allowedGroups": [""], "attributes": {"email": " mail"},
			"claimMapping": {"email": "1 + 2"}, "unknown": 1}`,
			want: []string{
				"allowedGroups[0]: must not be empty",
				"attributes.email: must not have surrounding spaces",
				"binding: must be redirect or post",
				"claimMapping.email: must be of type string, not int",
				"clockSkew: must be between 0s and 3m0s",
				"defaultClient: required with allowIdPInitiated: an unsolicited login needs a client to sign in to",
				"idpMetadata: set either idpMetadataURL or idpMetadata, not both",
				"idpMetadataCertificates[0]: must be a PEM CERTIFICATE block",
				"idpMetadataRefresh: must be at least 1m0s",
				"nameIDFormat: must be persistent, transient, emailAddress, unspecified or a urn: format",
				"spCertificate: does not hold the public key of spKey",
				"spEncryptionKey: must be an RSA key (XML encryption transports keys with RSA)",
				"unknown: unknown key",
			}},
		{name: "http metadata URL off loopback", json: `{"idpMetadataURL": "http://idp.example.net/metadata"}`,
			want: []string{"idpMetadataURL: must use https (http only for loopback hosts)"}},
		{name: "signing without a key", json: `{"idpMetadata": ` + q(md) + `, "signAuthnRequests": true, "spCertificate": ` + q(k["sp"].certPEM) + `}`,
			want: []string{"signAuthnRequests: needs spKey and spCertificate", "spKey: required with spCertificate"}},
		{name: "defaultClient without allowIdPInitiated", json: `{"idpMetadata": ` + q(md) + `, "defaultClient": "x"}`,
			want: []string{"defaultClient: only applies with allowIdPInitiated: true"}},
		{name: "metadata not XML", json: `{"idpMetadata": "not xml"}`,
			want: []string{"idpMetadata: not acceptable XML: not well-formed: text outside the root element"}},
		{name: "metadata with a DTD", json: `{"idpMetadata": ` + q(`<!DOCTYPE x [<!ENTITY a "b">]><x/>`) + `}`,
			want: []string{"idpMetadata: not acceptable XML: document type declarations (DTD) are not allowed"}},
		{name: "SP metadata given as IdP metadata", json: `{"idpMetadata": ` + q(spMetadata(t)) + `}`,
			want: []string{"idpMetadata: the metadata has no IDPSSODescriptor: it does not describe an identity provider"}},
		{name: "metadata of another entity", json: `{"idpMetadata": ` + q(md) + `, "idpEntityID": "https://other.example"}`,
			want: []string{`idpMetadata: not valid SAML metadata: entityID is "https://idp.example.net/metadata", not idpEntityID "https://other.example"`}},
		{name: "metadata not signed by the pinned certificate", json: `{"idpMetadata": ` + q(md) + `, "idpMetadataCertificates": [` + q(k["metadata"].certPEM) + `]}`,
			want: []string{"idpMetadata: signature does not verify with idpMetadataCertificates: metadata is not signed"}},
		{name: "missing metadata file", json: `{"idpMetadata": ` + q("file:"+filepath.Join(dir, "missing.xml")) + `}`,
			want: []string{"idpMetadata: cannot read the metadata file: no such file or directory"}},
		{name: "binding post needs an HTTP-POST SSO endpoint", json: `{"idpMetadata": ` + q(strings.Replace(md, "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST", "urn:x", 1)) + `, "binding": "post"}`,
			want: []string{"idpMetadata: the IdP offers no HTTP-POST SingleSignOnService (set binding to the other one)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, p := range (saml.Type{}).Validate(json.RawMessage(tc.json)) {
				got = append(got, p.String())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func spMetadata(t *testing.T) string {
	e := newEnv(t, nil)
	b, err := e.conn.SPMetadata()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestOpen(t *testing.T) {
	k := testKeys(t)
	raw, _ := json.Marshal(saml.Config{IdPMetadata: newTestIdP(t, k["idp"], testIdPURL).metadataXML(t)})
	deps := providertest.NewDeps(t, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		typ  saml.Type
		info providers.Info
		raw  string
		want string
	}{
		{"no replay cache", saml.Type{BaseURL: testBase}, providers.Info{ID: "c"}, string(raw), "saml: Type.Replay is nil (the replay cache is required)"},
		{"no base URL", saml.Type{Replay: newMemReplay()}, providers.Info{ID: "c"}, string(raw), `saml: Type.BaseURL "" is not an absolute http(s) URL`},
		{"no id", saml.Type{BaseURL: testBase, Replay: newMemReplay()}, providers.Info{}, string(raw), "saml: connector id is empty"},
		{"bad config", saml.Type{BaseURL: testBase, Replay: newMemReplay()}, providers.Info{ID: "c"}, `{}`, "invalid connector config: idpMetadataURL: required (or idpMetadata)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.typ.Open(ctx, tc.info, json.RawMessage(tc.raw), deps)
			if errString(err) != tc.want {
				t.Fatalf("err = %v, want %s", err, tc.want)
			}
		})
	}
	c, err := (saml.Type{BaseURL: testBase, Replay: newMemReplay()}).Open(ctx, providers.Info{ID: "corp"}, raw, deps)
	if err != nil || c.ID() != "corp" || c.Name() != "corp" {
		t.Fatalf("open: %v", err)
	}
	if _, ok := c.(saml.Capability); !ok {
		t.Fatal("an open saml connector is not a saml.Capability")
	}
}
