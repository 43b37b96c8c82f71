package otp_test

import (
	"strings"
	"testing"

	"github.com/latchkeyid/latchkey/mfa/otp"
)

// FuzzNormalizePhone: whatever is typed, the result is E.164 or an error,
// and normalizing is idempotent.
func FuzzNormalizePhone(f *testing.F) {
	for _, s := range []string{"+4915112345678", " +1 (415) 555-2671", "00491511", "+", "+0", "+١٢٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := otp.NormalizePhone(s)
		if err != nil {
			return
		}
		if len(n) < 3 || len(n) > 16 || n[0] != '+' || n[1] == '0' || strings.Trim(n[1:], "0123456789") != "" {
			t.Fatalf("NormalizePhone(%q) = %q", s, n)
		}
		if again, err := otp.NormalizePhone(n); err != nil || again != n {
			t.Fatalf("not idempotent: %q -> %q, %v", n, again, err)
		}
		if m := otp.MaskPhone(n); len(n) > 7 && strings.Contains(m, n[3:len(n)-2]) {
			t.Fatalf("mask %q shows the middle of %q", m, n)
		}
	})
}

func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{"a@b.co", "A <a@b.co>", "a@b", "\"x y\"@b.co"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := otp.NormalizeEmail(s)
		if err != nil {
			return
		}
		if strings.ContainsAny(n, "\r\n<>") {
			t.Fatalf("NormalizeEmail(%q) = %q", s, n)
		}
	})
}
