// Package oauth2 is the protocol leaf of Latchkey's OpenID Connect provider:
// the wire types and rules of RFC 6749, RFC 7636 (PKCE), RFC 8252 (native
// apps), RFC 9207 (iss), RFC 9700 (security BCP) and OpenID Connect Core
// 1.0 that need no client record, no store and no clock. It imports only
// the standard library, and nothing of ours.
//
// What it owns:
//
//   - *Error, the protocol error: an RFC code, a description safe to send,
//     an optional error_uri, the HTTP status for JSON endpoints and a
//     wrapped Cause that is logged and never sent. One constructor per code
//     (ErrInvalidRequest, ErrInvalidGrant, ...). JSON renders the token
//     endpoint body; Params renders the redirect parameters (with state and
//     iss). Both restrict error_description to the RFC 6749 character set.
//   - PKCE: only S256 is accepted (ValidateChallenge, ValidateVerifier,
//     VerifyS256, S256Challenge).
//   - redirect_uri: registration rules (ValidateRedirectURI) and the exact
//     match at /authorize and /token (MatchRedirectURI), with the RFC 8252
//     §7.3 loopback port exception for native clients only.
//   - scope: parsing (ParseScope), formatting (FormatScope) and the
//     CONTRACTS.md grant rule (FilterScopes).
//   - request parsing: ParseTokenForm for the token endpoint body,
//     SingleValues for any parameter set, ParseAuthorizeRequest for the
//     typed AuthorizeRequest.
//
// How data flows through it: web reads the raw request and calls
// SingleValues and ParseAuthorizeRequest (or ParseTokenForm); the broker
// gets a typed AuthorizeRequest and does the client-dependent checks this
// package cannot do, in this order: the client exists, redirect_uri matches
// a registered one (MatchRedirectURI; only then may any error be sent back
// to it, as Params), the PKCE requirement (require_pkce), the client's
// registered scope (FilterScopes), the presence of redirect_uri and of the
// openid scope, and allowed connectors. ParseAuthorizeRequest returns the
// request filled as far as it could together with its error, so that the
// broker can still redirect that error with the right state and
// response_mode once the client and redirect URI check out.
//
// Choices made here (see docs/decisions.md):
//
//   - Scopes, prompt, acr_values and ui_locales are split on runs of
//     spaces: repeated, leading and trailing spaces are tolerated, any other
//     whitespace is not. Duplicates are dropped, first occurrence kept.
//   - A parameter sent with an empty value is treated as omitted (RFC 6749
//     §3.1, §3.2); a parameter sent twice is invalid_request, even when one
//     of the values is empty.
//   - http redirect URIs are registered only for the loopback hosts
//     127.0.0.1, [::1] and localhost (web and native); custom schemes must
//     contain a dot and are native only. The loopback rule matches the host
//     as registered: a URI registered with localhost matches only localhost.
//   - Only response_type=code, response_mode query or form_post, and
//     code_challenge_method S256 exist here.
package oauth2
