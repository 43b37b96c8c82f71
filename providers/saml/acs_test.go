package saml_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	crewjam "github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/saml"
	"github.com/latchkeyid/latchkey/providers/saml/samltest"
)

var alice = providers.Identity{
	Subject: "alice@example.com", Username: "alice", Email: "alice@example.com", EmailVerified: true,
	Name: "Alice Smith", Groups: []string{"staff", "admins"}, AMR: []string{"fed"},
}

func withoutData(id providers.Identity) providers.Identity {
	id.ConnectorData = nil
	return id
}

// TestValidResponses accepts the shapes IdPs send: both signed, only the
// assertion signed, only the response signed, an encrypted assertion.
func TestValidResponses(t *testing.T) {
	k := testKeys(t)
	spCert, spEnc := k["sp"].cert, k["spenc"].cert
	tests := []struct {
		name string
		cfg  func(*saml.Config)
		opts respOpts
	}{
		{name: "response and assertion signed", opts: respOpts{}},
		{name: "only the assertion signed", cfg: func(c *saml.Config) { c.RequireSignedResponse = nil },
			opts: respOpts{unsignedResp: true}},
		{name: "only the response signed", cfg: func(c *saml.Config) { c.RequireSignedAssertion = ptr(false) },
			opts: respOpts{unsignedAssert: true}},
		{name: "encrypted to spKey", opts: respOpts{encryptTo: spCert}},
		{name: "encrypted to spEncryptionKey, response unsigned", cfg: func(c *saml.Config) {
			c.RequireSignedResponse = nil
			c.SPEncryptionKey, c.SPEncryptionCertificate = k["spenc"].keyPEM, k["spenc"].certPEM
		}, opts: respOpts{encryptTo: spEnc, unsignedResp: true}},
		{name: "IdP clock 60s behind", opts: respOpts{now: t0.Add(-60 * time.Second)}},
		{name: "IdP clock 100s ahead, within clockSkew", opts: respOpts{now: t0.Add(100 * time.Second)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.cfg)
			res, err := e.acs(b64(e.idp.responseXML(t, tc.opts)))
			if err != nil {
				t.Fatalf("HandleACS: %v", err)
			}
			if got := withoutData(res.Identity); !reflect.DeepEqual(got, alice) {
				t.Fatalf("identity:\n got %#v\nwant %#v", got, alice)
			}
			if res.AssertionID != "id-assertion-0001" || res.InResponseTo != testReqID || res.IdPInitiated ||
				res.SessionIndex != "session-index-1" {
				t.Fatalf("result: %+v", res)
			}
			var ld map[string]string
			if err := json.Unmarshal(res.Identity.ConnectorData, &ld); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"nameID": "alice@example.com", "format": string(crewjam.EmailAddressNameIDFormat),
				"nameQualifier": testIdPURL + "/metadata", "spNameQualifier": testEntity, "sessionIndex": "session-index-1"}
			if !reflect.DeepEqual(ld, want) {
				t.Fatalf("connector data: %v", ld)
			}
			if _, ok := e.replay.seen[testConnID+":id-assertion-0001"]; !ok {
				t.Fatalf("assertion not recorded in the replay cache: %v", e.replay.seen)
			}
		})
	}
}

func acsErr(t *testing.T, err error) *saml.ACSError {
	t.Helper()
	var ae *saml.ACSError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v (%T), want *saml.ACSError", err, err)
	}
	if !errors.Is(err, providers.ErrInvalidCallback) {
		t.Fatalf("err = %v does not match ErrInvalidCallback", err)
	}
	return ae
}

