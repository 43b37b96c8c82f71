package totp

import (
	"bytes"
	"encoding/base32"
	"errors"
	"image/png"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/mfa"
)

// RFC 6238 appendix B: the seeds are ASCII "1234567890" repeated to the
// hash's length; 8 digits, 30 s steps.
var (
	rfcSeed1   = []byte("12345678901234567890")
	rfcSeed256 = []byte("12345678901234567890123456789012")
	rfcSeed512 = []byte("1234567890123456789012345678901234567890123456789012345678901234")
)

func TestRFC6238Vectors(t *testing.T) {
	tests := []struct {
		unix int64
		alg  string
		code string
	}{
		{59, "SHA1", "94287082"},
		{59, "SHA256", "46119246"},
		{59, "SHA512", "90693936"},
		{1111111109, "SHA1", "07081804"},
		{1111111109, "SHA256", "68084774"},
		{1111111109, "SHA512", "25091201"},
		{1111111111, "SHA1", "14050471"},
		{1111111111, "SHA256", "67062674"},
		{1111111111, "SHA512", "99943326"},
		{1234567890, "SHA1", "89005924"},
		{1234567890, "SHA256", "91819424"},
		{1234567890, "SHA512", "93441116"},
		{2000000000, "SHA1", "69279037"},
		{2000000000, "SHA256", "90698825"},
		{2000000000, "SHA512", "38618901"},
		{20000000000, "SHA1", "65353130"},
		{20000000000, "SHA256", "77737706"},
		{20000000000, "SHA512", "47863826"},
	}
	seeds := map[string][]byte{"SHA1": rfcSeed1, "SHA256": rfcSeed256, "SHA512": rfcSeed512}
	for _, tt := range tests {
		t.Run(tt.alg+"/"+tt.code, func(t *testing.T) {
			now := time.Unix(tt.unix, 0)
			f, clk := factor(t, Options{Algorithm: tt.alg, Digits: 8}, now)
			e := withSeed(t, f, "cred-rfc", seeds[tt.alg])
			c, err := f.FinishEnrollment(t.Context(), e.Pending, tt.code)
			wantErr(t, err, nil)
			if got, want := lastStep(t, c), tt.unix/30; got != want {
				t.Fatalf("last step = %d, want %d", got, want)
			}
			if !c.CreatedAt.Equal(now) || !c.LastUsedAt.Equal(now) {
				t.Fatalf("times = %v, %v, want %v", c.CreatedAt, c.LastUsedAt, now)
			}
			// The same code again, in the same step and one step later
			// (still within the skew): replay.
			_, err = f.Verify(t.Context(), c, nil, tt.code)
			wantErr(t, err, mfa.ErrReplay, tt.code)
			clk.Advance(30 * time.Second)
			_, err = f.Verify(t.Context(), c, nil, tt.code)
			wantErr(t, err, mfa.ErrReplay, tt.code)
			// Two steps later the code has expired.
			clk.Advance(30 * time.Second)
			_, err = f.Verify(t.Context(), c, nil, tt.code)
			wantErr(t, err, mfa.ErrInvalidCode, tt.code)
		})
	}
}

