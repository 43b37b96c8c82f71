package saml

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/beevik/etree"
	crewjam "github.com/crewjam/saml"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/mapping"
	"github.com/latchkeyid/latchkey/providers/upstream"
)

// MaxResponseBytes bounds the base64 SAMLResponse HandleACS accepts (the
// web layer should cap the whole POST body a little above it).
const MaxResponseBytes = 512 << 10

const (
	protocolNS             = "urn:oasis:names:tc:SAML:2.0:protocol"
	dsigNS                 = "http://www.w3.org/2000/09/xmldsig#"
	bearerMethod           = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
	signatureNotPresentMsg = "signature element not present" // crewjam/saml's unexported errSignatureElementNotPresent
)

// ACSRequest is a response posted to the ACS, with what the broker stored
// for the login it answers.
type ACSRequest struct {
	// SAMLResponse and RelayState are the posted form's fields, as
	// received.
	SAMLResponse string
	RelayState   string
	// ExpectedRelayState is the RelayState the broker passed to
	// StartLogin for the auth request it found; compared again here in
	// constant time (defence in depth).
	ExpectedRelayState string
	// RequestIDs are the AuthnRequest IDs StartLogin returned for that
	// auth request. Empty means no login is pending: only an unsolicited
	// (IdP-initiated) response can then be accepted, and only with
	// allowIdPInitiated. Non-empty means the response must answer one of
	// them: an unsolicited response is then refused too.
	RequestIDs []string
}

// ACSResult is an accepted assertion.
type ACSResult struct {
	Identity providers.Identity
	// AssertionID is the accepted assertion's ID; it is in the replay
	// cache until NotOnOrAfter.
	AssertionID  string
	NotOnOrAfter time.Time
	// InResponseTo is the RequestIDs entry the response answers; empty
	// for an IdP-initiated login.
	InResponseTo string
	// IdPInitiated is true for an accepted unsolicited response: the
	// broker signs the user in to DefaultClient.
	IdPInitiated  bool
	DefaultClient string
	// SessionIndex and SessionNotOnOrAfter are the IdP session's, from
	// the AuthnStatement (SessionNotOnOrAfter zero when absent).
	SessionIndex        string
	SessionNotOnOrAfter time.Time
}

// logoutData is what Identity.ConnectorData holds: what a LogoutRequest
// for this login must name.
type logoutData struct {
	NameID          string `json:"nameID"`
	Format          string `json:"format,omitempty"`
	NameQualifier   string `json:"nameQualifier,omitempty"`
	SPNameQualifier string `json:"spNameQualifier,omitempty"`
	SessionIndex    string `json:"sessionIndex,omitempty"`
}

