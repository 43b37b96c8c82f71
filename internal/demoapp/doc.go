// Package demoapp is the demo relying party behind `latchkey demo-app`: a
// small, real OpenID Connect client (authorization code + PKCE with
// golang.org/x/oauth2 and github.com/coreos/go-oidc/v3) that shows the ID
// token's claims and the userinfo response, and signs out. It exists so a
// newcomer can watch a whole login after `make run`.
package demoapp
