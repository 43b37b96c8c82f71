package otp

import (
	"errors"
	"net/mail"
	"strings"
	"unicode/utf8"
)

// Errors of address validation, shown to the user as they are.
var (
	ErrPhoneFormat = errors.New("enter the number in international format, starting with + and the country code, e.g. +49 151 23456789")
	ErrEmailFormat = errors.New("enter an e-mail address such as name@example.com")
)

// NormalizePhone returns the E.164 form of a phone number typed with
// optional spaces, dashes, dots and parentheses: "+" then 2 to 15 digits,
// the first not 0 (ITU-T E.164: at most 15 digits, country codes do not
// start with 0). A leading "00" is not taken for "+": the user says which
// country.
func NormalizePhone(s string) (string, error) {
	if len(s) > 64 {
		return "", ErrPhoneFormat
	}
	var b strings.Builder
	for i, r := range strings.TrimSpace(s) {
		switch {
		case r == '+' && i == 0:
			b.WriteRune(r)
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			return "", ErrPhoneFormat
		}
	}
	n := b.String()
	if len(n) < 3 || len(n) > 16 || n[0] != '+' || n[1] == '0' {
		return "", ErrPhoneFormat
	}
	return n, nil
}

// NormalizeEmail returns a bare address (no display name), lower-casing
// the domain.
func NormalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) > 254 || !utf8.ValidString(s) {
		return "", ErrEmailFormat
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return "", ErrEmailFormat
	}
	at := strings.LastIndexByte(s, '@')
	if at < 1 || !strings.Contains(s[at:], ".") {
		return "", ErrEmailFormat
	}
	return s[:at] + strings.ToLower(s[at:]), nil
}

// MaskPhone shows the country code's first digits and the last two:
// "+4915112345678" -> "+49•••••••••78".
func MaskPhone(e164 string) string {
	d := strings.TrimPrefix(e164, "+")
	if len(d) <= 4 {
		return "+" + strings.Repeat("•", len(d))
	}
	return "+" + d[:2] + strings.Repeat("•", len(d)-4) + d[len(d)-2:]
}

// MaskEmail shows the first character of the local part and the domain:
// "alice@example.org" -> "a••••@example.org".
func MaskEmail(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 1 {
		return "•••"
	}
	first, size := utf8.DecodeRuneInString(addr)
	return string(first) + strings.Repeat("•", max(utf8.RuneCountInString(addr[size:at]), 1)) + addr[at:]
}
