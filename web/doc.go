// Package web is the public HTTP listener: it routes the OIDC endpoints and
// hosted pages, parses requests into the broker's typed values and renders
// its answers. Every response passes through the same middleware chain:
// request id, panic recovery, access log, security headers (CONTRACTS.md)
// and a body-size limit.
//
// Routes: /healthz (process alive), /readyz (every store answers; a
// failing one is named), /.well-known/openid-configuration and
// /.well-known/oauth-authorization-server (discovery, prepared bytes),
// /keys (the JWKS, prepared bytes from broker/keys); with a broker:
// /authorize, /login, /consent, /select-account (the account chooser),
// /token, /userinfo, /introspect, /revoke, /logout (end_session_endpoint,
// GET and POST; a POST is resumed as a GET on our origin so that the
// SameSite=Lax cookies arrive) and /logout/confirm; the second-factor
// pages /mfa, /mfa/enroll, /mfa/continue (mfa.go) and the SMS and e-mail
// code pages /mfa/otp, /mfa/otp/send, /mfa/otp/enroll,
// /mfa/otp/enroll/confirm (otp.go); the account pages /account,
// /account/password, /account/email, /account/verify-email,
// /account/forgot and /account/reset (account.go, docs/accounts.md), the
// forms that add a second factor, /account/factors/totp[/confirm] and
// /account/factors/webauthn[/finish] (account_factors.go); the
// self-registration page /account/register (register.go); per saml connector
// /saml/{connector}/metadata (SP metadata), /saml/{connector}/acs (the
// IdP's cross-site POST is stored and answered 303 to a GET on our origin,
// where the binding cookie is checked) and /saml/{connector}/slo (single
// logout: started from /logout, answered by the IdP). Security keys and
// passkeys (web/webauthn.go): /mfa/webauthn, /mfa/webauthn/enroll and
// /login/passkey, whose pages load /static/webauthn.js under a CSP with
// script-src 'self' (no inline script).
//
// Cookies (__Host- prefixed and Secure over https): latchkey_auth binds a
// login or logout to the browser; latchkey_session names the active SSO
// session; latchkey_accounts holds the browser's other accounts;
// latchkey_forgot is the random value the forgot-password form's CSRF
// token derives from.
package web