func TestEnrollment(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f, _ := factor(t, Options{Issuer: "Acme Corp"}, now)
	e, err := f.BeginEnrollment(t.Context(), mfa.EnrollmentRequest{UserID: "u1", AccountName: "alice@example.com", Label: "phone"})
	wantErr(t, err, nil)
	seed, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(e.Secret)
	if err != nil || len(seed) != 20 {
		t.Fatalf("secret %d bytes, err %v; want 20 bytes of base32", len(seed), err)
	}
	wantURI := "otpauth://totp/Acme%20Corp:alice@example.com?algorithm=SHA1&digits=6&issuer=Acme%20Corp&period=30&secret=" + e.Secret
	if e.URI != wantURI {
		t.Fatalf("URI = %q\nwant  %q", e.URI, wantURI)
	}
	img, err := png.Decode(bytes.NewReader(e.QRCode))
	if err != nil {
		t.Fatalf("QR code is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 256 || b.Dy() != 256 {
		t.Fatalf("QR code %dx%d, want 256x256", b.Dx(), b.Dy())
	}
	p := e.Pending
	if p.UserID != "u1" || p.Type != mfa.TypeTOTP || p.Label != "phone" || len(p.ID) != 22 || !p.CreatedAt.Equal(now) {
		t.Fatalf("pending = %+v", p)
	}
	for _, secret := range []string{e.Secret, string(seed), strings.ToLower(e.Secret)} {
		if bytes.Contains(p.Data, []byte(secret)) {
			t.Fatal("pending data holds the seed in the clear")
		}
	}
	for _, s := range []string{e.String(), p.String(), e.GoString()} {
		if strings.Contains(s, e.Secret) || strings.Contains(s, e.URI) || strings.Contains(s, string(p.Data)) {
			t.Fatalf("%q shows a secret", s)
		}
	}
	// A pending credential does not verify: it must be confirmed first.
	_, err = f.Verify(t.Context(), p, nil, "123456")
	wantErr(t, err, mfa.ErrNotEnrolled)
	if err.Error() != `totp: credential "`+p.ID+`" is not confirmed: mfa: factor not enrolled` {
		t.Fatalf("err = %q", err)
	}
}

func TestEnrollmentRequestErrors(t *testing.T) {
	f, _ := factor(t, Options{}, time.Unix(1700000000, 0))
	tests := []struct {
		name string
		req  mfa.EnrollmentRequest
		want string
	}{
		{"no user", mfa.EnrollmentRequest{AccountName: "alice"}, "totp: enroll: user id required"},
		{"no account", mfa.EnrollmentRequest{UserID: "u1"}, "totp: enroll: account name required, without ':'"},
		{"colon", mfa.EnrollmentRequest{UserID: "u1", AccountName: "a:b"}, "totp: enroll: account name required, without ':'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.BeginEnrollment(t.Context(), tt.req)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	s := keyring(t)
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"defaults", Options{Issuer: "L", Sealer: s}, ""},
		{"all set", Options{Issuer: "L", Sealer: s, Algorithm: "SHA512", Digits: 8, Period: 60 * time.Second, QRSize: 128}, ""},
		{"nothing", Options{}, "totp: issuer: required\nsealer: required"},
		{"bad values", Options{Issuer: "a:b", Sealer: s, Algorithm: "MD5", Digits: 7, Period: 1500 * time.Millisecond, QRSize: -1},
			"totp: issuer: must not contain ':'\n" +
				`algorithm: "MD5" is not one of SHA1, SHA256, SHA512` + "\n" +
				"digits: 7 is not 6 or 8\nperiod: 1.5s is not a whole number of seconds >= 1s\nqrSize: -1 is negative"},
		{"lower-case alg", Options{Issuer: "L", Sealer: s, Algorithm: "sha1"}, `totp: algorithm: "sha1" is not one of SHA1, SHA256, SHA512`},
		{"negative period", Options{Issuer: "L", Sealer: s, Period: -time.Second}, "totp: period: -1s is not a whole number of seconds >= 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.o)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Fatalf("err = %q\nwant  %q", got, tt.want)
			}
		})
	}
}

func TestFinishEnrollment(t *testing.T) {
	now := time.Unix(1111111109, 0)
	tests := []struct {
		name string
		code string
		want error
	}{
		{"valid", "07081804", nil},
		{"wrong", "07081805", mfa.ErrInvalidCode},
		{"empty", "", mfa.ErrInvalidCode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _ := factor(t, Options{Digits: 8}, now)
			e := withSeed(t, f, "c1", rfcSeed1)
			c, err := f.FinishEnrollment(t.Context(), e.Pending, tt.code)
			wantErr(t, err, tt.want, string(rfcSeed1), e.Secret)
			if err == nil {
				// Confirming twice is refused.
				_, err = f.FinishEnrollment(t.Context(), c, tt.code)
				if err == nil || err.Error() != `totp: credential "c1" is already confirmed` {
					t.Fatalf("second finish: %v", err)
				}
			}
		})
	}
}

