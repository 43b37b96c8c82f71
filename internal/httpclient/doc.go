// Package httpclient owns Latchkey's one hardened outbound HTTP client.
// Every request to an address that comes from config or from a client
// (upstream discovery, JWKS, userinfo, SAML metadata, a client's jwks_uri,
// back-channel logout, webhooks) goes through a client made by New.
//
// A request flows through three guards:
//
//  1. The dialer. Its ControlContext hook sees the resolved IP address of
//     every socket after it is created and before connect(2) runs, and
//     refuses loopback, private, link-local, CGNAT, multicast, reserved,
//     documentation and translation (IPv4-mapped, NAT64, 6to4, Teredo)
//     addresses unless an Options.AllowedNetworks prefix holds the address.
//     Because the check is on the address actually dialled, a hostname that
//     resolves (or re-resolves, DNS rebinding) to 127.0.0.1 is refused too.
//     The refusal is a *ForbiddenAddressError, matched by
//     errors.Is(err, ErrForbiddenAddress) through the *url.Error.
//  2. The redirect policy: at most Options.MaxRedirects hops, each to the
//     same scheme, host and port as the original request (so never from
//     https to http).
//  3. The body limit: a response body that yields more than
//     Options.MaxBodyBytes fails with ErrBodyTooLarge instead of being cut
//     short silently.
//
// Proxies from the environment are ignored (a proxy would dial for us and
// bypass the address check) and TLS starts at version 1.2.
package httpclient
