// Package console is the admin console: server-rendered pages at /admin
// on the admin listener (html/template, plain forms, no script).
//
// Admins sign in through Latchkey itself: the console is an OpenID
// Connect client (the built-in admin client, public, PKCE S256) of the
// issuer. It asks for acr urn:latchkey:acr:mfa unless told not to, and
// admits only users in the configured admin group whose ID token meets
// the acr. The console session is a random cookie whose SHA-256 keys a
// record in the ephemeral store (with the admin and a CSRF token); every
// form carries the CSRF token.
//
// Pages read and change data through api.Server.Call, in process: the
// same handlers, validation, sealing and audit events as the REST API,
// with the admin ("user:<id>") as the actor.
package console
