// Package oauth2 is the connector for an upstream that speaks plain OAuth
// 2.0 (no OpenID Connect): an authorization endpoint, a token endpoint and
// a JSON user endpoint, all configured by URL, with the user's claims
// found by dotted paths in the user document.
//
// Flow. LoginURL builds the authorization request (response_type=code,
// scopes, the broker's state, PKCE S256 unless pkce: false, extra
// parameters) without any I/O. HandleCallback compares state with the
// stored one first (a forged callback spends no code), turns error=... into
// a *providers.UpstreamError, redeems the code (with the PKCE verifier),
// reads userinfoURL with the access token, and builds the Identity:
//
//	Subject        claims.subject        (default "sub"; numbers keep their digits)
//	Email          claims.email          (default "email")
//	EmailVerified  claims.emailVerified  (default "email_verified"), or true with trustEmail
//	Name           claims.name           (default "name")
//	Username       claims.username       (default "preferred_username")
//	Groups         claims.groups         (default "groups"; a list, or one string)
//	AMR            ["fed"]
//
// A path is dotted: "data.user.id" follows objects, a numeric segment
// indexes a list ("emails.0.address"). Then the CEL claimMapping and
// allow/deny rules (providers/mapping) run over the user document as
// `claims`. An upstream refresh token is sealed with Deps.Sealer into
// Identity.ConnectorData.
//
// Refresh spends it, reads the user document with the new access token
// (same subject required) and maps again; invalid_grant, or a 401/403
// from the user endpoint, is providers.ErrUpstreamUserGone; no refresh
// token means nothing to re-check, and the identity comes back unchanged.
// The broker runs one Refresh per session at a time.
//
// Nonce, prompt and login_hint are OpenID Connect notions: the connector
// ignores them (add what an upstream understands with extraParams).
// Upstream calls go through the hardened client wrapped by
// providers/upstream (circuit breaker; retries for the user endpoint);
// failure to reach the upstream is a *providers.UnavailableError.
package oauth2
