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
// Every method takes the request's context first. A connector's failure
// that the user caused is ErrInvalidCredentials (one message for every
// cause, so the answer does not reveal which usernames exist); ErrBusy
// means the connector is out of capacity and the caller answers 503 with
// Retry-After. Any other error is a server error: the caller logs it and
// shows a generic page.
package providers
