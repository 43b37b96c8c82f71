package recovery

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	mathrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/mfa"
)

// seq is a deterministic random source: the bytes 0, 1, 2, ... (mod 256).
type seq struct{ n byte }

func (s *seq) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = s.n
		s.n++
	}
	return len(p), nil
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// From seq: the id takes bytes 0..15, code k bytes 16+10k..25+10k, each
// byte & 31 indexing Alphabet.
const wantID = "AAECAwQFBgcICQoLDA0ODw"

var wantCodes = []string{
	"GHJKM-NPQRS", "TVWXY-Z0123", "45678-9ABCD", "EFGHJ-KMNPQ", "RSTVW-XYZ01",
	"23456-789AB", "CDEFG-HJKMN", "PQRST-VWXYZ", "01234-56789", "ABCDE-FGHJK",
}

func enroll(t testing.TB) (*Factor, *clock.Fake, mfa.Enrollment) {
	t.Helper()
	clk := clock.NewFake(t0)
	f := New(Options{Clock: clk, Rand: &seq{}})
	e, err := f.BeginEnrollment(t.Context(), mfa.EnrollmentRequest{UserID: "u1", Label: "printed"})
	if err != nil {
		t.Fatalf("BeginEnrollment: %v", err)
	}
	return f, clk, e
}

func TestEnrollment(t *testing.T) {
	f, clk, e := enroll(t)
	if got := strings.Join(e.Codes, " "); got != strings.Join(wantCodes, " ") {
		t.Fatalf("codes = %s\nwant    %s", got, strings.Join(wantCodes, " "))
	}
	p := e.Pending
	if p.ID != wantID || p.UserID != "u1" || p.Type != mfa.TypeRecovery || p.Label != "printed" || !p.CreatedAt.Equal(t0) {
		t.Fatalf("pending = %+v", p)
	}
	// Only salted SHA-256 hashes are stored.
	sum := sha256.Sum256([]byte(wantID + "\x00" + "GHJKMNPQRS"))
	if want := `{"v":1,"codes":[{"hash":"` + hex.EncodeToString(sum[:]) + `"},`; !strings.HasPrefix(string(p.Data), want) {
		t.Fatalf("data = %s\nwant prefix %s", p.Data, want)
	}
	for _, c := range e.Codes {
		for _, form := range []string{c, strings.ReplaceAll(c, "-", ""), c[:5], c[6:]} {
			if bytes.Contains(p.Data, []byte(form)) || strings.Contains(e.String(), form) || strings.Contains(p.String(), form) {
				t.Fatalf("code %s visible in data or String", c)
			}
		}
	}
	if n, err := Remaining(p); n != 10 || err != nil {
		t.Fatalf("Remaining = %d, %v", n, err)
	}
	clk.Advance(time.Minute)
	c, err := f.FinishEnrollment(t.Context(), p, "")
	if err != nil || !c.CreatedAt.Equal(t0.Add(time.Minute)) || !bytes.Equal(c.Data, p.Data) || c.ID != p.ID {
		t.Fatalf("FinishEnrollment = %+v, %v", c, err)
	}
	if _, err := f.BeginEnrollment(t.Context(), mfa.EnrollmentRequest{}); err == nil || err.Error() != "recovery: enroll: user id required" {
		t.Fatalf("enroll without user: %v", err)
	}
}

