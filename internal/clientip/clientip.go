package clientip

import (
	"net/http"
	"net/netip"
	"strings"
)

// maxHops bounds how many trusted proxies the walk passes: no deployment
// has this many, and it keeps a huge header from costing more than a few
// prefix checks.
const maxHops = 32

// Resolver finds a request's client address from the trusted-proxy config.
// The zero value trusts nobody and answers RemoteAddr. It is safe for
// concurrent use as long as Trusted is not modified.
type Resolver struct {
	// Trusted are the networks of the reverse proxies in front of Latchkey
	// (config http.trustedProxies).
	Trusted []netip.Prefix
	// Forwarded selects the RFC 7239 Forwarded header (its for=
	// parameters) instead of X-Forwarded-For. Only the selected header is
	// read.
	Forwarded bool
}

// ClientIP returns the client address of r. It is never an address the
// client chose unless every proxy between it and us is trusted. The zero
// Addr is returned only when r.RemoteAddr is not an IP address (never the
// case for requests served by net/http over TCP).
func (res Resolver) ClientIP(r *http.Request) netip.Addr {
	peer, ok := parseRemoteAddr(r.RemoteAddr)
	if !ok {
		return netip.Addr{}
	}
	if !res.trusted(peer) {
		return peer
	}
	last := peer
	hops := 0
	visit := func(entry string, parse func(string) (netip.Addr, bool)) (done bool) {
		a, ok := parse(entry)
		if !ok {
			return true
		}
		last = a
		if !res.trusted(a) {
			return true
		}
		hops++
		return hops >= maxHops
	}
	if res.Forwarded {
		lines := r.Header.Values("Forwarded")
		for i := len(lines) - 1; i >= 0; i-- {
			elems := splitQuoted(lines[i], ',')
			for j := len(elems) - 1; j >= 0; j-- {
				if visit(elems[j], forwardedFor) {
					return last
				}
			}
		}
		return last
	}
	lines := r.Header.Values("X-Forwarded-For")
	for i := len(lines) - 1; i >= 0; i-- {
		line := lines[i]
		for {
			j := strings.LastIndexByte(line, ',')
			if visit(line[j+1:], parseNode) {
				return last
			}
			if j < 0 {
				break
			}
			line = line[:j]
		}
	}
	return last
}

func (res Resolver) trusted(a netip.Addr) bool {
	for _, p := range res.Trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// canonical unmaps IPv4-mapped addresses and drops the zone.
func canonical(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

// parseRemoteAddr reads "host:port", "[v6]:port", or a bare address.
func parseRemoteAddr(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return canonical(ap.Addr()), true
	}
	return parseNode(s)
}

// parseNode reads one forwarding entry: an IPv4 or IPv6 address, optionally
// in brackets (IPv6), optionally with a port. Surrounding spaces and tabs
// are ignored; anything else is unreadable.
func parseNode(s string) (netip.Addr, bool) {
	s = strings.Trim(s, " \t")
	if s == "" {
		return netip.Addr{}, false
	}
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 || !validPort(s[end+1:], true) {
			return netip.Addr{}, false
		}
		a, err := netip.ParseAddr(s[1:end])
		if err != nil || !a.Is6() {
			return netip.Addr{}, false
		}
		return canonical(a), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return canonical(a), true
	}
	// IPv4 with a port: exactly one colon.
	i := strings.IndexByte(s, ':')
	if i < 0 || strings.IndexByte(s[i+1:], ':') >= 0 || !validPort(s[i:], false) {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s[:i])
	if err != nil || !a.Is4() {
		return netip.Addr{}, false
	}
	return a, true
}

// validPort accepts "" when optional, or ":" followed by 1-5 digits, or
// (RFC 7239 §6.3) an obfuscated port "_" followed by letters, digits, ".",
// "_" or "-".
func validPort(s string, optional bool) bool {
	if s == "" {
		return optional
	}
	if s[0] != ':' || len(s) < 2 {
		return false
	}
	p := s[1:]
	if p[0] == '_' {
		for i := 1; i < len(p); i++ {
			c := p[i]
			if !isAlnum(c) && c != '.' && c != '_' && c != '-' {
				return false
			}
		}
		return len(p) > 1
	}
	if len(p) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
		n = n*10 + int(p[i]-'0')
	}
	return n <= 65535
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// forwardedFor reads the node of the for= parameter of one RFC 7239
// forwarded-element ("for=192.0.2.1;proto=https"). An element without
// exactly one for= parameter, or whose node is "unknown" or obfuscated, is
// unreadable.
func forwardedFor(elem string) (netip.Addr, bool) {
	var node string
	found := false
	for _, pair := range splitQuoted(elem, ';') {
		pair = strings.Trim(pair, " \t")
		eq := strings.IndexByte(pair, '=')
		if eq < 0 {
			if pair == "" {
				continue
			}
			return netip.Addr{}, false
		}
		if !strings.EqualFold(strings.TrimRight(pair[:eq], " \t"), "for") {
			continue
		}
		if found {
			return netip.Addr{}, false
		}
		v, ok := unquote(strings.TrimLeft(pair[eq+1:], " \t"))
		if !ok {
			return netip.Addr{}, false
		}
		node, found = v, true
	}
	if !found {
		return netip.Addr{}, false
	}
	return parseNode(node)
}

// unquote returns a token as is and a quoted-string without its quotes and
// backslash escapes.
func unquote(v string) (string, bool) {
	if v == "" || v[0] != '"' {
		return v, !strings.ContainsAny(v, "\"\\")
	}
	var b strings.Builder
	for i := 1; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			i++
			if i == len(v) {
				return "", false
			}
			b.WriteByte(v[i])
		case '"':
			return b.String(), i == len(v)-1
		default:
			b.WriteByte(c)
		}
	}
	return "", false // unterminated
}

// splitQuoted splits s at sep outside quoted-strings (RFC 9110 §5.6.4).
func splitQuoted(s string, sep byte) []string {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
