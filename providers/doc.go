// Package providers owns the upstream identity connector model: the
// capabilities a connector may implement (callback, password, refresh,
// logout) as small interfaces, and the Identity a connector returns. Each
// connector type lives in a subpackage (oidc, oauth2, github, apple, saml,
// local, ...). Connectors import only internal/* and third-party libraries;
// a connector that needs data declares a small interface and cmd hands it
// the storage value that satisfies it.
//
// A connector implements only the capabilities it has; the broker finds
// them by type assertion:
//
//	PasswordConnector  the broker shows its own username/password form and
//	                   calls Login (the local password database, LDAP).
//	CallbackConnector  the browser is sent to LoginURL at the upstream and
//	                   comes back to the callback URL, where HandleCallback
//	                   turns the upstream's answer into an Identity (OIDC,
//	                   OAuth2, GitHub, Apple, SAML).
//	RefreshConnector   Refresh re-checks an Identity at the upstream when the
//	                   app refreshes its tokens, using Identity.ConnectorData.
//	LogoutConnector    LogoutURL is where the browser goes to end the
//	                   upstream session (RP-initiated logout).
//
// Connector types. A Type validates a connector's config (Validate: every
// problem with its path relative to the config object, as FieldProblem)
// and opens connectors (Open, no network I/O: upstreams are contacted
// lazily). cmd builds a Registry (a plain map from type name to Type, no
// init() registration) and opens each connector record with Deps: the
// hardened HTTP client, the clock, a logger and a Sealer for what a
// connector must read back later. An open Connector has an ID and a Name;
// everything else is a capability found by type assertion.
//
// The login round trip. The broker generates state, nonce and the PKCE
// verifier, stores them with the auth request, and calls LoginURL with a
// LoginRequest (the S256 challenge, never the verifier). At the callback
// it finds the auth request by state and calls HandleCallback with a
// CallbackRequest carrying the query (or form_post form) and the stored
// values; the connector checks state again, redeems the code with the
// verifier, checks the nonce and returns an Identity whose ConnectorData
// holds the upstream refresh token sealed with Deps.Sealer.
//
// Upstream errors the broker tells apart (errors.Is / errors.As):
//
//	ErrUpstreamUnavailable  *UnavailableError naming the connector: the
//	                        upstream is down, hangs (bounded by the client
//	                        timeout), fails, or its circuit breaker is
//	                        open; show a page naming the provider
//	*UpstreamError          the upstream answered error=... (access_denied
//	                        when the user cancelled)
//	ErrInvalidCallback      a check failed (state, iss, nonce, ID token,
//	                        a refused code): start over
//	*DeniedError            the connector's allow/deny rules refuse the
//	                        user; Reason is the admin's text for the user
//	ErrUpstreamUserGone     Refresh: the upstream refused the refresh token
//	                        (invalid_grant); the downstream refresh fails
//
// Subpackages: mapping (CEL claim mapping and rules), upstream (the
// resilient client: retries, circuit breaker, error classification,
// sealed refresh tokens), providertest (a fake upstream and the contract
// suite every callback connector passes), oidc, oauth2, local.
//
// Every method takes the request's context first. A connector's failure
// that the user caused is ErrInvalidCredentials (one message for every
// cause, so the answer does not reveal which usernames exist); ErrBusy
// means the connector is out of capacity and the caller answers 503 with
// Retry-After. Any other error is a server error: the caller logs it and
// shows a generic page.
package providers