// HandleACS checks a SAML response posted to the ACS and turns its
// assertion into an Identity. In order:
//
//  1. the base64 input is at most MaxResponseBytes and decodes;
//  2. the XML is well-formed, has no DTD (so no entity expansion) and
//     nests at most MaxXMLDepth deep, checked by a streaming tokenizer
//     before any tree is built;
//  3. RelayState equals the stored one; a response with no pending
//     request is refused unless allowIdPInitiated;
//  4. crewjam/saml verifies it: signatures (Response and/or Assertion)
//     against the IdP metadata's certificates, reading only what the
//     signatures cover (XML signature wrapping defences), decryption,
//     Destination, Issuer, InResponseTo, Status, audience, bearer
//     SubjectConfirmation Recipient and NotOnOrAfter, IssueInstant;
//  5. requireSignedResponse / requireSignedAssertion: the signatures this
//     connector requires were among the ones verified;
//  6. NotBefore / NotOnOrAfter / IssueInstant within clockSkew;
//  7. the subject (NameID, or attributes.subject) is usable;
//  8. the assertion ID was not used before (ReplayCache.Seen);
//  9. the attributes are mapped (attributes.*, claimMapping, allow/deny,
//     allowedGroups).
//
// Errors: *ACSError (matching providers.ErrInvalidCallback) for a refused
// response; *providers.UpstreamError when the IdP answered with an error
// status; *providers.DeniedError when the rules refuse the user;
// providers.ErrUpstreamUnavailable when the IdP metadata cannot be
// fetched; anything else (the replay cache failing) is a server error.
func (c *Connector) HandleACS(ctx context.Context, req ACSRequest) (ACSResult, error) {
	if len(req.SAMLResponse) > MaxResponseBytes {
		return ACSResult{}, refuse(ReasonTooLarge, msgTooLarge, nil)
	}
	raw, err := base64.StdEncoding.DecodeString(req.SAMLResponse)
	if err != nil {
		return ACSResult{}, refuse(ReasonMalformed, msgBase64, err)
	}
	if len(raw) == 0 {
		return ACSResult{}, refuse(ReasonMalformed, msgEmpty, nil)
	}
	if err := checkXML(raw); err != nil {
		switch {
		case errors.Is(err, errDTD):
			return ACSResult{}, refuse(ReasonXMLForbidden, msgDTD, err)
		case errors.Is(err, errTooDeep):
			return ACSResult{}, refuse(ReasonXMLForbidden, msgTooDeep, err)
		}
		return ACSResult{}, refuse(ReasonMalformed, msgXML, err)
	}
	env, err := readEnvelope(raw)
	if err != nil {
		return ACSResult{}, err
	}

	solicited := len(req.RequestIDs) > 0
	if solicited && req.ExpectedRelayState != "" &&
		subtle.ConstantTimeCompare([]byte(req.RelayState), []byte(req.ExpectedRelayState)) != 1 {
		return ACSResult{}, refuse(ReasonRelayState, msgRelayState, nil)
	}
	if !solicited && !c.set.cfg.AllowIdPInitiated {
		if env.inResponseTo == "" {
			return ACSResult{}, refuse(ReasonUnsolicited, msgUnsolicited, nil)
		}
		return ACSResult{}, refuse(ReasonInResponseTo, msgNotPending, nil)
	}

	md, err := c.metadata(ctx)
	if err != nil {
		return ACSResult{}, err
	}
	a, rec, err := c.verify(md, raw, req.RequestIDs)
	if err != nil && errors.Is(err, errUntrustedCertificate) && c.refetchUntrusted(ctx, md) {
		// The IdP may have rolled its signing key over: try once more
		// with fresh metadata.
		md = c.cachedMetadata()
		a, rec, err = c.verify(md, raw, req.RequestIDs)
	}
	if err != nil {
		var bad crewjam.ErrBadStatus
		if errors.As(err, &bad) {
			return ACSResult{}, statusError(bad.Status, env)
		}
		return ACSResult{}, classify(err, env, solicited)
	}

	if c.set.signedResponse && !rec.signed("Response", "") {
		return ACSResult{}, refuse(ReasonUnsigned, msgResponseUnsig, nil)
	}
	if c.set.signedAssertion && !rec.signed("Assertion", a.ID) {
		return ACSResult{}, refuse(ReasonUnsigned, msgAssertionUnsig, nil)
	}
	now := c.clock.Now()
	if e := c.checkTimes(a, now); e != nil {
		return ACSResult{}, e
	}
	if solicited && env.inResponseTo == "" {
		// crewjam matched InResponseTo against RequestIDs, so this
		// cannot happen; kept so that a change there fails closed.
		return ACSResult{}, refuse(ReasonUnsolicited, msgSolicitedWanted, nil)
	}

	claims := attributeClaims(a)
	subject, e := c.subject(a, claims)
	if e != nil {
		return ACSResult{}, e
	}

	until := acceptableUntil(a)
	seen, err := c.replay.Seen(ctx, c.info.ID+":"+a.ID, until)
	if err != nil {
		return ACSResult{}, fmt.Errorf("saml: replay cache: %w", err)
	}
	if seen {
		return ACSResult{}, refuse(ReasonReplayed, msgReplayed, nil)
	}

	id, err := c.identity(ctx, a, claims, subject)
	if err != nil {
		return ACSResult{}, err
	}
	res := ACSResult{
		Identity:     id,
		AssertionID:  a.ID,
		NotOnOrAfter: until,
		InResponseTo: env.inResponseTo,
		IdPInitiated: !solicited,
	}
	if res.IdPInitiated {
		res.DefaultClient = c.set.cfg.DefaultClient
	}
	if len(a.AuthnStatements) > 0 {
		res.SessionIndex = a.AuthnStatements[0].SessionIndex
		if t := a.AuthnStatements[0].SessionNotOnOrAfter; t != nil {
			res.SessionNotOnOrAfter = *t
		}
	}
	ld := logoutData{SessionIndex: res.SessionIndex}
	if n := a.Subject.NameID; n != nil {
		ld.NameID, ld.Format, ld.NameQualifier, ld.SPNameQualifier = n.Value, n.Format, n.NameQualifier, n.SPNameQualifier
	}
	if res.Identity.ConnectorData, err = json.Marshal(ld); err != nil {
		return ACSResult{}, fmt.Errorf("saml: encode connector data: %w", err)
	}
	c.log.DebugContext(ctx, "saml login", slog.String("connector", c.info.ID), slog.String("subject", id.Subject),
		slog.Bool("idp_initiated", res.IdPInitiated), slog.Bool("signed_response", rec.signed("Response", "")),
		slog.Bool("signed_assertion", rec.signed("Assertion", a.ID)), slog.Bool("encrypted_assertion", env.encrypted))
	return res, nil
}

