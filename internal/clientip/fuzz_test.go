package clientip_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/latchkeyid/latchkey/internal/clientip"
)

// FuzzClientIP feeds arbitrary peers and header values. The answer is never
// a panic, is the peer whenever the peer is untrusted, and otherwise is a
// canonical valid address (or the zero Addr only for an unreadable peer).
func FuzzClientIP(f *testing.F) {
	seeds := []struct{ remote, xff, fwd string }{
		{"10.0.0.2:80", "198.51.100.7, 10.0.0.3", "for=198.51.100.7"},
		{"203.0.113.5:1", "6.6.6.6", `for="[2001:db8::5]:4711";proto=https`},
		{"[fd00::1]:443", "[2001:db8::5]:4711, fd00::2", `for=unknown, for="_x"`},
		{"[::ffff:10.0.0.2]:80", "::ffff:1.2.3.4,,", `for="a\"b", for=1.2.3.4;by="x,y"`},
		{"127.0.0.1", "fe80::1%eth0", `for="`},
		{"garbage", "[", `;;=,"\`},
	}
	for _, s := range seeds {
		f.Add(s.remote, s.xff, s.fwd, false)
		f.Add(s.remote, s.xff, s.fwd, true)
	}
	trusted := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("fd00::/8"),
	}
	f.Fuzz(func(t *testing.T, remote, xff, fwd string, forwarded bool) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = remote
		r.Header["X-Forwarded-For"] = []string{xff, fwd}
		r.Header["Forwarded"] = []string{fwd, xff}
		res := clientip.Resolver{Trusted: trusted, Forwarded: forwarded}
		got := res.ClientIP(r)

		peer := clientip.Resolver{}.ClientIP(r) // RemoteAddr's address
		if !peer.IsValid() {
			if got.IsValid() {
				t.Fatalf("peer %q unreadable, but ClientIP = %v", remote, got)
			}
			return
		}
		if !got.IsValid() {
			t.Fatalf("ClientIP = zero Addr for readable peer %v", peer)
		}
		if got.Is4In6() || got.Zone() != "" {
			t.Fatalf("ClientIP = %v, not canonical", got)
		}
		trustedPeer := false
		for _, p := range trusted {
			trustedPeer = trustedPeer || p.Contains(peer)
		}
		if !trustedPeer && got != peer {
			t.Fatalf("untrusted peer %v, but ClientIP = %v (headers believed)", peer, got)
		}
	})
}
