package saml_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"encoding/xml"
	"math/big"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	crewjam "github.com/crewjam/saml"
	"github.com/crewjam/saml/xmlenc"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/providertest"
	"github.com/latchkeyid/latchkey/providers/saml"
)

// t0 is the fake time of the in-process tests.
var t0 = time.Date(2031, 3, 4, 10, 0, 0, 0, time.UTC)

const (
	testBase   = "https://login.example.com"
	testConnID = "corp"
	testIdPURL = "https://idp.example.net"
	testACS    = testBase + "/saml/corp/acs"
	testEntity = testBase + "/saml/corp/metadata"
	testReqID  = "id-request-0001"
	testRelay  = "relay-state-0001"
)

type keyPair struct {
	key     *rsa.PrivateKey
	cert    *x509.Certificate
	keyPEM  string
	certPEM string
}

var (
	keysOnce sync.Once
	keys     map[string]keyPair
)

// testKeys returns RSA key pairs made once per test binary: "idp", "other"
// (an attacker's IdP key), "sp", "spenc", "metadata". Their certificates
// are valid around t0 and now.
func testKeys(t testing.TB) map[string]keyPair {
	t.Helper()
	keysOnce.Do(func() {
		keys = map[string]keyPair{}
		for _, name := range []string{"idp", "other", "sp", "spenc", "metadata"} {
			keys[name] = newKeyPair(name)
		}
	})
	return keys
}

func newKeyPair(cn string) keyPair {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	notBefore := t0.Add(-24 * time.Hour)
	if now := time.Now(); now.Before(notBefore) {
		notBefore = now.Add(-time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    notBefore,
		NotAfter:     t0.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return keyPair{
		key:     key,
		cert:    cert,
		keyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})),
		certPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
	}
}

// testIdP is an in-process IdP built on crewjam's IdentityProvider (for
// its metadata) with a response builder that can sign, encrypt and break
// every part.
type testIdP struct {
	kp  keyPair
	idp *crewjam.IdentityProvider
}

func newTestIdP(t testing.TB, kp keyPair, base string) *testIdP {
	t.Helper()
	must := func(s string) url.URL {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return *u
	}
	return &testIdP{kp: kp, idp: &crewjam.IdentityProvider{
		Key:         kp.key,
		Certificate: kp.cert,
		MetadataURL: must(base + "/metadata"),
		SSOURL:      must(base + "/sso"),
		LogoutURL:   must(base + "/slo"),
		Clock:       dsig.NewFakeClockAt(t0),
	}}
}

func (p *testIdP) entityID() string { return p.idp.MetadataURL.String() }

