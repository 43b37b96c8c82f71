// Package saml is the connector for enterprise SAML 2.0 identity providers
// (Entra ID, Okta, ADFS, Ping, Shibboleth, Keycloak): Latchkey is the
// service provider (SP), github.com/crewjam/saml does the protocol work,
// and an accepted assertion becomes a providers.Identity like any other
// connector's.
//
// # Wiring
//
// cmd registers Type{BaseURL: <issuer>, Replay: <ephemeral store adapter>}
// under TypeName. The SP's endpoints are fixed by the base URL and the
// connector id (Paths):
//
//	{base}/saml/{connector}/metadata   SP metadata (SPMetadata); its URL is the
//	                                   SP entity ID unless entityID is set
//	{base}/saml/{connector}/acs        Assertion Consumer Service (HTTP-POST)
//	{base}/saml/{connector}/slo        Single Logout (LogoutResponses)
//
// An open connector is a *Connector; the broker finds it by type
// assertion to Capability.
//
// # Login (SP-initiated)
//
//	broker                                   connector
//	store auth request, RelayState r  ──►  StartLogin{RelayState: r}
//	store Login.RequestID with it     ◄──  Login{RequestID, RedirectURL | PostForm}
//	browser → IdP → POST {base}/saml/{c}/acs (SAMLResponse, RelayState)
//	store the POST under a random key, 303 to a GET on our origin
//	(the cross-site POST carries no Lax cookies: DESIGN-NOTES.md)
//	GET: find the auth request by RelayState, check the browser binding,
//	HandleACS{SAMLResponse, RelayState,      ──►  checks (see HandleACS)
//	  ExpectedRelayState: r, RequestIDs}     ◄──  ACSResult{Identity, AssertionID, ...}
//
// # IdP-initiated login
//
// Off unless allowIdPInitiated; then an unsolicited response (no
// InResponseTo) is accepted only when no login is pending (RequestIDs
// empty), and ACSResult.IdPInitiated tells the broker to sign the user in
// to the connector's defaultClient. A response carrying an InResponseTo
// must always answer a pending request.
//
// # Checks on a response (HandleACS)
//
// Size (MaxResponseBytes of base64), base64, then a streaming XML scan
// that refuses DTDs (no entity expansion, no external entities) and
// nesting deeper than MaxXMLDepth before any tree is built. crewjam/saml
// then verifies signatures against the IdP metadata's certificates and
// reads the Response and Assertion only from what the signatures cover
// (its defence against XML signature wrapping); it checks Destination,
// Issuer, InResponseTo, Status, the AudienceRestriction (our entity ID),
// the bearer SubjectConfirmation (Recipient = our ACS, NotOnOrAfter) and
// decrypts encrypted assertions and NameIDs with the SP keys. On top, the
// connector requires the signatures it is configured to
// (requireSignedResponse / requireSignedAssertion, never neither: a
// recorder in the signature verification sees which elements carried a
// valid signature), applies clockSkew to NotBefore / NotOnOrAfter /
// IssueInstant, refuses transient NameIDs as subjects, and records the
// assertion ID in the ReplayCache until it expires. Every refusal is an
// *ACSError with a stable Reason, a message safe to show and the cause
// for the log; it matches providers.ErrInvalidCallback.
//
// # Identity
//
// Subject: the NameID (or attributes.subject). Email, name, username and
// groups come from attributes by Name or FriendlyName (attributes.*, or
// DefaultAttributes); email falls back to an emailAddress-format NameID.
// EmailVerified is the connector's emailVerified (default true). Then the
// CEL claimMapping and allow/deny rules of providers/mapping run over
// `claims`: every attribute as a list of strings under its Name and
// FriendlyName, plus nameID and nameIDFormat. allowedGroups refuses users
// in none of the listed groups. AMR is ["fed"]. ConnectorData keeps the
// NameID and SessionIndex for single logout.
//
// # IdP metadata
//
// idpMetadata (inline XML, or file:) is parsed when the config is
// validated. idpMetadataURL is fetched through the hardened client
// (Deps.HTTPClient, wrapped by providers/upstream) on first use, again
// after idpMetadataRefresh or its validUntil, and once more (at most every
// 5 minutes) when a response is signed by a certificate it does not list,
// which is how an IdP's key rollover is picked up; a failed re-fetch keeps
// the old metadata, a failed first fetch is ErrUpstreamUnavailable. With
// idpMetadataCertificates the metadata's own signature must verify with
// one of those pinned certificates.
//
// # Single logout
//
// LogoutRequest builds an SP-initiated LogoutRequest for the IdP's SLO
// endpoint, signed with spKey (the profile requires it, so without spKey
// there is none), naming the NameID and SessionIndex of the login; the
// broker keeps Logout.RequestID and checks the answer with
// HandleLogoutResponse at the SLO URL.
//
// Never logged: the response, NameIDs and attribute values.
package saml
