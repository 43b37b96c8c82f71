package saml_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	crewjam "github.com/crewjam/saml"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/mapping"
	"github.com/latchkeyid/latchkey/providers/saml"
)

// TestCommentInNameID: a comment injected into a signed NameID (the 2018
// canonicalization attack: the signature still verifies, a naive reader
// takes the text before the comment) must not shorten the subject: the
// NameID is read from what the signature covers.
func TestCommentInNameID(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(*saml.Config)
		opts respOpts
	}{
		{name: "response and assertion signed", opts: respOpts{nameID: "alice@example.com.evil.example"}},
		{name: "only the assertion signed", cfg: func(c *saml.Config) { c.RequireSignedResponse = nil },
			opts: respOpts{nameID: "alice@example.com.evil.example", unsignedResp: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.cfg)
			x := string(e.idp.responseXML(t, tc.opts))
			injected := strings.Replace(x, ">alice@example.com.evil.example<", ">alice@example.com<!---->.evil.example<", 1)
			if injected == x {
				t.Fatal("NameID not found in the response")
			}
			res, err := e.acs(b64([]byte(injected)))
			if err != nil {
				t.Fatalf("HandleACS: %v", err)
			}
			if res.Identity.Subject != "alice@example.com.evil.example" {
				t.Fatalf("subject = %q, want the whole NameID", res.Identity.Subject)
			}
		})
	}
}

func TestReplayedAssertion(t *testing.T) {
	e := newEnv(t, nil)
	resp := b64(e.idp.responseXML(t, respOpts{}))
	res, err := e.acs(resp)
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(90 * time.Second); !res.NotOnOrAfter.Equal(want) {
		t.Fatalf("NotOnOrAfter = %v, want %v (IssueInstant + crewjam's MaxIssueDelay)", res.NotOnOrAfter, want)
	}
	_, err = e.acs(resp)
	if ae := acsErr(t, err); ae.Reason != saml.ReasonReplayed || err.Error() != "saml: invalid upstream callback: the SAML assertion was already used" {
		t.Fatalf("replay: %v", err)
	}
	// Another response carrying the same assertion ID is a replay too.
	_, err = e.acs(b64(e.idp.responseXML(t, respOpts{nameID: "bob@example.com"})))
	if ae := acsErr(t, err); ae.Reason != saml.ReasonReplayed {
		t.Fatalf("same assertion ID in another response: %v", err)
	}
}

func TestReplayCacheFailureFailsClosed(t *testing.T) {
	e := newEnv(t, nil)
	e.replay.err = errors.New("ephemeral store down")
	_, err := e.acs(b64(e.idp.responseXML(t, respOpts{})))
	if err == nil || err.Error() != "saml: replay cache: ephemeral store down" || errors.Is(err, providers.ErrInvalidCallback) {
		t.Fatalf("err = %v, want the server error of the replay cache", err)
	}
}

