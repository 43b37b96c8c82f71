// Package broker is the OpenID Connect provider core, free of routing and
// templates: it validates authorization requests, runs the login state
// machine (choose connector, upstream sign-in, second factor, consent,
// done) over a stored auth request, and issues codes and tokens. Wire
// types and protocol rules live in broker/oauth2, token formats in
// broker/token, signing keys in broker/keys.
//
// The state machine: /authorize stores the request and calls the
// dispatcher, which looks at the request and the browser's sessions
// (BrowserSessions: the active SSO session and the other accounts) and
// answers the next step: the account chooser (StepSelectAccount), the
// password form (StepLogin), the consent page (StepConsent), or the code.
// Each step (SelectAccount, PasswordLogin, Consent) updates the stored
// request and returns to the dispatcher; under prompt=none every step that
// needs the user is an error instead (login_required, consent_required,
// interaction_required, account_selection_required).
//
// Second factors (broker/mfa.go) are steps too: the challenge (StepMFA,
// or StepWebAuthn for a security key or passkey) and enrollment
// (StepMFAEnroll for TOTP, StepWebAuthnEnroll). A passkey on the login
// page (PasskeyLogin, broker/webauthn.go) is a first factor like the
// password; WebAuthn ceremony state lives in the stored request
// (AuthRequest.WebAuthn) and is taken out before an answer is checked.
//
// The broker also decides and performs the end of SSO sessions (session/
// only keeps their state): RP-initiated logout (Logout, ConfirmLogout),
// revocation by an administrator (EndSession, EndSessions) and disabling
// a user all end a session the same way: session-bound refresh tokens are
// revoked, the upstream hook is called, back-channel logout tokens are
// delivered in the background (WaitLogoutDeliveries), the front-channel
// URLs are returned for the signed-out page, and session.ended is audited.
//
// Upstream sign-in: a CallbackConnector round trip keeps its state under
// the hash of the OAuth state (federation.go); a saml connector
// (providers/saml Capability) keeps the AuthnRequest ID under the hash of
// a random RelayState, and its ACS POST is stored and continued on our own
// origin (saml.go), which also runs SP-initiated single logout after
// RP-initiated logout and backs the connector's replay cache
// (SAMLReplayCache) with the ephemeral store.
//
// It also owns the provider metadata (discovery): the document lists
// exactly what is implemented.
package broker