// envelope is what is read from the unverified response before crewjam
// checks it: only to choose an error message, never to decide.
type envelope struct {
	inResponseTo  string
	encrypted     bool // the assertion came as an EncryptedAssertion
	statusDetail  string
	statusMessage string
}

func readEnvelope(raw []byte) (envelope, error) {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		return envelope{}, refuse(ReasonMalformed, msgXML, err)
	}
	root := doc.Root()
	if root == nil || root.Tag != "Response" || root.NamespaceURI() != protocolNS {
		return envelope{}, refuse(ReasonMalformed, msgNotResponse, nil)
	}
	env := envelope{inResponseTo: root.SelectAttrValue("InResponseTo", ""), encrypted: root.SelectElement("EncryptedAssertion") != nil}
	if st := root.SelectElement("Status"); st != nil {
		if top := st.SelectElement("StatusCode"); top != nil {
			if second := top.SelectElement("StatusCode"); second != nil {
				env.statusDetail = lastSegment(second.SelectAttrValue("Value", ""))
			}
		}
		if m := st.SelectElement("StatusMessage"); m != nil {
			env.statusMessage = strings.TrimSpace(m.Text())
		}
	}
	return env, nil
}

func lastSegment(urn string) string {
	if i := strings.LastIndexByte(urn, ':'); i >= 0 {
		return urn[i+1:]
	}
	return urn
}

// statusError turns an IdP error status into an UpstreamError: the
// top-level code (Requester, Responder) and, in the description, the
// second-level code (AuthnFailed, RequestDenied, NoPassive) and message,
// clipped. They come from the IdP: shown escaped, never trusted.
func statusError(status string, env envelope) error {
	desc := env.statusDetail
	if env.statusMessage != "" {
		if desc != "" {
			desc += ": "
		}
		desc += env.statusMessage
	}
	return &providers.UpstreamError{Code: upstream.Clip(lastSegment(status), 64), Description: upstream.Clip(desc, 300)}
}