// enrolled returns a confirmed credential with the RFC SHA1 seed, 6
// digits, 30 s, whose last accepted step is last.
func enrolled(t testing.TB, f *Factor, last int64) mfa.Credential {
	t.Helper()
	e := withSeed(t, f, "c1", rfcSeed1)
	s, err := decode(e.Pending)
	if err != nil {
		t.Fatal(err)
	}
	s.LastStep = last
	if e.Pending.Data, err = encode("c1", s); err != nil {
		t.Fatal(err)
	}
	return e.Pending
}

// Codes of the RFC SHA1 seed, 6 digits, 30 s, per step, from
// `oathtool --totp -b GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ --now @<step*30>`.
const (
	step = 56666666 // 1699999980 <= unix < 1700000010
	c64  = "713364" // step-2
	c65  = "276857" // step-1
	c66  = "921300" // step
	c67  = "732303" // step+1
	c68  = "136087" // step+2
)

func TestVerifyWindowAndReplay(t *testing.T) {
	type attempt struct {
		at       time.Duration // after the start of step
		code     string
		want     error
		wantLast int64 // after the attempt
	}
	const mid = 10 * time.Second
	tests := []struct {
		name     string
		last     int64
		attempts []attempt
	}{
		{"current step", step - 6, []attempt{{mid, c66, nil, step}}},
		{"previous step (skew)", step - 6, []attempt{{mid, c65, nil, step - 1}}},
		{"next step (skew)", step - 6, []attempt{{mid, c67, nil, step + 1}}},
		{"two steps old: expired", step - 6, []attempt{{mid, c64, mfa.ErrInvalidCode, step - 6}}},
		{"two steps ahead", step - 6, []attempt{{mid, c68, mfa.ErrInvalidCode, step - 6}}},
		{"wrong code", step - 6, []attempt{{mid, "921301", mfa.ErrInvalidCode, step - 6}}},
		{"first second of the step", step - 6, []attempt{{0, c65, nil, step - 1}}},
		{"last second of the step", step - 6, []attempt{{29 * time.Second, c67, nil, step + 1}}},
		{"spaces as apps show them", step - 6, []attempt{{mid, "921 300", nil, step}}},
		{"surrounding white space", step - 6, []attempt{{mid, " 921300\n", nil, step}}},
		{"same code twice", step - 6, []attempt{{mid, c66, nil, step}, {mid, c66, mfa.ErrReplay, step}}},
		{"same code in the next step", step - 6, []attempt{{mid, c66, nil, step}, {30*time.Second + mid, c66, mfa.ErrReplay, step}}},
		{"older code after a newer one", step - 6, []attempt{
			{mid, c67, nil, step + 1}, {mid, c66, mfa.ErrReplay, step + 1}, {mid, c65, mfa.ErrReplay, step + 1},
		}},
		{"newer codes in order", step - 6, []attempt{
			{mid, c65, nil, step - 1}, {mid, c66, nil, step}, {mid, c67, nil, step + 1},
		}},
		{"step used at enrollment", step, []attempt{{mid, c66, mfa.ErrReplay, step}, {mid, c67, nil, step + 1}}},
		{"failed attempts change nothing", step - 1, []attempt{
			{mid, c64, mfa.ErrInvalidCode, step - 1}, {mid, c65, mfa.ErrReplay, step - 1}, {mid, c66, nil, step},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Unix(step*30, 0)
			f, clk := factor(t, Options{}, start)
			c := enrolled(t, f, tt.last)
			for i, a := range tt.attempts {
				now := start.Add(a.at)
				clk.Set(now)
				v, err := f.Verify(t.Context(), c, nil, a.code)
				wantErr(t, err, a.want, a.code, string(rfcSeed1), "GEZDGNBVGY3TQOJQ")
				if err == nil {
					if len(v.AMR) != 1 || v.AMR[0] != "otp" {
						t.Fatalf("attempt %d: amr = %q, want [otp]", i, v.AMR)
					}
					if !v.Credential.LastUsedAt.Equal(now) {
						t.Fatalf("attempt %d: last used %v, want %v", i, v.Credential.LastUsedAt, now)
					}
					c = v.Credential // the caller stores it
				}
				if got := lastStep(t, c); got != a.wantLast {
					t.Fatalf("attempt %d: last step = %d, want %d", i, got, a.wantLast)
				}
			}
		})
	}
}

