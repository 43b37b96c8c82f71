package httpclient

import (
	"errors"
	"fmt"
	"net/netip"
)

// ErrForbiddenAddress is matched (errors.Is) by every refusal to connect to
// an address outside the public internet. The concrete error is a
// *ForbiddenAddressError naming the address.
var ErrForbiddenAddress = errors.New("httpclient: forbidden address")

// ForbiddenAddressError says which address the dialer refused and why.
type ForbiddenAddressError struct {
	// Addr is the address that was refused, as the dialer saw it.
	Addr netip.Addr
	// Reason names the range it falls in, e.g. "loopback".
	Reason string
}

func (e *ForbiddenAddressError) Error() string {
	return fmt.Sprintf("httpclient: refused to connect to %s: %s address not in outbound.allowedNetworks", e.Addr, e.Reason)
}

// Is makes errors.Is(err, ErrForbiddenAddress) true.
func (e *ForbiddenAddressError) Is(target error) bool { return target == ErrForbiddenAddress }

type blockedRange struct {
	prefix netip.Prefix
	reason string
}

// blocked4 lists the IPv4 ranges that are not the public internet, most
// specific first so the reason names the narrowest range.
var blocked4 = []blockedRange{
	{netip.MustParsePrefix("0.0.0.0/32"), "unspecified"},
	{netip.MustParsePrefix("0.0.0.0/8"), "this-network"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
}

// nat64 is the well-known NAT64 prefix (RFC 6052): the last 32 bits are an
// IPv4 address that the translator connects to, so that address decides.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// blocked6 lists the IPv6 ranges that are not the public internet.
// IPv4-mapped addresses (::ffff:0:0/96) never reach this table: they are
// unmapped and judged as IPv4 first.
var blocked6 = []blockedRange{
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible"},
	{netip.MustParsePrefix("::ffff:0:0:0/96"), "IPv4-translated"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64"},
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("2001::/32"), "Teredo"},
	{netip.MustParsePrefix("2001::/23"), "IETF protocol assignment"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("2002::/16"), "6to4"},
	{netip.MustParsePrefix("3fff::/20"), "documentation"},
	{netip.MustParsePrefix("5f00::/16"), "SRv6 SID"},
	{netip.MustParsePrefix("fc00::/7"), "private"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// CheckAddr reports whether the dialer may connect to addr: nil for a
// public address or one inside an allowed prefix, else a
// *ForbiddenAddressError. IPv4-mapped IPv6 addresses and prefixes are
// judged as their IPv4 form; a zone is ignored.
func CheckAddr(addr netip.Addr, allowed []netip.Prefix) error {
	return checkAddr(addr, normalizePrefixes(allowed))
}

// checkAddr is CheckAddr with allowed already normalized.
func checkAddr(addr netip.Addr, allowed []netip.Prefix) error {
	if !addr.IsValid() {
		return &ForbiddenAddressError{Addr: addr, Reason: "invalid"}
	}
	a := addr.WithZone("").Unmap()
	for _, p := range allowed {
		if p.Contains(a) {
			return nil
		}
	}
	if reason := classify(a); reason != "" {
		return &ForbiddenAddressError{Addr: addr, Reason: reason}
	}
	return nil
}

// classify returns why a (unmapped, without zone) is not a public address,
// or "" when it is.
func classify(a netip.Addr) string {
	if a.Is4() {
		for _, r := range blocked4 {
			if r.prefix.Contains(a) {
				return r.reason
			}
		}
		return ""
	}
	if nat64.Contains(a) {
		b := a.As16()
		v4 := netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		if reason := classify(v4); reason != "" {
			return "NAT64 " + reason
		}
		return ""
	}
	for _, r := range blocked6 {
		if r.prefix.Contains(a) {
			return r.reason
		}
	}
	return ""
}

// mappedBlock is where IPv4-mapped IPv6 addresses live.
var mappedBlock = netip.MustParsePrefix("::ffff:0:0/96")

// normalizePrefixes drops invalid prefixes and rewrites IPv4-mapped ones
// (::ffff:10.0.0.0/104) as IPv4 (10.0.0.0/8), since addresses are unmapped
// before they are compared. An IPv6 prefix that covers the whole mapped
// block (::/0) covers all of IPv4 as well.
func normalizePrefixes(in []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(in))
	for _, p := range in {
		if !p.IsValid() {
			continue
		}
		a, bits := p.Addr().WithZone(""), p.Bits()
		if a.Is4In6() && bits >= 96 {
			out = append(out, netip.PrefixFrom(a.Unmap(), bits-96).Masked())
			continue
		}
		m := netip.PrefixFrom(a, bits).Masked()
		if a.Is6() && bits <= mappedBlock.Bits() && m.Contains(mappedBlock.Addr()) {
			out = append(out, netip.PrefixFrom(netip.IPv4Unspecified(), 0))
		}
		out = append(out, m)
	}
	return out
}