// verify runs crewjam/saml's checks on one copy of the service provider
// with a fresh signature recorder.
func (c *Connector) verify(md *idpMetadata, raw []byte, requestIDs []string) (a *crewjam.Assertion, rec *signatureRecorder, err error) {
	sp := c.sp(md)
	rec = &signatureRecorder{}
	sp.SignatureVerifier = rec
	// Unsolicited responses only where no request is pending: a response
	// to a login this browser started must answer it.
	sp.AllowIDPInitiated = c.set.cfg.AllowIdPInitiated && len(requestIDs) == 0
	defer func() {
		// A parser of untrusted input must not take the process down.
		if p := recover(); p != nil {
			a, err = nil, fmt.Errorf("crewjam/saml panicked on the response: %v", p)
		}
	}()
	a, err = sp.ParseXMLResponse(raw, requestIDs, sp.AcsURL)
	return a, rec, err
}

// classify maps crewjam/saml's error kinds to a Reason and a message.
func classify(err error, env envelope, solicited bool) *ACSError {
	var ire *crewjam.InvalidResponseError
	cause := err
	if errors.As(err, &ire) && ire.PrivateErr != nil {
		cause = ire.PrivateErr
	}
	switch {
	case errors.Is(err, errUntrustedCertificate), errors.Is(err, crewjam.ErrUntrustedCertificate):
		return refuse(ReasonSignature, msgUntrusted, cause)
	case errors.Is(err, crewjam.ErrCertificateNotValidNow):
		return refuse(ReasonSignature, msgCertExpired, cause)
	case errors.Is(err, crewjam.ErrInvalidSignature):
		return refuse(ReasonSignature, msgBadSignature, cause)
	case cause.Error() == signatureNotPresentMsg:
		return refuse(ReasonUnsigned, msgUnsigned, cause)
	case errors.Is(err, crewjam.ErrExpired):
		return refuse(ReasonExpired, msgExpired, cause)
	case errors.Is(err, crewjam.ErrNotYetValid):
		return refuse(ReasonNotYetValid, msgNotYetValid, cause)
	case errors.Is(err, crewjam.ErrAudienceMismatch):
		return refuse(ReasonAudience, msgAudience, cause)
	case errors.Is(err, crewjam.ErrDestinationMismatch):
		if strings.Contains(cause.Error(), "Recipient") {
			return refuse(ReasonRecipient, msgRecipient, cause)
		}
		return refuse(ReasonDestination, msgDestination, cause)
	case errors.Is(err, crewjam.ErrIssuerMismatch):
		return refuse(ReasonIssuer, msgIssuer, cause)
	case errors.Is(err, crewjam.ErrRequestIDMismatch):
		switch {
		case env.inResponseTo == "" && solicited:
			return refuse(ReasonUnsolicited, msgSolicitedWanted, cause)
		case env.inResponseTo == "":
			return refuse(ReasonUnsolicited, msgUnsolicited, cause)
		case solicited:
			return refuse(ReasonInResponseTo, msgInResponseTo, cause)
		default:
			return refuse(ReasonInResponseTo, msgNotPending, cause)
		}
	case errors.Is(err, crewjam.ErrDecryptionFailed):
		return refuse(ReasonDecryption, msgDecryption, cause)
	case errors.Is(err, crewjam.ErrMalformedMessage), errors.Is(err, crewjam.ErrMissingElement):
		return refuse(ReasonMalformed, msgMalformed, cause)
	case errors.Is(err, crewjam.ErrUnsupported):
		return refuse(ReasonInvalid, msgUnsupported, cause)
	}
	return refuse(ReasonInvalid, msgInvalid, cause)
}

