package saml

import (
	"log/slog"

	"github.com/latchkeyid/latchkey/providers"
)

// Reason says, as a stable code for audit records and metrics, why a SAML
// response was refused.
type Reason string

// The reasons HandleACS refuses a response for.
const (
	ReasonTooLarge     Reason = "too_large"      // base64 input over MaxResponseBytes
	ReasonMalformed    Reason = "malformed"      // bad base64, not well-formed XML, not a usable Response
	ReasonXMLForbidden Reason = "xml_forbidden"  // DTD / entity declarations, nesting too deep
	ReasonUnsigned     Reason = "unsigned"       // a required signature is missing
	ReasonSignature    Reason = "signature"      // a signature is invalid or by an unknown key
	ReasonExpired      Reason = "expired"        // NotOnOrAfter / IssueInstant passed
	ReasonNotYetValid  Reason = "not_yet_valid"  // NotBefore / IssueInstant in the future
	ReasonAudience     Reason = "audience"       // AudienceRestriction is not our entity ID
	ReasonRecipient    Reason = "recipient"      // SubjectConfirmationData Recipient is not our ACS
	ReasonDestination  Reason = "destination"    // Response Destination is not our ACS
	ReasonIssuer       Reason = "issuer"         // Issuer is not the IdP's entity ID
	ReasonInResponseTo Reason = "in_response_to" // answers another (or no pending) request
	ReasonUnsolicited  Reason = "unsolicited"    // no InResponseTo and IdP-initiated login is off
	ReasonReplayed     Reason = "replayed"       // the assertion ID was already used
	ReasonRelayState   Reason = "relay_state"    // RelayState is not the stored one
	ReasonDecryption   Reason = "decryption"     // an encrypted assertion cannot be decrypted
	ReasonSubject      Reason = "subject"        // no usable subject (NameID or attribute)
	ReasonInvalid      Reason = "invalid"        // any other check
)

// ACSError is a refused SAML response. Message is safe to show the user;
// Cause (crewjam/saml's detail) is for the log only. It matches
// providers.ErrInvalidCallback with errors.Is, and Cause's sentinels
// (crewjam's ErrExpired, ErrInvalidSignature, ...) too.
type ACSError struct {
	Reason  Reason
	Message string
	Cause   error
}

func (e *ACSError) Error() string {
	return "saml: " + providers.ErrInvalidCallback.Error() + ": " + e.Message
}

// Unwrap returns ErrInvalidCallback and the cause.
func (e *ACSError) Unwrap() []error {
	if e.Cause == nil {
		return []error{providers.ErrInvalidCallback}
	}
	return []error{providers.ErrInvalidCallback, e.Cause}
}

// LogValue adds the reason and the cause; neither holds the response, the
// NameID or attribute values.
func (e *ACSError) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("reason", string(e.Reason)), slog.String("message", e.Message)}
	if e.Cause != nil {
		attrs = append(attrs, slog.String("cause", e.Cause.Error()))
	}
	return slog.GroupValue(attrs...)
}

func refuse(r Reason, msg string, cause error) *ACSError {
	return &ACSError{Reason: r, Message: msg, Cause: cause}
}

// The messages HandleACS refuses with, one per check.
const (
	msgTooLarge        = "the SAML response is larger than 512 KiB"
	msgBase64          = "the SAML response is not valid base64"
	msgEmpty           = "the SAML response is empty"
	msgXML             = "the SAML response is not well-formed XML"
	msgDTD             = "the SAML response contains a document type declaration (DTD), which SAML never uses"
	msgTooDeep         = "the SAML response nests elements too deeply"
	msgNotResponse     = "the document is not a SAML Response"
	msgMalformed       = "the SAML response is malformed"
	msgUnsigned        = "the SAML response carries no signature"
	msgResponseUnsig   = "the SAML Response must be signed (requireSignedResponse)"
	msgAssertionUnsig  = "the SAML assertion must be signed (requireSignedAssertion)"
	msgBadSignature    = "the SAML response's signature is invalid"
	msgUntrusted       = "the SAML response is signed by a certificate that is not in the IdP metadata"
	msgCertExpired     = "the IdP's signing certificate has expired or is not valid yet"
	msgExpired         = "the SAML assertion has expired"
	msgNotYetValid     = "the SAML assertion is not valid yet"
	msgAudience        = "the SAML assertion is meant for another service provider (audience)"
	msgRecipient       = "the SAML assertion is meant for another ACS URL (recipient)"
	msgDestination     = "the SAML response is addressed to another ACS URL (destination)"
	msgIssuer          = "the SAML response comes from another issuer than the IdP"
	msgInResponseTo    = "the SAML response answers another login request (InResponseTo)"
	msgNotPending      = "the SAML response answers a login request that is not pending here (expired, or started in another browser)"
	msgUnsolicited     = "unsolicited SAML response: IdP-initiated login is not allowed for this connector"
	msgSolicitedWanted = "an unsolicited SAML response arrived for a pending login request"
	msgReplayed        = "the SAML assertion was already used"
	msgRelayState      = "RelayState does not match the login request"
	msgDecryption      = "the SAML assertion cannot be decrypted"
	msgNoSubject       = "the SAML assertion has no subject (NameID)"
	msgTransient       = "the SAML assertion's NameID is transient, so it cannot identify the user: set attributes.subject"
	msgNoSubjectAttr   = "the SAML assertion lacks the subject attribute (attributes.subject)"
	msgUnsupported     = "the SAML response uses something this connector does not support"
	msgInvalid         = "the SAML response is invalid"
)
