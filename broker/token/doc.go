// Package token owns the formats of the tokens Latchkey issues: the OpenID
// Connect ID token, the JWT access token of RFC 9068, the userinfo claims,
// and the acr levels derived from the factors (amr) a session holds.
//
// Data flows one way. When a code or refresh token is redeemed, the broker
// hands an Issuer the Subject (the local user) and the Grant (client,
// scopes, nonce, session id, factors, the client's ID token algorithm and
// the OIDC claims request parameter). AccessToken builds and signs the
// access token first; IDToken then binds it with at_hash. Signing goes
// through the small Signer interface this package owns, which
// broker/keys.Manager satisfies; the package never sees a private key.
//
// Claims by scope (ID token and userinfo): profile gives name and
// preferred_username, email gives email and email_verified, groups gives
// groups. A claim listed in the id_token member of the claims parameter
// (OIDC Core §5.5) is added to the ID token without its scope; unknown
// claims there are ignored. Empty values are left out rather than sent as
// "" or [] (OIDC Core §5.3.2); email_verified is sent only with an email.
//
// Access tokens: header typ at+jwt, ES256 by default; aud is the grant's
// audience or else the issuer, a single audience as a string (RFC 7519
// allows either; the string form is the one every validator reads). The
// jti is 128 random bits. VerifyAccessToken is for Latchkey's own
// endpoints (userinfo): it accepts only typ at+jwt (so an ID token is
// refused), only the algorithms Latchkey signs with (never none or HMAC),
// only our issuer, and no leeway on exp: replicas verify what replicas
// signed, on NTP-synchronised clocks. It does not check aud; AccessClaims
// carries it for callers that must.
//
// at_hash is the left half of the hash of the access token's ASCII octets,
// with the hash of the ID token's alg: SHA-256 for RS256 and ES256, and
// SHA-512 for EdDSA, which Latchkey uses only with Ed25519 (the OpenID
// Connect working group's resolution of connect issue #1125, recorded in
// OpenID Connect Token Hash Algorithms 1.0; go-oidc and oidc-token-hash
// agree).
package token
