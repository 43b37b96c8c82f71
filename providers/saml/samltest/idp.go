package samltest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"encoding/xml"
	"math/big"
	"net/url"
	"testing"
	"time"

	"github.com/beevik/etree"
	crewjam "github.com/crewjam/saml"
	"github.com/crewjam/saml/xmlenc"
	dsig "github.com/russellhaering/goxmldsig"
)

// KeyPair is an RSA key with a self-signed certificate, also as PEM.
type KeyPair struct {
	Key     *rsa.PrivateKey
	Cert    *x509.Certificate
	KeyPEM  string
	CertPEM string
}

// NewKeyPair makes a 2048-bit RSA key pair whose certificate (common name
// cn) is valid from a day before around (or an hour before now, when that
// is earlier) for ten years after around.
func NewKeyPair(cn string, around time.Time) KeyPair {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	notBefore := around.Add(-24 * time.Hour)
	if now := time.Now(); now.Before(notBefore) {
		notBefore = now.Add(-time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    notBefore,
		NotAfter:     around.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return KeyPair{
		Key:     key,
		Cert:    cert,
		KeyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})),
		CertPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
	}
}

// SP is the service provider an IdP's responses are addressed to.
type SP struct {
	EntityID string // the audience
	ACS      string // Destination and Recipient
}

// IdP is an in-process IdP built on crewjam's IdentityProvider (for its
// metadata) with a response builder that can sign, encrypt and break
// every part of a response.
type IdP struct {
	KP  KeyPair
	IdP *crewjam.IdentityProvider
	SP  SP
	// RequestID is what responses answer (InResponseTo) unless
	// RespOpts.InResponseTo says otherwise.
	RequestID string
	// Now is the responses' IssueInstant unless RespOpts.Now is set.
	Now time.Time
}

// NewIdP returns an IdP at base (metadata at base/metadata, SSO at
// base/sso, SLO at base/slo) signing with kp.
func NewIdP(t testing.TB, kp KeyPair, base string, sp SP, now time.Time) *IdP {
	t.Helper()
	must := func(s string) url.URL {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return *u
	}
	return &IdP{KP: kp, SP: sp, Now: now, IdP: &crewjam.IdentityProvider{
		Key:         kp.Key,
		Certificate: kp.Cert,
		MetadataURL: must(base + "/metadata"),
		SSOURL:      must(base + "/sso"),
		LogoutURL:   must(base + "/slo"),
		Clock:       dsig.NewFakeClockAt(now),
	}}
}

// EntityID is the IdP's entity ID (its metadata URL).
func (p *IdP) EntityID() string { return p.IdP.MetadataURL.String() }

