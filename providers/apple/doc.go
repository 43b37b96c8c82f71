// Package apple is the connector for Sign in with Apple on the web (the
// REST flow with a Services ID), at Apple's fixed endpoints: no
// discovery.
//
// Flow. Open validates the config (the .p8 key must parse as a PKCS#8
// P-256 key) and does no I/O. LoginURL builds
// https://appleid.apple.com/auth/authorize with response_type=code,
// response_mode=form_post, scope=name%20email, the broker's state, nonce
// and PKCE S256 challenge.
//
// The callback is a cross-site POST. Apple has the browser post a form
// (state, code, and user at the first login) to the callback URL from
// appleid.apple.com. The connector only reads that form from
// CallbackRequest.Query; the broker's POST handler must store what it
// received under the state and answer 303 to a GET on Latchkey's own
// origin, where SameSite=Lax cookies come along and the binding of the
// auth request to the browser can be checked (DESIGN-NOTES "The login
// state machine").
//
// HandleCallback
//
//  1. compares state with the stored one (constant time) first;
//  2. turns error=... into a *providers.UpstreamError; Apple's
//     user_cancelled_authorize becomes access_denied (Description
//     user_cancelled_authorize);
//  3. redeems the code at /auth/token with client_secret_post: the client
//     secret is an ES256 JWT signed with the .p8 key (header kid = keyID;
//     iss = teamID, sub = clientID, aud = https://appleid.apple.com, iat,
//     exp = iat + clientSecretTTL), cached and renewed when less than a
//     quarter of its lifetime is left (Deps.Clock decides); invalid_grant
//     (a used or expired code) is providers.ErrInvalidCallback,
//     invalid_client a config error;
//  4. verifies the ID token: RS256 by a key of /auth/keys (cached, re-read
//     for an unknown kid), iss https://appleid.apple.com (whatever
//     baseURL is), aud the Services ID, exp, then the nonce;
//  5. builds the Identity: Subject sub (stable, per developer team); Email
//     from the ID token; EmailVerified from its email_verified claim
//     (the string "true" or true); Name from the user form field, which
//     Apple sends only at the user's first login (only the name is taken
//     from that unsigned field); no username or groups; AMR ["fed"]; then
//     the CEL claimMapping and allow/deny rules over the ID token's
//     claims (email_verified and is_private_email as booleans; user, the
//     parsed form field, at the first login);
//  6. seals the refresh token into Identity.ConnectorData.
//
// The name arrives once. A later login returns an Identity with an empty
// Name; the connector implements providers.IdentityMerger, and the broker
// must keep the name it stored at the first login (MergeIdentity). If the
// first login fails after Apple's answer, the name is lost until the user
// removes the app at appleid.apple.com and signs in again.
//
// Private relay. A user may hide their address: Email is then a unique
// relay address @privaterelay.appleid.com (IsPrivateRelay), verified and
// forwarding to the real one, and the ID token says is_private_email. It
// is kept as the user's verified email; it will not match an account
// created with the real address, so linking by email does not find one.
// Rules can refuse relays: deny: [{expr: "claims.?is_private_email.orValue(false)", reason: ...}].
//
// Refresh validates the refresh token with a fresh client secret (Apple
// does not rotate refresh tokens), verifies the returned ID token (same
// subject) and maps again, keeping the name; invalid_grant (the user
// revoked the app) is providers.ErrUpstreamUserGone. Apple may throttle
// validating a refresh token more often than once a day.
//
// Every call goes through Deps.HTTPClient (the hardened client) wrapped
// by providers/upstream. Never logged: codes, tokens, the client secret,
// the private key.
package apple