func TestSolicitation(t *testing.T) {
	const prefix = "saml: invalid upstream callback: "
	tests := []struct {
		name      string
		allow     bool
		req       saml.ACSRequest
		opts      respOpts
		reason    saml.Reason
		msg       string
		initiated bool
	}{
		{name: "unsolicited, IdP-initiated off", req: saml.ACSRequest{RelayState: "https://app.example.com/"},
			opts: respOpts{inResponseTo: "-"}, reason: saml.ReasonUnsolicited,
			msg: "unsolicited SAML response: IdP-initiated login is not allowed for this connector"},
		{name: "answers a request that is not pending, IdP-initiated off", req: saml.ACSRequest{},
			opts: respOpts{}, reason: saml.ReasonInResponseTo,
			msg: "the SAML response answers a login request that is not pending here (expired, or started in another browser)"},
		{name: "unsolicited, IdP-initiated on", allow: true, req: saml.ACSRequest{RelayState: "anything"},
			opts: respOpts{inResponseTo: "-"}, initiated: true},
		{name: "answers a request that is not pending, IdP-initiated on", allow: true, req: saml.ACSRequest{},
			opts: respOpts{}, reason: saml.ReasonInResponseTo,
			msg: "the SAML response answers a login request that is not pending here (expired, or started in another browser)"},
		{name: "unsolicited for a pending request, IdP-initiated on", allow: true,
			req:  saml.ACSRequest{RelayState: testRelay, ExpectedRelayState: testRelay, RequestIDs: []string{testReqID}},
			opts: respOpts{inResponseTo: "-"}, reason: saml.ReasonUnsolicited,
			msg: "an unsolicited SAML response arrived for a pending login request"},
		{name: "RelayState of another login",
			req:  saml.ACSRequest{RelayState: "relay-state-other", ExpectedRelayState: testRelay, RequestIDs: []string{testReqID}},
			opts: respOpts{}, reason: saml.ReasonRelayState, msg: "RelayState does not match the login request"},
		{name: "one of several pending requests",
			req:  saml.ACSRequest{RelayState: testRelay, ExpectedRelayState: testRelay, RequestIDs: []string{"id-older", testReqID}},
			opts: respOpts{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *saml.Config) {
				if tc.allow {
					c.AllowIdPInitiated, c.DefaultClient = true, "intranet"
				}
			})
			req := tc.req
			req.SAMLResponse = b64(e.idp.responseXML(t, tc.opts))
			res, err := e.conn.HandleACS(context.Background(), req)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("HandleACS: %v", err)
				}
				wantClient := ""
				if tc.initiated {
					wantClient = "intranet"
				}
				if res.IdPInitiated != tc.initiated || res.DefaultClient != wantClient {
					t.Fatalf("IdPInitiated = %v, DefaultClient = %q", res.IdPInitiated, res.DefaultClient)
				}
				return
			}
			ae := acsErr(t, err)
			if ae.Reason != tc.reason || err.Error() != prefix+tc.msg {
				t.Fatalf("err = %q (%s)\nwant %q (%s)", err, ae.Reason, prefix+tc.msg, tc.reason)
			}
		})
	}
}

func TestErrorStatus(t *testing.T) {
	e := newEnv(t, nil)
	x := string(e.idp.responseXML(t, respOpts{unsignedResp: true, editResponse: func(r *crewjam.Response) {
		r.Status = crewjam.Status{
			StatusCode:    crewjam.StatusCode{Value: crewjam.StatusResponder, StatusCode: &crewjam.StatusCode{Value: crewjam.StatusAuthnFailed}},
			StatusMessage: &crewjam.StatusMessage{Value: "The user cancelled"},
		}
	}}))
	_, err := e.acs(b64([]byte(x)))
	var ue *providers.UpstreamError
	if !errors.As(err, &ue) || ue.Code != "Responder" || ue.Description != "AuthnFailed: The user cancelled" {
		t.Fatalf("err = %#v, want an UpstreamError Responder / AuthnFailed: The user cancelled", err)
	}
}

