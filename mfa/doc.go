// Package mfa owns second factors (TOTP, WebAuthn, SMS and email codes,
// recovery codes, each in a subpackage) and the policy that decides which
// factor a login must present for a client, connector and acr_values.
package mfa
