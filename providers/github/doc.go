// Package github is the connector for GitHub: github.com and GitHub
// Enterprise Server (baseURL; the REST API at baseURL/api/v3), with OAuth
// apps and GitHub Apps alike. GitHub speaks OAuth 2.0 without OpenID
// Connect: there is no ID token, and the user comes from the REST API.
//
// Flow. Open validates the config and does no I/O. LoginURL builds
// baseURL/login/oauth/authorize with the scopes (default read:user
// user:email read:org), the broker's state and the PKCE S256 challenge.
// HandleCallback
//
//  1. compares state with the stored one (constant time) first, so a
//     forged callback spends no code;
//  2. turns error=... (access_denied when the user cancels) into a
//     *providers.UpstreamError;
//  3. redeems the code at baseURL/login/oauth/access_token with the PKCE
//     verifier (client id and secret in the form). GitHub answers token
//     errors with HTTP 200 and error=...: bad_verification_code (a used,
//     expired or unknown code) is providers.ErrInvalidCallback like
//     invalid_grant, incorrect_client_credentials and
//     redirect_uri_mismatch are the config's fault (server errors);
//  4. reads GET /user, /user/emails, /user/orgs and /user/teams (lists
//     paginated by the Link header, 100 a page, at most MaxPages pages;
//     a next link must stay on the API). A 401 ({"message":"Bad
//     credentials"}) to the fresh token is ErrInvalidCallback; 403/429
//     for the rate limit and 5xx are ErrUpstreamUnavailable; a 403/404 of
//     emails, orgs or teams means the token lacks the scope, and that
//     list stays empty (a restricted login then fails closed);
//  5. builds the Identity (below);
//  6. applies the restriction: with orgs or teams set, the user must be a
//     member of a listed organization or team, else *providers.DeniedError
//     (notAllowedReason, or DefaultNotAllowedReason), and Groups keep only
//     the organizations named there (and their teams);
//  7. runs the CEL claimMapping and allow/deny rules (providers/mapping)
//     over claims: the /user document plus orgs, teams ("org:slug") and
//     emails ({email, primary, verified});
//  8. seals the refresh token (GitHub Apps with expiring user tokens) or
//     else the access token (OAuth apps: it does not expire) into
//     Identity.ConnectorData, bound to the connector and subject.
//
// Refresh spends the refresh token (GitHub rotates it; bad_refresh_token
// is providers.ErrUpstreamUserGone) or re-reads the user with the access
// token (401: the user revoked the authorization, ErrUpstreamUserGone),
// then applies the restriction and the rules again: a user who left the
// organization gets *providers.DeniedError.
//
// Every call goes through Deps.HTTPClient (the hardened client) wrapped
// by providers/upstream (circuit breaker; retries for the API's GETs).
// Never logged: codes, tokens, the client secret.
package github
