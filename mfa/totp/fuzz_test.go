package totp

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/mfa"
)

// FuzzVerify: any input is either one of the window's codes (modulo white
// space) or refused with one of two fixed messages; nothing panics.
func FuzzVerify(f *testing.F) {
	for _, s := range []string{"", c66, " 921 300 ", "92130a", "\x00", strings.Repeat("1", 7), "٩٢١٣٠٠"} {
		f.Add(s)
	}
	fac, _ := factor(f, Options{}, time.Unix(step*30+10, 0))
	c := enrolled(f, fac, step-6)
	f.Fuzz(func(t *testing.T, code string) {
		v, err := fac.Verify(t.Context(), c, nil, code)
		if err == nil {
			n := strings.Join(strings.Fields(code), "")
			if n != c65 && n != c66 && n != c67 {
				t.Fatalf("accepted %q", code)
			}
			if lastStep(t, v.Credential) <= step-6 {
				t.Fatal("accepted without moving the last step")
			}
			return
		}
		if !errors.Is(err, mfa.ErrInvalidCode) {
			t.Fatalf("err = %v", err)
		}
		switch err.Error() {
		case `totp: credential "c1": mfa: invalid code: not 6 digits`, `totp: credential "c1": mfa: invalid code`:
		default:
			t.Fatalf("unexpected message %q", err)
		}
	})
}
