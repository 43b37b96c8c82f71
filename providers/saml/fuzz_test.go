package saml_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	crewjam "github.com/crewjam/saml"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/saml"
)

// FuzzACS feeds HandleACS arbitrary documents (base64-encoded for it, or
// raw as the form field): it must never panic (crewjam/saml's panics
// included, which HandleACS turns into errors), never accept anything but
// the one genuine response, and refuse everything else with an *ACSError
// (or an *UpstreamError for an error status).
func FuzzACS(f *testing.F) {
	e := newEnv(f, func(c *saml.Config) { c.RequireSignedResponse = nil })
	genuine := [][]byte{
		e.idp.responseXML(f, respOpts{}),
		e.idp.responseXML(f, respOpts{unsignedResp: true, assertionID: "id-assertion-0002"}),
		e.idp.responseXML(f, respOpts{encryptTo: testKeys(f)["sp"].cert, assertionID: "id-assertion-0003"}),
	}
	for _, g := range genuine {
		f.Add(g, false)
	}
	f.Add(e.idp.responseXML(f, respOpts{unsignedResp: true, unsignedAssert: true}), false)
	f.Add(e.idp.responseXML(f, respOpts{unsignedResp: true, editResponse: func(r *crewjam.Response) {
		r.Status = crewjam.Status{StatusCode: crewjam.StatusCode{Value: crewjam.StatusRequester}}
	}}), false)
	f.Add([]byte(billionLaughs), false)
	f.Add([]byte(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="x" Version="2.0"><a><b/></a></samlp:Response>`), false)
	f.Add([]byte("PHNhbWxwOlJlc3BvbnNl"), true)
	f.Add([]byte("!!!"), true)
	f.Fuzz(func(t *testing.T, data []byte, raw bool) {
		in := string(data)
		if !raw {
			in = b64(data)
		}
		res, err := e.conn.HandleACS(context.Background(), saml.ACSRequest{
			SAMLResponse: in, RelayState: testRelay, ExpectedRelayState: testRelay, RequestIDs: []string{testReqID},
		})
		if err == nil {
			isGenuine := false
			for _, g := range genuine {
				isGenuine = isGenuine || bytes.Equal(data, g)
			}
			if raw || !isGenuine || res.Identity.Subject != "alice@example.com" {
				t.Fatalf("accepted a %d-byte document that is not a genuine response (subject %q)", len(data), res.Identity.Subject)
			}
			return
		}
		var ae *saml.ACSError
		var ue *providers.UpstreamError
		switch {
		case errors.As(err, &ae):
			if ae.Cause != nil && strings.Contains(ae.Cause.Error(), "panicked") {
				t.Fatalf("crewjam/saml panicked: %v", ae.Cause)
			}
		case errors.As(err, &ue):
		default:
			t.Fatalf("unexpected error %T: %v", err, err)
		}
	})
}
