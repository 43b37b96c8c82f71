package ratelimit

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"strconv"
)

// hashKey is the store's name for a caller's key: the first 16 bytes of
// its SHA-256 in hex. Account names and addresses never reach the store.
func hashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

func windowKey(rule, hashed string, window int64) string {
	return "rl:" + rule + ":" + hashed + ":" + strconv.FormatInt(window, 10)
}

func lockoutKey(hashed string) string { return "lockout:" + hashed }

// IPKey is the rate-limit key for a client address: an IPv4 address as
// is, an IPv6 address by its /64, since one subscriber usually holds a
// whole /64 and could otherwise rotate through 2^64 keys. IPv4-mapped
// addresses count as IPv4 and zones are ignored. The zero Addr gives "".
func IPKey(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64) // cannot fail for a valid IPv6 address
	return p.String()
}
