// Package providertest holds what every upstream connector is tested
// with: a fake upstream that speaks the real protocols, and the contract
// suite every callback connector passes.
//
// Upstream is an httptest server on 127.0.0.1 that is an OpenID Connect
// provider and a plain OAuth2 server at once: discovery
// (/.well-known/openid-configuration), JWKS, an authorization endpoint
// that signs in the current user without a form and redirects back with a
// code (or an error), a token endpoint (authorization_code with PKCE S256
// and single-use codes; refresh_token with rotation), and userinfo. ID
// tokens are signed RS256 with a real key through go-jose. Behavior turns
// on the failures the contract needs: an ID token signed by an unknown key
// or with alg "none", a wrong nonce, an authorization error, endpoints that
// hang, fail or redirect elsewhere. Users can be added, changed and removed
// while the server runs; a removed user's refresh tokens get invalid_grant.
//
// RunCallbackContract drives a connector through LoginURL, the fake's
// authorization endpoint and HandleCallback, then Refresh, and checks the
// outcome of every case exactly: the happy path, state mismatch, a replayed
// callback, an upstream error response, a wrong nonce, an ID token by an
// unknown key or with alg "none", a hanging upstream (bounded by the
// client timeout), a redirect to a private address (refused by the hardened
// client before any packet is sent), an upstream that is down, and refresh:
// happy, rotated, after the user was removed upstream, while the upstream
// is down. Throughout, it checks that no code, token or client secret the
// fake issued appears in the connector's logs or errors.
//
// Dialects. Options to NewUpstream (options.go) make the fake speak one
// provider's API on top of the generic endpoints: WithRoute serves a
// provider's path, counted and broken (Behavior.Faults) as one of the
// generic endpoints, and its handler lets the generic endpoint decide
// (Serve, Record) and reshapes the answer (GitHub's token errors in a 200
// answer, Facebook's Graph errors, Apple's form_post page made with
// WriteFormPost); WithAuthorizePath names the provider's authorization
// endpoint; WithIDTokenIssuer, WithIDTokenClaims and
// WithoutRefreshRotation fit the ID tokens and refresh tokens to the
// provider. The fakes of providers/github/githubtest,
// providers/facebook/facebooktest and providers/apple/appletest are built
// this way. Contract.Upstream passes such options to every case's fake;
// Contract.Want, Refresh (RefreshRotates, RefreshReusesToken,
// RefreshByAccessToken), NameAtFirstLoginOnly and NoHints adapt the cases
// to what the provider knows and does; the browser step follows a
// redirect or reads a form_post page (ParseFormPost).
//
// NewDeps builds the providers.Deps a test connector gets: the hardened
// client allowing loopback with ClientTimeout, a real clock, a keyring as
// Sealer, and a logger writing to the given buffer.
package providertest