func (p *testIdP) metadataXML(t testing.TB) string {
	t.Helper()
	b, err := xml.MarshalIndent(p.idp.Metadata(), "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// respOpts describe a response; the zero value (after defaults) is a
// valid response to testReqID signed on the Response and the Assertion.
type respOpts struct {
	inResponseTo   string // default testReqID; "-" for none (unsolicited)
	unsignedResp   bool
	unsignedAssert bool
	encryptTo      *x509.Certificate // encrypt the assertion to this certificate
	signer         *keyPair          // default the IdP's key
	sigMethod      string            // default RSA-SHA256
	now            time.Time         // default t0
	assertionID    string            // default id-assertion-0001
	nameID         string            // default alice@example.com (emailAddress)
	nameIDFormat   string
	attributes     []crewjam.Attribute // default: a typical set
	editAssertion  func(*crewjam.Assertion)
	editResponse   func(*crewjam.Response)
}

func defaultAttributes() []crewjam.Attribute {
	str := func(vs ...string) []crewjam.AttributeValue {
		out := make([]crewjam.AttributeValue, len(vs))
		for i, v := range vs {
			out[i] = crewjam.AttributeValue{Type: "xs:string", Value: v}
		}
		return out
	}
	return []crewjam.Attribute{
		{FriendlyName: "mail", Name: "urn:oid:0.9.2342.19200300.100.1.3", NameFormat: "urn:oasis:names:tc:SAML:2.0:attrname-format:uri", Values: str("alice@example.com")},
		{FriendlyName: "displayName", Name: "urn:oid:2.16.840.1.113730.3.1.241", Values: str("Alice Smith")},
		{FriendlyName: "uid", Name: "urn:oid:0.9.2342.19200300.100.1.1", Values: str("alice")},
		{Name: "groups", Values: str("staff", "admins")},
	}
}

func (p *testIdP) signingContext(t testing.TB, kp keyPair, method ...string) *dsig.SigningContext {
	t.Helper()
	ctx := dsig.NewDefaultSigningContext(dsig.TLSCertKeyStore(tls.Certificate{
		Certificate: [][]byte{kp.cert.Raw}, PrivateKey: kp.key, Leaf: kp.cert,
	}))
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	m := dsig.RSASHA256SignatureMethod
	if len(method) > 0 && method[0] != "" {
		m = method[0]
	}
	if err := ctx.SetSignatureMethod(m); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// assertion returns the assertion o describes (unsigned).
func (p *testIdP) assertion(o respOpts) *crewjam.Assertion {
	now := o.now
	if now.IsZero() {
		now = t0
	}
	irt := o.inResponseTo
	if irt == "" {
		irt = testReqID
	} else if irt == "-" {
		irt = ""
	}
	id := o.assertionID
	if id == "" {
		id = "id-assertion-0001"
	}
	nameID, format := o.nameID, o.nameIDFormat
	if nameID == "" {
		nameID = "alice@example.com"
	}
	if format == "" {
		format = string(crewjam.EmailAddressNameIDFormat)
	}
	attrs := o.attributes
	if attrs == nil {
		attrs = defaultAttributes()
	}
	return &crewjam.Assertion{
		ID:           id,
		IssueInstant: now,
		Version:      "2.0",
		Issuer:       crewjam.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: p.entityID()},
		Subject: &crewjam.Subject{
			NameID: &crewjam.NameID{Format: format, Value: nameID, NameQualifier: p.entityID(), SPNameQualifier: testEntity},
			SubjectConfirmations: []crewjam.SubjectConfirmation{{
				Method: "urn:oasis:names:tc:SAML:2.0:cm:bearer",
				SubjectConfirmationData: &crewjam.SubjectConfirmationData{
					InResponseTo: irt, NotOnOrAfter: now.Add(90 * time.Second), Recipient: testACS,
				},
			}},
		},
		Conditions: &crewjam.Conditions{
			NotBefore: now.Add(-30 * time.Second), NotOnOrAfter: now.Add(90 * time.Second),
			AudienceRestrictions: []crewjam.AudienceRestriction{{Audience: crewjam.Audience{Value: testEntity}}},
		},
		AuthnStatements: []crewjam.AuthnStatement{{
			AuthnInstant: now, SessionIndex: "session-index-1",
			AuthnContext: crewjam.AuthnContext{AuthnContextClassRef: &crewjam.AuthnContextClassRef{
				Value: "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"}},
		}},
		AttributeStatements: []crewjam.AttributeStatement{{Attributes: attrs}},
	}
}

// assertionElement signs (unless unsignedAssert) and encrypts (with
// encryptTo) the assertion.
func (p *testIdP) assertionElement(t testing.TB, o respOpts, a *crewjam.Assertion) *etree.Element {
	t.Helper()
	signer := p.kp
	if o.signer != nil {
		signer = *o.signer
	}
	if !o.unsignedAssert {
		signed, err := p.signingContext(t, signer, o.sigMethod).SignEnveloped(a.Element())
		if err != nil {
			t.Fatal(err)
		}
		a.Signature = signed.Child[len(signed.Child)-1].(*etree.Element)
	}
	el := a.Element()
	if o.encryptTo == nil {
		return el
	}
	doc := etree.NewDocument()
	doc.SetRoot(el)
	buf, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	enc := xmlenc.OAEP()
	enc.BlockCipher = xmlenc.AES256GCM
	data, err := enc.Encrypt(o.encryptTo, buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	data.CreateAttr("Type", "http://www.w3.org/2001/04/xmlenc#Element")
	ea := etree.NewElement("saml:EncryptedAssertion")
	ea.AddChild(data)
	return ea
}

// responseDoc returns the Response element around assertionEl, signed
// unless unsignedResp.
func (p *testIdP) responseDoc(t testing.TB, o respOpts, assertionEls ...*etree.Element) []byte {
	t.Helper()
	now := o.now
	if now.IsZero() {
		now = t0
	}
	irt := o.inResponseTo
	if irt == "" {
		irt = testReqID
	} else if irt == "-" {
		irt = ""
	}
	r := &crewjam.Response{
		Destination: testACS, ID: "id-response-0001", InResponseTo: irt, IssueInstant: now, Version: "2.0",
		Issuer: &crewjam.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: p.entityID()},
		Status: crewjam.Status{StatusCode: crewjam.StatusCode{Value: crewjam.StatusSuccess}},
	}
	if o.editResponse != nil {
		o.editResponse(r)
	}
	build := func() *etree.Element {
		el := r.Element()
		for _, a := range assertionEls {
			el.AddChild(a.Copy())
		}
		return el
	}
	el := build()
	if !o.unsignedResp {
		signer := p.kp
		if o.signer != nil {
			signer = *o.signer
		}
		signed, err := p.signingContext(t, signer, o.sigMethod).SignEnveloped(el)
		if err != nil {
			t.Fatal(err)
		}
		r.Signature = signed.ChildElements()[len(signed.ChildElements())-1]
		el = build()
	}
	doc := etree.NewDocument()
	doc.SetRoot(el)
	b, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// responseXML builds the whole response o describes.
func (p *testIdP) responseXML(t testing.TB, o respOpts) []byte {
	t.Helper()
	a := p.assertion(o)
	if o.editAssertion != nil {
		o.editAssertion(a)
	}
	return p.responseDoc(t, o, p.assertionElement(t, o, a))
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// memReplay is an in-memory ReplayCache: the contract the broker's
// ephemeral store implements.
type memReplay struct {
	mu   sync.Mutex
	seen map[string]time.Time
	err  error
}

func newMemReplay() *memReplay { return &memReplay{seen: map[string]time.Time{}} }

func (m *memReplay) Seen(_ context.Context, key string, until time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return false, m.err
	}
	if _, ok := m.seen[key]; ok {
		return true, nil
	}
	m.seen[key] = until
	return false, nil
}

// env is a connector under test with its IdP and fake clock.
type env struct {
	idp    *testIdP
	conn   *saml.Connector
	clock  *clock.Fake
	replay *memReplay
	logs   *providertest.LogBuffer
}

// newEnv opens a connector for the in-process IdP; edit changes the config
// (inline metadata and the keys are already set).
func newEnv(t testing.TB, edit func(*saml.Config)) *env {
	t.Helper()
	k := testKeys(t)
	e := &env{idp: newTestIdP(t, k["idp"], testIdPURL), clock: clock.NewFake(t0), replay: newMemReplay(),
		logs: &providertest.LogBuffer{}}
	cfg := saml.Config{
		IdPMetadata:            e.idp.metadataXML(t),
		SPKey:                  k["sp"].keyPEM,
		SPCertificate:          k["sp"].certPEM,
		RequireSignedResponse:  ptr(true),
		RequireSignedAssertion: ptr(true),
	}
	if edit != nil {
		edit(&cfg)
	}
	deps := providertest.NewDeps(t, e.logs)
	deps.Clock = e.clock
	conn, err := saml.New(context.Background(), saml.Type{BaseURL: testBase, Replay: e.replay},
		providers.Info{ID: testConnID, Name: "Corp SAML"}, cfg, deps)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	e.conn = conn
	return e
}

func ptr[T any](v T) *T { return &v }

// acs posts a response for the pending testReqID.
func (e *env) acs(samlResponse string) (saml.ACSResult, error) {
	return e.conn.HandleACS(context.Background(), saml.ACSRequest{
		SAMLResponse: samlResponse, RelayState: testRelay, ExpectedRelayState: testRelay, RequestIDs: []string{testReqID},
	})
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// elementString serializes el as it would appear inside a document.
func elementString(t testing.TB, el *etree.Element) string {
	t.Helper()
	doc := etree.NewDocument()
	doc.SetRoot(el.Copy())
	s, err := doc.WriteToString()
	if err != nil {
		t.Fatal(err)
	}
	return s
}
