// Package broker is the OpenID Connect provider core, free of routing and
// templates: it validates authorization requests, runs the login state
// machine (choose connector, upstream sign-in, second factor, consent,
// done) over a stored auth request, and issues codes and tokens. Wire
// types and protocol rules live in broker/oauth2, token formats in
// broker/token, signing keys in broker/keys.
//
// Today it also owns the provider metadata (discovery): the document lists
// exactly what is implemented.
package broker