// TestBadResponses refuses each kind of bad input with its exact reason
// and message.
func TestBadResponses(t *testing.T) {
	k := testKeys(t)
	other := k["other"]
	const prefix = "saml: invalid upstream callback: "
	tests := []struct {
		name   string
		cfg    func(*saml.Config)
		input  func(t *testing.T, e *env) string
		reason saml.Reason
		msg    string
		cause  error // a sentinel the error must also match, if any
	}{
		{
			name: "unsigned response and assertion",
			input: func(t *testing.T, e *env) string {
				return b64(e.idp.responseXML(t, respOpts{unsignedResp: true, unsignedAssert: true}))
			},
			reason: saml.ReasonUnsigned, msg: "the SAML response carries no signature",
		},
		{
			name:   "response unsigned although requireSignedResponse",
			input:  func(t *testing.T, e *env) string { return b64(e.idp.responseXML(t, respOpts{unsignedResp: true})) },
			reason: saml.ReasonUnsigned, msg: "the SAML Response must be signed (requireSignedResponse)",
		},
		{
			name:   "assertion unsigned although requireSignedAssertion",
			input:  func(t *testing.T, e *env) string { return b64(e.idp.responseXML(t, respOpts{unsignedAssert: true})) },
			reason: saml.ReasonUnsigned, msg: "the SAML assertion must be signed (requireSignedAssertion)",
		},
		{
			name:   "signed by another key",
			input:  func(t *testing.T, e *env) string { return b64(e.idp.responseXML(t, respOpts{signer: &other})) },
			reason: saml.ReasonSignature, msg: "the SAML response is signed by a certificate that is not in the IdP metadata",
			cause: crewjam.ErrInvalidSignature,
		},
		{
			name: "assertion signed by another key inside an unsigned response",
			cfg:  func(c *saml.Config) { c.RequireSignedResponse = nil },
			input: func(t *testing.T, e *env) string {
				return b64(e.idp.responseXML(t, respOpts{signer: &other, unsignedResp: true}))
			},
			reason: saml.ReasonSignature, msg: "the SAML response is signed by a certificate that is not in the IdP metadata",
			cause: crewjam.ErrInvalidSignature,
		},
		{
			name: "SHA-1 signature",
			input: func(t *testing.T, e *env) string {
				return b64(e.idp.responseXML(t, respOpts{sigMethod: dsig.RSASHA1SignatureMethod}))
			},
			reason: saml.ReasonSignature, msg: "the SAML response's signature is invalid", cause: crewjam.ErrUnsupported,
		},
		{
			name: "signed content changed after signing",
			input: func(t *testing.T, e *env) string {
				x := strings.Replace(string(e.idp.responseXML(t, respOpts{})), ">Alice Smith<", ">Mallory<", 1)
				return b64([]byte(x))
			},
			reason: saml.ReasonSignature, msg: "the SAML response's signature is invalid", cause: crewjam.ErrInvalidSignature,
		},
		{
			name: "wrapping: signed assertion moved beside an unsigned one",
			cfg:  func(c *saml.Config) { c.RequireSignedResponse = nil },
			input: func(t *testing.T, e *env) string {
				signed := e.idp.assertion(respOpts{})
				signedEl := e.idp.assertionElement(t, respOpts{}, signed)
				evil := e.idp.assertion(respOpts{assertionID: "id-evil", nameID: "mallory@example.com"})
				evilEl := e.idp.assertionElement(t, respOpts{unsignedAssert: true}, evil)
				return b64(e.idp.responseDoc(t, respOpts{unsignedResp: true}, evilEl, signedEl))
			},
			reason: saml.ReasonMalformed, msg: "the SAML response is malformed", cause: crewjam.ErrMalformedMessage,
		},
		{
			name: "wrapping: unsigned assertion takes the signed one's ID and signature",
			cfg:  func(c *saml.Config) { c.RequireSignedResponse = nil },
			input: func(t *testing.T, e *env) string {
				signed := e.idp.assertion(respOpts{})
				e.idp.assertionElement(t, respOpts{}, signed) // sets signed.Signature
				evil := e.idp.assertion(respOpts{nameID: "mallory@example.com"})
				evil.Signature = signed.Signature
				return b64(e.idp.responseDoc(t, respOpts{unsignedResp: true}, evil.Element()))
			},
			reason: saml.ReasonSignature, msg: "the SAML response's signature is invalid", cause: crewjam.ErrInvalidSignature,
		},
		{
			name: "wrapping: evil assertion added to a signed response",
			input: func(t *testing.T, e *env) string {
				x := string(e.idp.responseXML(t, respOpts{}))
				evil := e.idp.assertion(respOpts{assertionID: "id-evil", nameID: "mallory@example.com"})
				el := e.idp.assertionElement(t, respOpts{unsignedAssert: true}, evil)
				return b64([]byte(strings.Replace(x, "</samlp:Response>", elementString(t, el)+"</samlp:Response>", 1)))
			},
			reason: saml.ReasonSignature, msg: "the SAML response's signature is invalid", cause: crewjam.ErrInvalidSignature,
		},
		{
			name: "expired assertion",
			input: func(t *testing.T, e *env) string {
				return b64(e.idp.responseXML(t, respOpts{now: t0.Add(-10 * time.Minute)}))
			},
			reason: saml.ReasonExpired, msg: "the SAML assertion has expired", cause: crewjam.ErrExpired,
		},
		{
			name: "NotOnOrAfter past clockSkew but within crewjam's 3 minutes",
			input: func(t *testing.T, e *env) string {
				return b64(e.idp.responseXML(t, respOpts{editAssertion: func(a *crewjam.Assertion) {
					a.Conditions.NotOnOrAfter = t0.Add(-150 * time.Second)
				}}))
			},
			reason: saml.ReasonExpired, msg: "the SAML assertion has expired",
		},
		{
			name: "SubjectConfirmationData NotOnOrAfter past clockSkew",
			input: func(t *testing.T, e *env) string {
				return b64(e.idp.responseXML(t, respOpts{editAssertion: func(a *crewjam.Assertion) {
					a.Subject.SubjectConfirmations[0].SubjectConfirmationData.NotOnOrAfter = t0.Add(-150 * time.Second)
				}}))
			},
			reason: saml.ReasonExpired, msg: "the SAML assertion has expired",
		},
		{
			name: "not yet valid assertion",
			input: func(t *testing.T, e *env) string {
				return b64(e.idp.responseXML(t, respOpts{now: t0.Add(10 * time.Minute)}))
			},
			reason: saml.ReasonNotYetValid, msg: "the SAML assertion is not valid yet", cause: crewjam.ErrNotYetValid,
		},
		{
			name: "NotBefore ahead of clockSkew but within crewjam's 3 minutes",
			input: func(t *testing.T, e *env) string {
				return b64(e.idp.responseXML(t, respOpts{editAssertion: func(a *crewjam.Assertion) {
					a.Conditions.NotBefore = t0.Add(150 * time.Second)
				}}))
			},
			reason: saml.ReasonNotYetValid, msg: "the SAML assertion is not valid yet",
		},
		{
			name: "wrong audience",
			input: func(t *testing.T, e *env) string {
				return b64(e.idp.responseXML(t, respOpts{editAssertion: func(a *crewjam.Assertion) {
					a.Conditions.AudienceRestrictions[0].Audience.Value = "https://other-sp.example.com/metadata"
				}}))
			},
			reason: saml.ReasonAudience, msg: "the SAML assertion is meant for another service provider (audience)",
			cause: crewjam.ErrAudienceMismatch,
		},
		{
			name: "no audience restriction",
			input: func(t *testing.T, e *env) string {
				return b64(e.idp.responseXML(t, respOpts{editAssertion: func(a *crewjam.Assertion) {
					a.Conditions.AudienceRestrictions = nil
				}}))
			},
			reason: saml.ReasonAudience, msg: "the SAML assertion is meant for another service provider (audience)",
			cause: crewjam.ErrAudienceMismatch,
		},
		{
			name: "wrong recipient",
			input: func(t *testing.T, e *env) string {
				return b64(e.idp.responseXML(t, respOpts{editAssertion: func(a *crewjam.Assertion) {
					a.Subject.SubjectConfirmations[0].SubjectConfirmationData.Recipient = "https://other-sp.example.com/acs"
				}}))
			},
			reason: saml.ReasonRecipient, msg: "the SAML assertion is meant for another ACS URL (recipient)",
			cause: crewjam.ErrDestinationMismatch,
		},
		{
			name: "wrong destination",
			input: func(t *testing.T, e *env) string {
				return b64(e.idp.responseXML(t, respOpts{editResponse: func(r *crewjam.Response) {
					r.Destination = "https://other-sp.example.com/acs"
				}}))
			},
			reason: saml.ReasonDestination, msg: "the SAML response is addressed to another ACS URL (destination)",
			cause: crewjam.ErrDestinationMismatch,
		},
		{
			name: "wrong issuer",
			input: func(t *testing.T, e *env) string {
				return b64(e.idp.responseXML(t, respOpts{editAssertion: func(a *crewjam.Assertion) {
					a.Issuer.Value = "https://evil.example.net/metadata"
				}}))
			},
			reason: saml.ReasonIssuer, msg: "the SAML response comes from another issuer than the IdP",
			cause: crewjam.ErrIssuerMismatch,
		},
		{
			name: "InResponseTo of another request",
			input: func(t *testing.T, e *env) string {
				return b64(e.idp.responseXML(t, respOpts{inResponseTo: "id-request-other"}))
			},
			reason: saml.ReasonInResponseTo, msg: "the SAML response answers another login request (InResponseTo)",
			cause: crewjam.ErrRequestIDMismatch,
		},
		{
			name: "assertion answers another request than its response",
			input: func(t *testing.T, e *env) string {
				return b64(e.idp.responseXML(t, respOpts{editAssertion: func(a *crewjam.Assertion) {
					a.Subject.SubjectConfirmations[0].SubjectConfirmationData.InResponseTo = "id-request-other"
				}}))
			},
			reason: saml.ReasonInResponseTo, msg: "the SAML response answers another login request (InResponseTo)",
			cause: crewjam.ErrRequestIDMismatch,
		},
		{
			name:   "unsolicited response for a pending request",
			input:  func(t *testing.T, e *env) string { return b64(e.idp.responseXML(t, respOpts{inResponseTo: "-"})) },
			reason: saml.ReasonUnsolicited, msg: "an unsolicited SAML response arrived for a pending login request",
			cause: crewjam.ErrRequestIDMismatch,
		},
		{
			name: "transient NameID without attributes.subject",
			input: func(t *testing.T, e *env) string {
				return b64(e.idp.responseXML(t, respOpts{nameID: "_a1b2c3", nameIDFormat: string(crewjam.TransientNameIDFormat)}))
			},
			reason: saml.ReasonSubject, msg: "the SAML assertion's NameID is transient, so it cannot identify the user: set attributes.subject",
		},
		{
			name:   "attributes.subject missing",
			cfg:    func(c *saml.Config) { c.Attributes.Subject = "objectGUID" },
			input:  func(t *testing.T, e *env) string { return b64(e.idp.responseXML(t, respOpts{})) },
			reason: saml.ReasonSubject, msg: "the SAML assertion lacks the subject attribute (attributes.subject)",
		},
		{
			name: "encrypted to a key we do not have",
			input: func(t *testing.T, e *env) string {
				return b64(e.idp.responseXML(t, respOpts{encryptTo: k["other"].cert}))
			},
			reason: saml.ReasonDecryption, msg: "the SAML assertion cannot be decrypted", cause: crewjam.ErrDecryptionFailed,
		},
		{
			name:   "malformed base64",
			input:  func(t *testing.T, e *env) string { return "PHNhbWxwOlJlc3BvbnNl!!!" },
			reason: saml.ReasonMalformed, msg: "the SAML response is not valid base64",
		},
		{
			name:   "empty",
			input:  func(t *testing.T, e *env) string { return "" },
			reason: saml.ReasonMalformed, msg: "the SAML response is empty",
		},
		{
			name:   "not XML",
			input:  func(t *testing.T, e *env) string { return b64([]byte("hello <world")) },
			reason: saml.ReasonMalformed, msg: "the SAML response is not well-formed XML",
		},
		{
			name: "not a Response",
			input: func(t *testing.T, e *env) string {
				return b64([]byte(`<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"/>`))
			},
			reason: saml.ReasonMalformed, msg: "the document is not a SAML Response",
		},
		{
			name:   "XML bomb: entity expansion",
			input:  func(t *testing.T, e *env) string { return b64([]byte(billionLaughs)) },
			reason: saml.ReasonXMLForbidden, msg: "the SAML response contains a document type declaration (DTD), which SAML never uses",
		},
		{
			name: "XML bomb: external entity",
			input: func(t *testing.T, e *env) string {
				return b64([]byte(`<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&x;</samlp:Response>`))
			},
			reason: saml.ReasonXMLForbidden, msg: "the SAML response contains a document type declaration (DTD), which SAML never uses",
		},
		{
			name: "XML bomb: deep nesting",
			input: func(t *testing.T, e *env) string {
				return b64([]byte(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">` +
					strings.Repeat("<a>", 100000) + strings.Repeat("</a>", 100000) + `</samlp:Response>`))
			},
			reason: saml.ReasonTooLarge, msg: "the SAML response is larger than 512 KiB",
		},
		{
			name: "XML bomb: deep nesting under the size limit",
			input: func(t *testing.T, e *env) string {
				return b64([]byte(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">` +
					strings.Repeat("<a>", 1000) + strings.Repeat("</a>", 1000) + `</samlp:Response>`))
			},
			reason: saml.ReasonXMLForbidden, msg: "the SAML response nests elements too deeply",
		},
		{
			name:   "oversized body",
			input:  func(t *testing.T, e *env) string { return strings.Repeat("A", saml.MaxResponseBytes+4) },
			reason: saml.ReasonTooLarge, msg: "the SAML response is larger than 512 KiB",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.cfg)
			res, err := e.acs(tc.input(t, e))
			if err == nil {
				t.Fatalf("accepted: %+v", withoutData(res.Identity))
			}
			ae := acsErr(t, err)
			if ae.Reason != tc.reason || err.Error() != prefix+tc.msg {
				t.Fatalf("err = %q (reason %s, cause %v)\nwant %q (reason %s)", err, ae.Reason, ae.Cause, prefix+tc.msg, tc.reason)
			}
			if tc.cause != nil && !errors.Is(err, tc.cause) {
				t.Fatalf("err = %v (cause %v) does not match %v", err, ae.Cause, tc.cause)
			}
			if len(e.replay.seen) != 0 {
				t.Fatalf("a refused response reached the replay cache: %v", e.replay.seen)
			}
		})
	}
}

const billionLaughs = samltest.BillionLaughs