func TestVerifyMalformed(t *testing.T) {
	f, _ := factor(t, Options{}, time.Unix(step*30+10, 0))
	c := enrolled(t, f, step-6)
	for _, code := range []string{
		"", " ", "92130", "9213000", "92130a", "abcdef", "+92130", "-92130", "92130\x00", "921300\x00",
		"\u0669\u0662\u0661\u0663\u0660\u0660", // Arabic-Indic digits
		"９２１３００",                               // full-width digits
		"921.30", "0x1234", "9 2 1 3 0 0 0", "\xff\xfe\xfd\xfc\xfb\xfa", strings.Repeat("9", 10000),
	} {
		_, err := f.Verify(t.Context(), c, nil, code)
		wantErr(t, err, mfa.ErrInvalidCode, string(rfcSeed1))
		if want := `totp: credential "c1": mfa: invalid code: not 6 digits`; err.Error() != want {
			t.Fatalf("code %q: err = %q, want %q", code, err, want)
		}
	}
	if got := lastStep(t, c); got != step-6 {
		t.Fatalf("last step moved to %d", got)
	}
}

func TestEightDigitsAndPeriod(t *testing.T) {
	// SHA256, 8 digits, 60 s steps; code from
	// `oathtool --totp=sha256 -d 8 -s 60s -b GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ --now "2024-05-01 12:00:00 UTC"`.
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	f, _ := factor(t, Options{Algorithm: "SHA256", Digits: 8, Period: time.Minute}, now)
	e := withSeed(t, f, "c1", rfcSeed1)
	c, err := f.FinishEnrollment(t.Context(), e.Pending, "60272138")
	wantErr(t, err, nil)
	if got, want := lastStep(t, c), now.Unix()/60; got != want {
		t.Fatalf("last step = %d, want %d", got, want)
	}
	_, err = f.Verify(t.Context(), c, nil, "602721")
	if err == nil || err.Error() != `totp: credential "c1": mfa: invalid code: not 8 digits` {
		t.Fatalf("6 digits for an 8-digit credential: %v", err)
	}
}

func TestVerifyErrorsCarryNoSecret(t *testing.T) {
	f, _ := factor(t, Options{}, time.Unix(1700000000, 0))
	c := enrolled(t, f, step-6)
	tests := []struct {
		name string
		cred func(mfa.Credential) mfa.Credential
		want error
		msg  string
	}{
		{"wrong type", func(c mfa.Credential) mfa.Credential { c.Type = mfa.TypeRecovery; return c },
			mfa.ErrWrongFactor, `totp: credential "c1" of type "recovery": mfa: credential belongs to another factor`},
		{"not json", func(c mfa.Credential) mfa.Credential { c.Data = []byte("{"); return c },
			mfa.ErrCorrupt, `totp: credential "c1": mfa: credential data unreadable: unexpected end of JSON input`},
		{"bad fields", func(c mfa.Credential) mfa.Credential {
			c.Data = []byte(`{"v":1,"seed":"x","alg":"MD5","digits":6,"period":30}`)
			return c
		},
			mfa.ErrCorrupt, `totp: credential "c1": mfa: credential data unreadable: invalid fields`},
		{"moved to another id", func(c mfa.Credential) mfa.Credential { c.ID = "c2"; return c },
			mfa.ErrCorrupt, `totp: credential "c2": open seed: mfa: credential data unreadable: secretbox: cannot decrypt: ` +
				`sealed under encryption key "k1": wrong key, wrong additional data or tampered value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.Verify(t.Context(), tt.cred(c), nil, "123456")
			wantErr(t, err, tt.want, "123456", string(rfcSeed1))
			if err.Error() != tt.msg {
				t.Fatalf("err = %q\nwant  %q", err, tt.msg)
			}
			_, err = f.BeginChallenge(t.Context(), tt.cred(c))
			if tt.name != "moved to another id" && !errors.Is(err, tt.want) {
				t.Fatalf("BeginChallenge err = %v, want %v", err, tt.want)
			}
		})
	}
}
