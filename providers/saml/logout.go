package saml

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	crewjam "github.com/crewjam/saml"

	"github.com/latchkeyid/latchkey/providers"
)

// Logout is how to send the browser to the IdP's SingleLogoutService. The
// zero Logout means there is nothing to do: the IdP offers no single
// logout, or the identity carries no NameID.
type Logout struct {
	// RequestID is the LogoutRequest's ID: the broker keeps it to check
	// the LogoutResponse at /saml/{connector}/slo (HandleLogoutResponse).
	RequestID string
	// RedirectURL (the IdP's HTTP-Redirect SLO endpoint): send the
	// browser here.
	RedirectURL string
	// PostForm (when the IdP only offers HTTP-POST): an HTML fragment
	// that auto-posts the request.
	PostForm []byte
	// PostURL and PostFields are that form as data (SAMLRequest and
	// RelayState).
	PostURL    string
	PostFields url.Values
}

// Empty reports whether there is no logout to send.
func (l Logout) Empty() bool { return l.RedirectURL == "" && l.PostForm == nil }

// LogoutRequest builds an SP-initiated LogoutRequest for the login that
// produced id (its NameID and SessionIndex are in id.ConnectorData),
// signed with spKey (the SAML profile requires it, so without spKey there
// is no LogoutRequest: the zero Logout). The IdP's HTTP-Redirect SLO
// endpoint is preferred, HTTP-POST used when it is the only one; the
// configured binding decides when both exist. relayState (at most 80
// bytes) comes back with the LogoutResponse.
func (c *Connector) LogoutRequest(ctx context.Context, id providers.Identity, relayState string) (Logout, error) {
	return c.logoutRequest(ctx, id, relayState, "")
}

// LogoutRequestWithNonce is LogoutRequest with a CSP nonce for the
// HTTP-POST form's script.
func (c *Connector) LogoutRequestWithNonce(ctx context.Context, id providers.Identity, relayState, cspNonce string) (Logout, error) {
	return c.logoutRequest(ctx, id, relayState, cspNonce)
}

func (c *Connector) logoutRequest(ctx context.Context, id providers.Identity, relayState, nonce string) (Logout, error) {
	if len(id.ConnectorData) == 0 {
		return Logout{}, nil
	}
	var ld logoutData
	if err := json.Unmarshal(id.ConnectorData, &ld); err != nil {
		return Logout{}, fmt.Errorf("saml: read connector data: %w", err)
	}
	if ld.NameID == "" || c.base.Key == nil {
		// The single logout profile requires LogoutRequests to be signed
		// (saml-profiles §4.4.3.1); without spKey IdPs refuse them.
		return Logout{}, nil
	}
	md, err := c.metadata(ctx)
	if err != nil {
		return Logout{}, err
	}
	sp := c.sp(md)
	redirect := sp.GetSLOBindingLocation(crewjam.HTTPRedirectBinding)
	post := sp.GetSLOBindingLocation(crewjam.HTTPPostBinding)
	usePost := post != "" && (redirect == "" || c.set.post)
	dest := redirect
	if usePost {
		dest = post
	}
	if dest == "" {
		return Logout{}, nil
	}
	// Build it unsigned, name the NameID exactly as the assertion did,
	// then sign as the binding wants.
	unsigned := *sp
	unsigned.SignatureMethod, unsigned.LogoutSignatureMethod = "", ""
	var opts []crewjam.LogoutRequestOption
	if ld.SessionIndex != "" {
		opts = append(opts, crewjam.WithSessionIndex(ld.SessionIndex))
	}
	lr, err := unsigned.MakeLogoutRequest(dest, ld.NameID, opts...)
	if err != nil {
		return Logout{}, fmt.Errorf("saml: make LogoutRequest: %w", err)
	}
	lr.NameID = &crewjam.NameID{
		Value: ld.NameID, Format: ld.Format, NameQualifier: ld.NameQualifier, SPNameQualifier: ld.SPNameQualifier,
	}
	out := Logout{RequestID: lr.ID}
	if usePost {
		if sp.Key != nil {
			if err := sp.SignLogoutRequest(lr); err != nil {
				return Logout{}, fmt.Errorf("saml: sign LogoutRequest: %w", err)
			}
		}
		out.PostForm = lr.PostWithNonce(relayState, nonce)
		out.PostURL = dest
		if out.PostFields, err = postFields(lr.Element(), relayState); err != nil {
			return Logout{}, err
		}
		return out, nil
	}
	u, err := sp.RedirectLogoutRequestURL(lr, relayState)
	if err != nil {
		return Logout{}, fmt.Errorf("saml: encode LogoutRequest: %w", err)
	}
	out.RedirectURL = u.String()
	return out, nil
}

// HandleLogoutResponse checks the IdP's LogoutResponse arriving at
// /saml/{connector}/slo (HTTP-Redirect query or HTTP-POST form): its
// signature against the IdP metadata, Destination (our SLO URL), Issuer,
// IssueInstant, and that it answers one of requestIDs. A non-success
// status is a *providers.UpstreamError (the IdP could not end every
// session); a refused response is an *ACSError.
func (c *Connector) HandleLogoutResponse(ctx context.Context, r *http.Request, requestIDs []string) error {
	if r.ContentLength > MaxResponseBytes || len(r.URL.RawQuery) > MaxResponseBytes {
		return refuse(ReasonTooLarge, msgTooLarge, nil)
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(nil, r.Body, MaxResponseBytes)
	}
	md, err := c.metadata(ctx)
	if err != nil {
		return err
	}
	sp := c.sp(md)
	if _, err := sp.ParseLogoutResponse(r, requestIDs); err != nil {
		var bad crewjam.ErrBadStatus
		if errors.As(err, &bad) {
			return statusError(bad.Status, envelope{})
		}
		return classify(err, envelope{inResponseTo: "?"}, true)
	}
	return nil
}
