// Package web is the public HTTP listener: it routes the OIDC endpoints and
// hosted pages, parses requests into the broker's typed values and renders
// its answers. Every response passes through the same middleware chain:
// request id, panic recovery, access log, security headers (CONTRACTS.md)
// and a body-size limit.
//
// Routes served today: /healthz (process alive), /readyz (every store
// answers; a failing one is named), /.well-known/openid-configuration and
// /.well-known/oauth-authorization-server (discovery, prepared bytes),
// /keys (the JWKS, prepared bytes from broker/keys).
package web