// MetadataXML is the IdP's metadata document.
func (p *IdP) MetadataXML(t testing.TB) string {
	t.Helper()
	b, err := xml.MarshalIndent(p.IdP.Metadata(), "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// RespOpts describe a response; the zero value (after defaults) is a
// valid response to the IdP's RequestID signed on the Response and the
// Assertion.
type RespOpts struct {
	InResponseTo   string // default IdP.RequestID; "-" for none (unsolicited)
	UnsignedResp   bool
	UnsignedAssert bool
	EncryptTo      *x509.Certificate // encrypt the assertion to this certificate
	Signer         *KeyPair          // default the IdP's key
	SigMethod      string            // default RSA-SHA256
	Now            time.Time         // default IdP.Now
	AssertionID    string            // default id-assertion-0001
	NameID         string            // default alice@example.com (emailAddress)
	NameIDFormat   string
	Attributes     []crewjam.Attribute // default: DefaultAttributes
	EditAssertion  func(*crewjam.Assertion)
	EditResponse   func(*crewjam.Response)
}

// DefaultAttributes is a typical attribute set: mail, displayName, uid
// (with FriendlyNames) and groups.
func DefaultAttributes() []crewjam.Attribute {
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

// SigningContext signs with kp (method default RSA-SHA256).
func (p *IdP) SigningContext(t testing.TB, kp KeyPair, method ...string) *dsig.SigningContext {
	t.Helper()
	ctx := dsig.NewDefaultSigningContext(dsig.TLSCertKeyStore(tls.Certificate{
		Certificate: [][]byte{kp.Cert.Raw}, PrivateKey: kp.Key, Leaf: kp.Cert,
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

func (p *IdP) now(o RespOpts) time.Time {
	if !o.Now.IsZero() {
		return o.Now
	}
	return p.Now
}

func (p *IdP) inResponseTo(o RespOpts) string {
	switch o.InResponseTo {
	case "":
		return p.RequestID
	case "-":
		return ""
	}
	return o.InResponseTo
}

// Assertion returns the assertion o describes (unsigned).
func (p *IdP) Assertion(o RespOpts) *crewjam.Assertion {
	now, irt := p.now(o), p.inResponseTo(o)
	id := o.AssertionID
	if id == "" {
		id = "id-assertion-0001"
	}
	nameID, format := o.NameID, o.NameIDFormat
	if nameID == "" {
		nameID = "alice@example.com"
	}
	if format == "" {
		format = string(crewjam.EmailAddressNameIDFormat)
	}
	attrs := o.Attributes
	if attrs == nil {
		attrs = DefaultAttributes()
	}
	return &crewjam.Assertion{
		ID:           id,
		IssueInstant: now,
		Version:      "2.0",
		Issuer:       crewjam.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: p.EntityID()},
		Subject: &crewjam.Subject{
			NameID: &crewjam.NameID{Format: format, Value: nameID, NameQualifier: p.EntityID(), SPNameQualifier: p.SP.EntityID},
			SubjectConfirmations: []crewjam.SubjectConfirmation{{
				Method: "urn:oasis:names:tc:SAML:2.0:cm:bearer",
				SubjectConfirmationData: &crewjam.SubjectConfirmationData{
					InResponseTo: irt, NotOnOrAfter: now.Add(90 * time.Second), Recipient: p.SP.ACS,
				},
			}},
		},
		Conditions: &crewjam.Conditions{
			NotBefore: now.Add(-30 * time.Second), NotOnOrAfter: now.Add(90 * time.Second),
			AudienceRestrictions: []crewjam.AudienceRestriction{{Audience: crewjam.Audience{Value: p.SP.EntityID}}},
		},
		AuthnStatements: []crewjam.AuthnStatement{{
			AuthnInstant: now, SessionIndex: "session-index-1",
			AuthnContext: crewjam.AuthnContext{AuthnContextClassRef: &crewjam.AuthnContextClassRef{
				Value: "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"}},
		}},
		AttributeStatements: []crewjam.AttributeStatement{{Attributes: attrs}},
	}
}

// AssertionElement signs (unless UnsignedAssert) and encrypts (with
// EncryptTo) the assertion.
func (p *IdP) AssertionElement(t testing.TB, o RespOpts, a *crewjam.Assertion) *etree.Element {
	t.Helper()
	signer := p.KP
	if o.Signer != nil {
		signer = *o.Signer
	}
	if !o.UnsignedAssert {
		signed, err := p.SigningContext(t, signer, o.SigMethod).SignEnveloped(a.Element())
		if err != nil {
			t.Fatal(err)
		}
		a.Signature = signed.Child[len(signed.Child)-1].(*etree.Element)
	}
	el := a.Element()
	if o.EncryptTo == nil {
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
	data, err := enc.Encrypt(o.EncryptTo, buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	data.CreateAttr("Type", "http://www.w3.org/2001/04/xmlenc#Element")
	ea := etree.NewElement("saml:EncryptedAssertion")
	ea.AddChild(data)
	return ea
}

// ResponseDoc returns the Response element around the assertion
// elements, signed unless UnsignedResp.
func (p *IdP) ResponseDoc(t testing.TB, o RespOpts, assertionEls ...*etree.Element) []byte {
	t.Helper()
	r := &crewjam.Response{
		Destination: p.SP.ACS, ID: "id-response-0001", InResponseTo: p.inResponseTo(o), IssueInstant: p.now(o), Version: "2.0",
		Issuer: &crewjam.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: p.EntityID()},
		Status: crewjam.Status{StatusCode: crewjam.StatusCode{Value: crewjam.StatusSuccess}},
	}
	if o.EditResponse != nil {
		o.EditResponse(r)
	}
	build := func() *etree.Element {
		el := r.Element()
		for _, a := range assertionEls {
			el.AddChild(a.Copy())
		}
		return el
	}
	el := build()
	if !o.UnsignedResp {
		signer := p.KP
		if o.Signer != nil {
			signer = *o.Signer
		}
		signed, err := p.SigningContext(t, signer, o.SigMethod).SignEnveloped(el)
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

// ResponseXML builds the whole response o describes.
func (p *IdP) ResponseXML(t testing.TB, o RespOpts) []byte {
	t.Helper()
	a := p.Assertion(o)
	if o.EditAssertion != nil {
		o.EditAssertion(a)
	}
	return p.ResponseDoc(t, o, p.AssertionElement(t, o, a))
}

// ElementString serializes el as it would appear inside a document.
func ElementString(t testing.TB, el *etree.Element) string {
	t.Helper()
	doc := etree.NewDocument()
	doc.SetRoot(el.Copy())
	s, err := doc.WriteToString()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// BillionLaughs is the classic entity-expansion bomb around a Response.
const BillionLaughs = `<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"><x>&lol9;</x></samlp:Response>`