// TestAttributeMapping covers the attribute names, the defaults, CEL
// mapping and rules, allowedGroups and emailVerified.
func TestAttributeMapping(t *testing.T) {
	str := func(vs ...string) []crewjam.AttributeValue {
		out := make([]crewjam.AttributeValue, len(vs))
		for i, v := range vs {
			out[i] = crewjam.AttributeValue{Value: v}
		}
		return out
	}
	entra := []crewjam.Attribute{
		{Name: "http://schemas.microsoft.com/identity/claims/objectidentifier", Values: str("4f2a-oid")},
		{Name: "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress", Values: str("Alice@Corp.example")},
		{Name: "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname", Values: str("Alice")},
		{Name: "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname", Values: str("Smith")},
		{Name: "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups", Values: str("g-1", "g-2")},
	}
	tests := []struct {
		name   string
		cfg    func(*saml.Config)
		opts   respOpts
		want   providers.Identity
		denied string
	}{
		{
			name: "Entra ID claim names, subject from objectidentifier",
			cfg: func(c *saml.Config) {
				c.Attributes.Subject = "http://schemas.microsoft.com/identity/claims/objectidentifier"
			},
			opts: respOpts{attributes: entra, nameID: "alice@corp.example", nameIDFormat: string(crewjam.PersistentNameIDFormat)},
			want: providers.Identity{Subject: "4f2a-oid", Email: "Alice@Corp.example", EmailVerified: true,
				Name: "Alice Smith", Groups: []string{"g-1", "g-2"}, AMR: []string{"fed"}},
		},
		{
			name: "configured names by FriendlyName and Name, emailVerified false",
			cfg: func(c *saml.Config) {
				c.Attributes = saml.AttributeNames{Email: "mail", Name: "uid", Username: "urn:oid:2.16.840.1.113730.3.1.241", Groups: "groups"}
				c.EmailVerified = ptr(false)
			},
			want: providers.Identity{Subject: "alice@example.com", Email: "alice@example.com", Name: "alice",
				Username: "Alice Smith", Groups: []string{"staff", "admins"}, AMR: []string{"fed"}},
		},
		{
			name: "email from an emailAddress NameID when no attribute has one",
			opts: respOpts{attributes: []crewjam.Attribute{}},
			want: providers.Identity{Subject: "alice@example.com", Email: "alice@example.com", EmailVerified: true, AMR: []string{"fed"}},
		},
		{
			name: "CEL claimMapping over Names, FriendlyNames and nameID",
			cfg: func(c *saml.Config) {
				c.Config = mapping.Config{ClaimMapping: mapping.ClaimMapping{
					Username: "claims.nameID.split('@')[0].upperAscii()",
					Groups:   "claims.groups.map(g, 'corp:' + g)",
					Name:     "claims['urn:oid:2.16.840.1.113730.3.1.241'][0] + ' (' + claims.uid[0] + ')'",
				}}
			},
			want: providers.Identity{Subject: "alice@example.com", Email: "alice@example.com", EmailVerified: true,
				Name: "Alice Smith (alice)", Username: "ALICE", Groups: []string{"corp:staff", "corp:admins"}, AMR: []string{"fed"}},
		},
		{
			name: "allowedGroups lets a member in",
			cfg:  func(c *saml.Config) { c.AllowedGroups = []string{"admins", "ops"} },
			want: alice,
		},
		{
			name:   "allowedGroups refuses a non-member",
			cfg:    func(c *saml.Config) { c.AllowedGroups = []string{"ops"}; c.NotAllowedReason = "Ask IT for access." },
			denied: "Ask IT for access.",
		},
		{
			name: "deny rule",
			cfg: func(c *saml.Config) {
				c.Deny = []mapping.Rule{{Expr: "'admins' in groups && !emailVerified", Reason: "no"}, {Expr: "'staff' in groups", Reason: "Staff use the other portal."}}
			},
			denied: "Staff use the other portal.",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.cfg)
			res, err := e.acs(b64(e.idp.responseXML(t, tc.opts)))
			if tc.denied != "" {
				var d *providers.DeniedError
				if !errors.As(err, &d) || d.Reason != tc.denied {
					t.Fatalf("err = %v, want denied %q", err, tc.denied)
				}
				return
			}
			if err != nil {
				t.Fatalf("HandleACS: %v", err)
			}
			if got := withoutData(res.Identity); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("identity:\n got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

// TestNothingSecretLogged runs a login and a refusal with debug logs and
// checks that neither the response, the keys nor attribute values other
// than the subject appear.
func TestNothingSecretLogged(t *testing.T) {
	e := newEnv(t, nil)
	resp := b64(e.idp.responseXML(t, respOpts{}))
	if _, err := e.acs(resp); err != nil {
		t.Fatal(err)
	}
	_, err := e.acs(resp)
	e.logs.Write([]byte(errString(err))) // what the broker would log
	logs := e.logs.String()
	k := testKeys(t)
	for _, secret := range []string{resp[:40], resp[len(resp)-40:], "Alice Smith", "session-index-1",
		strings.Split(k["sp"].keyPEM, "\n")[1], "id-assertion-0001"} {
		if strings.Contains(logs, secret) {
			t.Fatalf("logs contain %q:\n%s", secret, logs)
		}
	}
}