// checkTimes applies clockSkew (crewjam/saml allows its fixed 3 minutes):
// IssueInstant not in the future, Conditions NotBefore / NotOnOrAfter,
// and one bearer SubjectConfirmation for our ACS within its window.
func (c *Connector) checkTimes(a *crewjam.Assertion, now time.Time) *ACSError {
	skew := c.set.clockSkew
	late := now.Add(skew) // the latest a "not before" may be
	if a.IssueInstant.After(late) {
		return refuse(ReasonNotYetValid, msgNotYetValid, fmt.Errorf("IssueInstant %s is more than %s ahead", a.IssueInstant.UTC().Format(time.RFC3339), skew))
	}
	if cond := a.Conditions; cond != nil {
		if !cond.NotBefore.IsZero() && cond.NotBefore.After(late) {
			return refuse(ReasonNotYetValid, msgNotYetValid, fmt.Errorf("Conditions NotBefore %s is more than %s ahead", cond.NotBefore.UTC().Format(time.RFC3339), skew))
		}
		if !cond.NotOnOrAfter.IsZero() && !now.Before(cond.NotOnOrAfter.Add(skew)) {
			return refuse(ReasonExpired, msgExpired, fmt.Errorf("Conditions NotOnOrAfter %s passed (clock skew %s)", cond.NotOnOrAfter.UTC().Format(time.RFC3339), skew))
		}
	}
	var first *ACSError
	for _, sc := range a.Subject.SubjectConfirmations {
		d := sc.SubjectConfirmationData
		if sc.Method != bearerMethod || d == nil || d.Recipient != c.urls.ACS {
			continue
		}
		switch {
		case !d.NotBefore.IsZero() && d.NotBefore.After(late):
			if first == nil {
				first = refuse(ReasonNotYetValid, msgNotYetValid, errors.New("SubjectConfirmationData NotBefore is ahead"))
			}
		case !now.Before(d.NotOnOrAfter.Add(skew)):
			if first == nil {
				first = refuse(ReasonExpired, msgExpired, fmt.Errorf("SubjectConfirmationData NotOnOrAfter %s passed (clock skew %s)", d.NotOnOrAfter.UTC().Format(time.RFC3339), skew))
			}
		default:
			return nil
		}
	}
	if first == nil {
		first = refuse(ReasonRecipient, msgRecipient, errors.New("no bearer SubjectConfirmation for our ACS"))
	}
	return first
}

// acceptableUntil is when crewjam/saml stops accepting the assertion (its
// own formula, with its fixed skew): the replay record must live that
// long.
func acceptableUntil(a *crewjam.Assertion) time.Time {
	deadline := a.IssueInstant.Add(crewjam.MaxIssueDelay)
	if a.Conditions != nil && !a.Conditions.NotOnOrAfter.IsZero() {
		if d := a.Conditions.NotOnOrAfter.Add(crewjam.MaxClockSkew); d.Before(deadline) {
			deadline = d
		}
	}
	var confirmation time.Time
	for _, sc := range a.Subject.SubjectConfirmations {
		if sc.Method != bearerMethod || sc.SubjectConfirmationData == nil {
			continue
		}
		if d := sc.SubjectConfirmationData.NotOnOrAfter.Add(crewjam.MaxClockSkew); d.After(confirmation) {
			confirmation = d
		}
	}
	if !confirmation.IsZero() && confirmation.Before(deadline) {
		deadline = confirmation
	}
	return deadline
}

// attributeClaims turns the assertion's attributes into the claims CEL
// expressions see: each attribute's values (a list of strings, also for a
// single value) under its Name and, unless another attribute has that
// Name, under its FriendlyName; plus nameID and nameIDFormat unless an
// attribute has those names.
func attributeClaims(a *crewjam.Assertion) map[string]any {
	claims := map[string]any{}
	values := func(at crewjam.Attribute) []any {
		out := make([]any, 0, len(at.Values))
		for _, v := range at.Values {
			switch {
			case v.Nil:
			case v.NameID != nil:
				out = append(out, v.NameID.Value)
			default:
				out = append(out, v.Value)
			}
		}
		return out
	}
	add := func(key string, vals []any) {
		if old, ok := claims[key].([]any); ok {
			claims[key] = append(old, vals...)
			return
		}
		claims[key] = vals
	}
	byName := map[string]bool{}
	for _, st := range a.AttributeStatements {
		for _, at := range st.Attributes {
			if at.Name != "" {
				add(at.Name, values(at))
				byName[at.Name] = true
			}
		}
	}
	for _, st := range a.AttributeStatements {
		for _, at := range st.Attributes {
			if f := at.FriendlyName; f != "" && f != at.Name && !byName[f] {
				add(f, values(at))
			}
		}
	}
	if n := a.Subject.NameID; n != nil {
		if _, ok := claims["nameID"]; !ok {
			claims["nameID"] = n.Value
		}
		if _, ok := claims["nameIDFormat"]; !ok {
			claims["nameIDFormat"] = n.Format
		}
	}
	return claims
}

