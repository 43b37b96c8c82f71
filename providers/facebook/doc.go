// Package facebook is the connector for Facebook Login (the manually
// built login flow: the login dialog, the code exchange, the Graph API),
// with a configurable Graph API version.
//
// Flow. Open validates the config and does no I/O. LoginURL builds
// https://www.facebook.com/{version}/dialog/oauth with the permissions
// (default public_profile email), the broker's state and the PKCE S256
// challenge (pkce: false turns it off). HandleCallback
//
//  1. compares state with the stored one (constant time) first;
//  2. turns error=... (access_denied, error_reason=user_denied, when the
//     user cancels) into a *providers.UpstreamError;
//  3. redeems the code at https://graph.facebook.com/{version}/oauth/access_token
//     (app id and secret in the form, with the PKCE verifier);
//  4. reads GET /{version}/me?fields=id,name,email with the access token
//     and its appsecret_proof (HMAC-SHA256 of the token under the app
//     secret, which apps that require it demand);
//  5. builds the Identity: Subject the app-scoped user id, Name, Email;
//     EmailVerified is true whenever Facebook returns an email, since it
//     returns only a confirmed address (and none when the user has no
//     usable one or declined the permission); no username, no groups;
//     AMR ["fed"]; then the CEL claimMapping and allow/deny rules over
//     the /me document;
//  6. seals the access token (about 60 days for a server-side login) with
//     its expiry into Identity.ConnectorData: Facebook has no refresh
//     tokens.
//
// Errors. Facebook answers {"error":{"message","type":"OAuthException",
// "code","error_subcode","fbtrace_id"}} (a *GraphError). At the token
// endpoint, code 100 (the code was used, expired, or does not match the
// redirect URI or verifier) is providers.ErrInvalidCallback; code 190
// (and 102) means the access token is invalid: right after login
// ErrInvalidCallback, at Refresh providers.ErrUpstreamUserGone (the user
// removed the app, changed the password, or the token was revoked); codes
// 2, 4, 17, 32, 341, 613 and 5xx are providers.ErrUpstreamUnavailable;
// others (1: a wrong app secret; 101: a wrong app id) are server errors.
//
// Refresh re-reads /me with the kept access token and maps again; after
// the token's expiry there is nothing to re-check with and the identity
// comes back unchanged.
//
// Every call goes through Deps.HTTPClient (the hardened client) wrapped
// by providers/upstream. Never logged: codes, tokens, the app secret.
package facebook
