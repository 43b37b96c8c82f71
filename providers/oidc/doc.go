// Package oidc is the connector for any OpenID Connect provider, found by
// its issuer URL (github.com/coreos/go-oidc/v3 verifies ID tokens,
// golang.org/x/oauth2 speaks the token endpoint).
//
// Flow. Open validates the config (Type.Validate: every problem with its
// path) and does no I/O. Discovery is lazy: the first LoginURL reads
// Issuer/.well-known/openid-configuration, checks that its issuer is the
// configured one (or, for Microsoft Entra ID multi-tenant endpoints, the
// {tenantid} template together with allowedTenants), and keeps it for
// DiscoveryTTL (a failed re-read keeps the old document). LoginURL builds
// the authorization request with the broker's state, nonce and PKCE S256
// challenge. HandleCallback then
//
//  1. compares state with the stored one (constant time) before anything
//     else, so a forged callback spends no code;
//  2. checks the RFC 9207 iss parameter (required when discovery says the
//     upstream sends it);
//  3. turns error=... into a *providers.UpstreamError;
//  4. redeems the code with the PKCE verifier (client_secret_basic or
//     _post);
//  5. verifies the ID token: signature by a key of the upstream's JWKS
//     (go-oidc's remote key set: cached, re-read when a token names an
//     unknown kid; alg "none" and HMAC are never accepted), iss, aud (and
//     azp when there are several audiences), exp, then the nonce;
//  6. merges the userinfo claims over the ID token's (userinfo: true; the
//     subjects must match; iss/sub/aud/amr/acr/... are not overridden);
//  7. builds the Identity: sub, email, name, preferred_username, groups;
//     email_verified from the upstream claim, or true with trustEmail
//     (CONTRACTS.md); AMR ["fed"], plus the upstream amr values with
//     trustUpstreamAMR; Google's hd checked against hostedDomain; then
//     the CEL claimMapping and allow/deny rules (providers/mapping);
//  8. seals the upstream refresh token with Deps.Sealer into
//     Identity.ConnectorData, bound to the connector id and subject.
//
// Refresh spends that refresh token (x/oauth2 keeps the old one when the
// upstream does not rotate), verifies a returned ID token (same subject),
// re-reads userinfo when configured and maps again; invalid_grant, or a
// userinfo 401/403 to the fresh token, is providers.ErrUpstreamUserGone.
// Refresh must run at most once per Latchkey session at a time: the
// broker's single flight (DESIGN-NOTES "Upstream refresh").
//
// Resilience. Every upstream call goes through Deps.HTTPClient (the
// hardened client) wrapped by providers/upstream: one circuit breaker per
// connector, retries with backoff for discovery, JWKS and userinfo. Any
// failure to reach the upstream is a *providers.UnavailableError naming
// the connector (ErrUpstreamUnavailable).
//
// Never logged: codes, tokens, the client secret.
package oidc