// attr returns the values of the first of names present in claims.
func attr(claims map[string]any, names ...string) []string {
	for _, n := range names {
		if v, ok := claims[n].([]any); ok {
			return upstream.AsStrings(v)
		}
	}
	return nil
}

func first(vals []string) string {
	for _, v := range vals {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}

func (c *Connector) names(configured, field string) []string {
	if configured != "" {
		return []string{configured}
	}
	return defaultAttributes[field]
}

// subject returns the user's stable id: attributes.subject's first value,
// else the NameID (not a transient one).
func (c *Connector) subject(a *crewjam.Assertion, claims map[string]any) (string, *ACSError) {
	if name := c.set.cfg.Attributes.Subject; name != "" {
		s := first(attr(claims, name))
		if s == "" {
			return "", refuse(ReasonSubject, msgNoSubjectAttr, fmt.Errorf("attribute %q is missing or empty", name))
		}
		return s, nil
	}
	n := a.Subject.NameID
	if n == nil || strings.TrimSpace(n.Value) == "" {
		return "", refuse(ReasonSubject, msgNoSubject, nil)
	}
	if n.Format == string(crewjam.TransientNameIDFormat) {
		return "", refuse(ReasonSubject, msgTransient, nil)
	}
	return n.Value, nil
}

// identity builds the Identity from the attributes, then applies
// claimMapping, the allow/deny rules and allowedGroups.
func (c *Connector) identity(ctx context.Context, a *crewjam.Assertion, claims map[string]any, subject string) (providers.Identity, error) {
	names := c.set.cfg.Attributes
	id := providers.Identity{
		Subject:  subject,
		Email:    first(attr(claims, c.names(names.Email, "email")...)),
		Name:     first(attr(claims, c.names(names.Name, "name")...)),
		Username: first(attr(claims, c.names(names.Username, "username")...)),
		Groups:   attr(claims, c.names(names.Groups, "groups")...),
		AMR:      []string{"fed"},
	}
	if id.Email == "" && names.Email == "" && a.Subject.NameID != nil &&
		a.Subject.NameID.Format == string(crewjam.EmailAddressNameIDFormat) {
		id.Email = strings.TrimSpace(a.Subject.NameID.Value)
	}
	if id.Name == "" && names.Name == "" {
		id.Name = strings.TrimSpace(first(attr(claims, defaultAttributes["givenName"]...)) + " " +
			first(attr(claims, defaultAttributes["surname"]...)))
	}
	id.EmailVerified = id.Email != "" && c.set.emailVerified
	if err := c.set.mapper.Apply(ctx, claims, &id); err != nil {
		var d *providers.DeniedError
		if errors.As(err, &d) {
			return providers.Identity{}, err
		}
		return providers.Identity{}, fmt.Errorf("saml: %w", err)
	}
	if id.Email == "" {
		id.EmailVerified = false
	}
	if allowed := c.set.cfg.AllowedGroups; len(allowed) > 0 {
		if !slices.ContainsFunc(id.Groups, func(g string) bool { return slices.Contains(allowed, g) }) {
			reason := c.set.cfg.NotAllowedReason
			if reason == "" {
				reason = mapping.DefaultNotAllowedReason
			}
			return providers.Identity{}, &providers.DeniedError{Reason: reason}
		}
	}
	return id, nil
}
