package clientip_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/latchkeyid/latchkey/internal/clientip"
)

var trusted = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("127.0.0.1/32"),
	netip.MustParsePrefix("fd00::/8"),
}

func request(remote string, header http.Header) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = remote
	for k, vs := range header {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	return r
}

func xff(vs ...string) http.Header { return http.Header{"X-Forwarded-For": vs} }
func fwd(vs ...string) http.Header { return http.Header{"Forwarded": vs} }

func TestClientIP(t *testing.T) {
	tests := []struct {
		name      string
		trusted   []netip.Prefix
		forwarded bool
		remote    string
		header    http.Header
		want      string // "" is the zero Addr
	}{
		// The peer decides whether headers are read at all.
		{name: "untrusted peer, no header", remote: "203.0.113.5:4711", want: "203.0.113.5"},
		{name: "untrusted peer, spoofed XFF", remote: "203.0.113.5:4711", header: xff("198.51.100.7"), want: "203.0.113.5"},
		{name: "untrusted peer, spoofed Forwarded", forwarded: true, remote: "203.0.113.5:4711", header: fwd("for=198.51.100.7"), want: "203.0.113.5"},
		{name: "untrusted peer inside another trusted hop's claim", remote: "203.0.113.5:4711", header: xff("198.51.100.7, 10.0.0.3"), want: "203.0.113.5"},
		{name: "nothing trusted", trusted: []netip.Prefix{}, remote: "10.0.0.2:80", header: xff("198.51.100.7"), want: "10.0.0.2"},
		{name: "trusted peer, no header", remote: "10.0.0.2:80", want: "10.0.0.2"},
		{name: "trusted peer, empty header", remote: "10.0.0.2:80", header: xff(""), want: "10.0.0.2"},

		// X-Forwarded-For, walked from the right.
		{name: "one proxy", remote: "10.0.0.2:80", header: xff("198.51.100.7"), want: "198.51.100.7"},
		{name: "client spoofs leftmost entry", remote: "10.0.0.2:80", header: xff("6.6.6.6, 198.51.100.7"), want: "198.51.100.7"},
		{name: "two trusted proxies", remote: "10.0.0.2:80", header: xff("6.6.6.6, 198.51.100.7, 10.0.0.3"), want: "198.51.100.7"},
		{name: "no spaces", remote: "10.0.0.2:80", header: xff("6.6.6.6,198.51.100.7,10.0.0.3"), want: "198.51.100.7"},
		{name: "tabs and spaces", remote: "10.0.0.2:80", header: xff(" 6.6.6.6 ,\t198.51.100.7\t"), want: "198.51.100.7"},
		{name: "every entry trusted: leftmost", remote: "10.0.0.2:80", header: xff("10.1.1.1, 10.0.0.3"), want: "10.1.1.1"},
		{name: "multiple header lines, spoof in the first", remote: "10.0.0.2:80", header: xff("6.6.6.6", "198.51.100.7, 10.0.0.3"), want: "198.51.100.7"},
		{name: "multiple header lines, client in the first", remote: "10.0.0.2:80", header: xff("198.51.100.7", "10.0.0.3"), want: "198.51.100.7"},
		{name: "multiple header lines, trusted chain across lines", remote: "10.0.0.2:80", header: xff("6.6.6.6, 198.51.100.7", "10.0.0.4", "10.0.0.3"), want: "198.51.100.7"},
		{name: "Forwarded ignored in XFF mode", remote: "10.0.0.2:80", header: http.Header{"Forwarded": {"for=6.6.6.6"}, "X-Forwarded-For": {"198.51.100.7"}}, want: "198.51.100.7"},
		{name: "Forwarded alone ignored in XFF mode", remote: "10.0.0.2:80", header: fwd("for=6.6.6.6"), want: "10.0.0.2"},

		// Malformed entries end the walk at the last trusted hop.
		{name: "garbage only", remote: "10.0.0.2:80", header: xff("garbage"), want: "10.0.0.2"},
		{name: "garbage rightmost", remote: "10.0.0.2:80", header: xff("198.51.100.7, garbage"), want: "10.0.0.2"},
		{name: "garbage left of the client", remote: "10.0.0.2:80", header: xff("garbage, 198.51.100.7"), want: "198.51.100.7"},
		{name: "garbage behind a trusted hop", remote: "10.0.0.2:80", header: xff("198.51.100.7, garbage, 10.0.0.3"), want: "10.0.0.3"},
		{name: "empty element", remote: "10.0.0.2:80", header: xff("198.51.100.7, , 10.0.0.3"), want: "10.0.0.3"},
		{name: "trailing comma", remote: "10.0.0.2:80", header: xff("198.51.100.7,"), want: "10.0.0.2"},
		{name: "unknown", remote: "10.0.0.2:80", header: xff("unknown"), want: "10.0.0.2"},
		{name: "hostname", remote: "10.0.0.2:80", header: xff("client.example.com"), want: "10.0.0.2"},
		{name: "bad port", remote: "10.0.0.2:80", header: xff("198.51.100.7:99999"), want: "10.0.0.2"},
		{name: "bracketed IPv4", remote: "10.0.0.2:80", header: xff("[198.51.100.7]"), want: "10.0.0.2"},
		{name: "unterminated bracket", remote: "10.0.0.2:80", header: xff("[2001:db8::5"), want: "10.0.0.2"},
		{name: "CIDR", remote: "10.0.0.2:80", header: xff("198.51.100.0/24"), want: "10.0.0.2"},
		{name: "bad line after good line", remote: "10.0.0.2:80", header: xff("198.51.100.7", "bogus"), want: "10.0.0.2"},

		// Ports, IPv6, mapped addresses, zones.
		{name: "XFF IPv4 with port", remote: "10.0.0.2:80", header: xff("198.51.100.7:4711"), want: "198.51.100.7"},
		{name: "XFF IPv6", remote: "10.0.0.2:80", header: xff("2001:db8::5"), want: "2001:db8::5"},
		{name: "XFF bracketed IPv6", remote: "10.0.0.2:80", header: xff("[2001:db8::5]"), want: "2001:db8::5"},
		{name: "XFF bracketed IPv6 with port", remote: "10.0.0.2:80", header: xff("[2001:db8::5]:4711"), want: "2001:db8::5"},
		{name: "XFF IPv6 with zone", remote: "10.0.0.2:80", header: xff("fe80::1%eth0"), want: "fe80::1"},
		{name: "XFF IPv4-mapped", remote: "10.0.0.2:80", header: xff("::ffff:198.51.100.7"), want: "198.51.100.7"},
		{name: "XFF IPv4-mapped trusted hop", remote: "10.0.0.2:80", header: xff("198.51.100.7, ::ffff:10.0.0.3"), want: "198.51.100.7"},
		{name: "IPv6 untrusted peer", remote: "[2001:db8::1]:443", header: xff("198.51.100.7"), want: "2001:db8::1"},
		{name: "IPv6 trusted peer", remote: "[fd00::1]:443", header: xff("2001:db8::5, fd00::2"), want: "2001:db8::5"},
		{name: "IPv4-mapped trusted peer", remote: "[::ffff:10.0.0.2]:80", header: xff("198.51.100.7"), want: "198.51.100.7"},
		{name: "IPv4-mapped untrusted peer", remote: "[::ffff:203.0.113.5]:80", want: "203.0.113.5"},
		{name: "peer with zone", remote: "[fe80::1%eth0]:80", want: "fe80::1"},
		{name: "peer without port", remote: "127.0.0.1", header: xff("198.51.100.7"), want: "198.51.100.7"},
		{name: "IPv6 peer without port", remote: "2001:db8::1", want: "2001:db8::1"},
		{name: "peer not an address", remote: "@unix-socket", header: xff("198.51.100.7"), want: ""},
		{name: "empty peer", remote: "", want: ""},

		// RFC 7239 Forwarded.
		{name: "Forwarded one proxy", forwarded: true, remote: "10.0.0.2:80", header: fwd("for=198.51.100.7;proto=https;by=10.0.0.2"), want: "198.51.100.7"},
		{name: "Forwarded quoted IPv6 with port", forwarded: true, remote: "10.0.0.2:80", header: fwd(`for="[2001:db8::5]:4711"`), want: "2001:db8::5"},
		{name: "Forwarded quoted IPv4 with port", forwarded: true, remote: "10.0.0.2:80", header: fwd(`for="198.51.100.7:4711"`), want: "198.51.100.7"},
		{name: "Forwarded obfuscated port", forwarded: true, remote: "10.0.0.2:80", header: fwd(`for="[2001:db8::5]:_p1"`), want: "2001:db8::5"},
		{name: "Forwarded key case-insensitive", forwarded: true, remote: "10.0.0.2:80", header: fwd("For=198.51.100.7"), want: "198.51.100.7"},
		{name: "Forwarded spoof on the left", forwarded: true, remote: "10.0.0.2:80", header: fwd("for=6.6.6.6, for=198.51.100.7, for=10.0.0.3"), want: "198.51.100.7"},
		{name: "Forwarded multiple lines", forwarded: true, remote: "10.0.0.2:80", header: fwd("for=6.6.6.6", "for=198.51.100.7;proto=http", "for=10.0.0.3"), want: "198.51.100.7"},
		{name: "Forwarded comma inside quotes", forwarded: true, remote: "10.0.0.2:80", header: fwd(`for=198.51.100.7;host="a,for=6.6.6.6"`), want: "198.51.100.7"},
		{name: "Forwarded escaped quote", forwarded: true, remote: "10.0.0.2:80", header: fwd(`for=198.51.100.7;host="a\",for=6.6.6.6"`), want: "198.51.100.7"},
		{name: "Forwarded unknown", forwarded: true, remote: "10.0.0.2:80", header: fwd("for=198.51.100.7, for=unknown, for=10.0.0.3"), want: "10.0.0.3"},
		{name: "Forwarded obfuscated node", forwarded: true, remote: "10.0.0.2:80", header: fwd("for=_hidden"), want: "10.0.0.2"},
		{name: "Forwarded element without for", forwarded: true, remote: "10.0.0.2:80", header: fwd("for=198.51.100.7, proto=https"), want: "10.0.0.2"},
		{name: "Forwarded two for in one element", forwarded: true, remote: "10.0.0.2:80", header: fwd("for=198.51.100.7;for=6.6.6.6"), want: "10.0.0.2"},
		{name: "Forwarded unquoted IPv6", forwarded: true, remote: "10.0.0.2:80", header: fwd("for=[2001:db8::5]"), want: "2001:db8::5"},
		{name: "Forwarded unterminated quote", forwarded: true, remote: "10.0.0.2:80", header: fwd(`for="198.51.100.7`), want: "10.0.0.2"},
		{name: "Forwarded XFF ignored", forwarded: true, remote: "10.0.0.2:80", header: http.Header{"Forwarded": {"for=198.51.100.7"}, "X-Forwarded-For": {"6.6.6.6"}}, want: "198.51.100.7"},
		{name: "Forwarded XFF alone ignored", forwarded: true, remote: "10.0.0.2:80", header: xff("6.6.6.6"), want: "10.0.0.2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := clientip.Resolver{Trusted: trusted, Forwarded: tc.forwarded}
			if tc.trusted != nil {
				res.Trusted = tc.trusted
			}
			got := res.ClientIP(request(tc.remote, tc.header))
			var want netip.Addr
			if tc.want != "" {
				want = netip.MustParseAddr(tc.want)
			}
			if got != want {
				t.Fatalf("ClientIP = %v, want %v", got, want)
			}
		})
	}
}

func TestClientIPZeroResolver(t *testing.T) {
	got := clientip.Resolver{}.ClientIP(request("127.0.0.1:5555", xff("198.51.100.7")))
	if want := netip.MustParseAddr("127.0.0.1"); got != want {
		t.Fatalf("ClientIP = %v, want %v", got, want)
	}
}

func TestClientIPHopLimit(t *testing.T) {
	// 40 trusted hops: the walk passes 32 and answers the 32nd
	// reached rather than reading the client-controlled left part.
	h := "6.6.6.6"
	for i := 40; i >= 1; i-- {
		h += ", 10.0.0." + itoa(i)
	}
	got := clientip.Resolver{Trusted: trusted}.ClientIP(request("10.0.0.200:80", xff(h)))
	if want := netip.MustParseAddr("10.0.0.32"); got != want {
		t.Fatalf("ClientIP = %v, want %v", got, want)
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