func TestDuplicateCodesAreRedrawn(t *testing.T) {
	// id, then the same 10 bytes twice, then seq.
	r := io.MultiReader(bytes.NewReader(make([]byte, 16+20)), &seq{n: 1})
	f := New(Options{Clock: clock.NewFake(t0), Rand: r})
	e, err := f.BeginEnrollment(t.Context(), mfa.EnrollmentRequest{UserID: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Codes[0] != "00000-00000" || e.Codes[1] != "12345-6789A" || len(e.Codes) != 10 {
		t.Fatalf("codes = %q", e.Codes)
	}
}

func TestVerify(t *testing.T) {
	const notACode = `recovery: credential "` + wantID + `": mfa: invalid code: not a recovery code`
	const invalid = `recovery: credential "` + wantID + `": mfa: invalid code`
	const replay = `recovery: credential "` + wantID + `": mfa: code already used`
	tests := []struct {
		input     string
		want      string // "" = accepted
		remaining int
	}{
		{"GHJKM-NPQRS", "", 9},
		{"GHJKM-NPQRS", replay, 9},
		{"ghjkmnpqrs", replay, 9},
		{" tvwxy z0123\n", "", 8},
		{"TVWXY-ZO123", replay, 8}, // O read as 0
		{"oi234-56789", "", 7},     // O and I read as 0 and 1
		{"0L234 56789", replay, 7}, // L read as 1
		{"ZZZZZ-ZZZZZ", invalid, 7},
		{"GHJKM-NPQR", notACode, 7},
		{"GHJKM-NPQRSS", notACode, 7},
		{"GHJKM-NPQRU", notACode, 7}, // U is not in the alphabet
		{"GHJKM_NPQRS", notACode, 7},
		{"", notACode, 7},
		{"----- -----", notACode, 7},
		{"ＧＨＪＫＭ-ＮＰＱＲＳ", notACode, 7}, // full-width letters
		{"GHJKM-NPQRS\x00", notACode, 7},
		{strings.Repeat("A", 100000), notACode, 7},
		{"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6", notACode, 7},
		{"EFGHJ-KMNPQ", "", 6},
	}
	f, clk, e := enroll(t)
	c := e.Pending
	for i, tt := range tests {
		clk.Advance(time.Second)
		v, err := f.Verify(t.Context(), c, nil, tt.input)
		switch {
		case tt.want == "" && err != nil:
			t.Fatalf("%d %q: err = %v", i, tt.input, err)
		case tt.want == "":
			if len(v.AMR) != 1 || v.AMR[0] != "rcode" || !v.Credential.LastUsedAt.Equal(clk.Now()) {
				t.Fatalf("%d: verification = %q, %v", i, v.AMR, v.Credential.LastUsedAt)
			}
			c = v.Credential // the caller stores it
		case err == nil || err.Error() != tt.want:
			t.Fatalf("%d %q: err = %v, want %q", i, tt.input, err, tt.want)
		}
		if n, _ := Remaining(c); n != tt.remaining {
			t.Fatalf("%d: remaining = %d, want %d", i, n, tt.remaining)
		}
	}
	if !errors.Is(func() error { _, err := f.Verify(t.Context(), c, nil, "x"); return err }(), mfa.ErrInvalidCode) {
		t.Fatal("malformed input is not ErrInvalidCode")
	}
	if !errors.Is(func() error { _, err := f.Verify(t.Context(), c, nil, "GHJKMNPQRS"); return err }(), mfa.ErrReplay) {
		t.Fatal("reuse is not ErrReplay")
	}
}

func TestExhaustAndRegenerate(t *testing.T) {
	f, clk, e := enroll(t)
	c := e.Pending
	for _, code := range wantCodes {
		v, err := f.Verify(t.Context(), c, nil, code)
		if err != nil {
			t.Fatalf("%s: %v", code, err)
		}
		c = v.Credential
	}
	if n, _ := Remaining(c); n != 0 {
		t.Fatalf("remaining = %d", n)
	}
	if _, err := f.Verify(t.Context(), c, nil, wantCodes[3]); !errors.Is(err, mfa.ErrReplay) {
		t.Fatalf("spent code: %v", err)
	}

	clk.Advance(time.Hour)
	// seq repeats every 32 bytes; regenerate from another source.
	regen := New(Options{Clock: clk, Rand: mathrand.NewChaCha8([32]byte{9})})
	next, codes, err := regen.Regenerate(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if next.ID != c.ID || next.UserID != "u1" || !next.CreatedAt.Equal(t0.Add(time.Hour)) || !next.LastUsedAt.IsZero() || len(codes) != 10 {
		t.Fatalf("regenerated = %+v, %d codes", next, len(codes))
	}
	if n, _ := Remaining(next); n != 10 {
		t.Fatalf("remaining after regenerate = %d", n)
	}
	for _, old := range wantCodes {
		if _, err := f.Verify(t.Context(), next, nil, old); !errors.Is(err, mfa.ErrInvalidCode) {
			t.Fatalf("old code %s after regenerate: %v", old, err)
		}
	}
	if _, err := f.Verify(t.Context(), next, nil, codes[9]); err != nil {
		t.Fatalf("new code: %v", err)
	}
	// The hashes are salted with the credential id: a code of one
	// credential is nothing in another with the same codes' hashes moved.
	moved := next
	moved.ID = "other"
	if _, err := f.Verify(t.Context(), moved, nil, codes[0]); !errors.Is(err, mfa.ErrInvalidCode) {
		t.Fatalf("code under another id: %v", err)
	}
	if _, _, err := regen.Regenerate(t.Context(), mfa.Credential{ID: "t", Type: mfa.TypeTOTP}); !errors.Is(err, mfa.ErrWrongFactor) {
		t.Fatalf("regenerate a totp credential: %v", err)
	}
}

func TestBadCredentials(t *testing.T) {
	f := New(Options{Clock: clock.NewFake(t0), Rand: &seq{}})
	tests := []struct {
		name string
		cred mfa.Credential
		want error
		msg  string
	}{
		{"wrong type", mfa.Credential{ID: "c", Type: mfa.TypeTOTP, Data: []byte(`{}`)}, mfa.ErrWrongFactor,
			`recovery: credential "c" of type "totp": mfa: credential belongs to another factor`},
		{"not json", mfa.Credential{ID: "c", Type: mfa.TypeRecovery, Data: []byte(`[`)}, mfa.ErrCorrupt,
			`recovery: credential "c": mfa: credential data unreadable: unexpected end of JSON input`},
		{"no codes", mfa.Credential{ID: "c", Type: mfa.TypeRecovery, Data: []byte(`{"v":1,"codes":[]}`)}, mfa.ErrCorrupt,
			`recovery: credential "c": mfa: credential data unreadable: invalid fields`},
		{"short hash", mfa.Credential{ID: "c", Type: mfa.TypeRecovery, Data: []byte(`{"v":1,"codes":[{"hash":"ab"}]}`)}, mfa.ErrCorrupt,
			`recovery: credential "c": mfa: credential data unreadable: invalid fields`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, err := range []error{
				func() error { _, err := f.Verify(t.Context(), tt.cred, nil, "GHJKM-NPQRS"); return err }(),
				func() error { _, err := f.FinishEnrollment(t.Context(), tt.cred, ""); return err }(),
				func() error { _, err := f.BeginChallenge(t.Context(), tt.cred); return err }(),
				func() error { _, err := Remaining(tt.cred); return err }(),
			} {
				if !errors.Is(err, tt.want) || err.Error() != tt.msg {
					t.Fatalf("err = %v, want %q", err, tt.msg)
				}
			}
		})
	}
}

// FuzzVerify: nothing panics, and only a normalised form of an unused code
// is accepted.
func FuzzVerify(f *testing.F) {
	for _, s := range []string{"GHJKM-NPQRS", "ghjkm npqrs", "", "\x00", "ＧＨＪ", strings.Repeat("-", 70)} {
		f.Add(s)
	}
	fac, _, e := enroll(f)
	f.Fuzz(func(t *testing.T, input string) {
		v, err := fac.Verify(t.Context(), e.Pending, nil, input)
		if err != nil {
			if !errors.Is(err, mfa.ErrInvalidCode) {
				t.Fatalf("err = %v", err)
			}
			return
		}
		n, ok := Normalise(input)
		if !ok {
			t.Fatalf("accepted %q that does not normalise", input)
		}
		found := false
		for _, c := range wantCodes {
			found = found || strings.ReplaceAll(c, "-", "") == n
		}
		if left, _ := Remaining(v.Credential); !found || left != 9 {
			t.Fatalf("accepted %q (%s), %d left", input, n, left)
		}
	})
}
