// Package clientip owns one question: which IP address is the client of this
// HTTP request? Rate limits per IP, audit events and logs all ask it, and all
// must get the same answer, decided only by the trusted-proxy config
// (http.trustedProxies).
//
// A request flows through Resolver.ClientIP like this:
//
//  1. The TCP peer (Request.RemoteAddr) is the answer unless it lies in a
//     trusted prefix. An untrusted peer's X-Forwarded-For and Forwarded
//     headers are never read, so a client cannot spoof its address.
//  2. Behind a trusted peer the forwarding header (X-Forwarded-For, or the
//     RFC 7239 Forwarded header's for= parameters when Resolver.Forwarded is
//     set; never both) is walked from the right, across every line of the
//     header in order: each trusted proxy appended the address it received
//     the request from, so the first address that is not itself trusted is
//     the client. Entries further left were written by the client and are
//     never looked at.
//  3. An entry that cannot be read (garbage, "unknown", an obfuscated
//     identifier, an empty element) ends the walk: the answer is then the
//     nearest hop that can be vouched for, the last trusted address walked
//     (the peer itself if the rightmost entry is unreadable). If every entry
//     is trusted, the leftmost one is the answer.
//
// Addresses are returned canonical: IPv4-mapped IPv6 addresses are unmapped
// (so ::ffff:10.0.0.1 matches 10.0.0.0/8) and zones are dropped. Trusted
// prefixes must list proxies only: a client whose own address is trusted can
// name any address it likes.
package clientip
