package config

import (
	"encoding/base64"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// ByteSize is a number of bytes. In the file it is an integer ("1048576")
// or an integer with a unit: B, kB/KB, MB, GB, TB (powers of 1000) or KiB,
// MiB, GiB, TiB (powers of 1024), as in "1MiB" or "512 KiB".
type ByteSize int64

// Int64 returns the size in bytes.
func (b ByteSize) Int64() int64 { return int64(b) }

// String returns the size with the largest binary unit that divides it
// exactly ("1MiB", "1500B").
func (b ByteSize) String() string {
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && int64(b)%u.size == 0 {
			return strconv.FormatInt(int64(b)/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

var errBadValue = errors.New("bad value")

// parseByteSize parses a ByteSize (see its doc).
func parseByteSize(s string) (ByteSize, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return ByteSize(n), nil
	}
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i == 0 {
		return 0, errBadValue
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, errBadValue
	}
	var mult int64
	switch strings.TrimLeft(s[i:], " ") {
	case "B":
		mult = 1
	case "kB", "KB":
		mult = 1000
	case "MB":
		mult = 1000 * 1000
	case "GB":
		mult = 1000 * 1000 * 1000
	case "TB":
		mult = 1000 * 1000 * 1000 * 1000
	case "KiB":
		mult = 1 << 10
	case "MiB":
		mult = 1 << 20
	case "GiB":
		mult = 1 << 30
	case "TiB":
		mult = 1 << 40
	default:
		return 0, errBadValue
	}
	if n > math.MaxInt64/mult {
		return 0, errBadValue
	}
	return ByteSize(n * mult), nil
}

// parseDuration parses a Go duration ("90s", "1h30m", "720h") or one with a
// leading number of days ("30d", "1d12h"). A day is 24 hours.
func parseDuration(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	sign := time.Duration(1)
	rest := s
	if r, ok := strings.CutPrefix(rest, "-"); ok {
		sign, rest = -1, r
	} else if r, ok := strings.CutPrefix(rest, "+"); ok {
		rest = r
	}
	days, after, ok := strings.Cut(rest, "d")
	if !ok || days == "" || strings.TrimFunc(days, func(r rune) bool { return r >= '0' && r <= '9' }) != "" {
		return 0, errBadValue
	}
	const day = 24 * time.Hour
	n, err := strconv.ParseInt(days, 10, 64)
	if err != nil || n > int64(math.MaxInt64/day) {
		return 0, errBadValue
	}
	total := time.Duration(n) * day
	if after != "" {
		if after[0] == '-' || after[0] == '+' {
			return 0, errBadValue
		}
		extra, err := time.ParseDuration(after)
		if err != nil || extra > math.MaxInt64-total {
			return 0, errBadValue
		}
		total += extra
	}
	return sign * total, nil
}

// decodeBase64 accepts standard or URL-safe base64, padded or not.
func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		return nil, errBadValue
	}
	return b, nil
}
