package otp_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/mfa"
	"github.com/latchkeyid/latchkey/mfa/otp"
)

func TestNormalizePhone(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"+4915112345678", "+4915112345678", true},
		{" +49 (151) 123-456.78 ", "+4915112345678", true},
		{"+1 415 555 2671", "+14155552671", true},
		{"+12", "+12", true},
		{"+123456789012345", "+123456789012345", true}, // 15 digits
		{"+1234567890123456", "", false},               // 16 digits
		{"+1", "", false},                              // too short
		{"004915112345678", "", false},                 // no +
		{"015112345678", "", false},                    // national
		{"+0491511234", "", false},                     // country code 0
		{"+49 151 1234x5", "", false},                  // letter
		{"+49+151", "", false},                         // second +
		{"+４９１５１", "", false},                          // full-width digits
		{"", "", false},
		{strings.Repeat("1", 80), "", false},
	}
	for _, tc := range tests {
		got, err := otp.NormalizePhone(tc.in)
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("NormalizePhone(%q) = %q, %v; want %q ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, otp.ErrPhoneFormat) {
			t.Errorf("NormalizePhone(%q) error %v", tc.in, err)
		}
	}
}

func TestNormalizeEmail(t *testing.T) {
	tests := []struct{ in, want string }{
		{"alice@Example.ORG", "alice@example.org"},
		{" Alice@example.org ", "Alice@example.org"},
		{"Alice <alice@example.org>", ""},
		{"alice@localhost", ""},
		{"alice", ""},
		{"@example.org", ""},
		{"a@b.c\r\nBcc: x@y.z", ""},
	}
	for _, tc := range tests {
		got, err := otp.NormalizeEmail(tc.in)
		if got != tc.want || (tc.want == "") != errors.Is(err, otp.ErrEmailFormat) {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestMask(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"+4915112345678", "+49•••••••••78"},
		{"+14155552671", "+14•••••••71"},
		{"+12345", "+12•45"},
		{"+123", "+•••"},
	} {
		if got := otp.MaskPhone(tc.in); got != tc.want {
			t.Errorf("MaskPhone(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"alice@example.org", "a••••@example.org"},
		{"a@example.org", "a•@example.org"},
		{"élodie@example.fr", "é•••••@example.fr"},
	} {
		if got := otp.MaskEmail(tc.in); got != tc.want {
			t.Errorf("MaskEmail(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// outbox records what would be sent (the real senders are tested in
// internal/notify and through mailpit and the Twilio-format server in
// web/).
type outbox struct {
	to, code string
	fail     error
}

func (o *outbox) Deliver(_ context.Context, to, code string, validFor time.Duration) error {
	if validFor != 5*time.Minute {
		return errors.New("wrong validity")
	}
	o.to, o.code = to, code
	return o.fail
}

func newFactor(t *testing.T, typ string, clk clock.Clock, out *outbox) *otp.Factor {
	t.Helper()
	f, err := otp.New(otp.Options{Type: typ, Deliver: out, Key: bytes.Repeat([]byte{7}, 32), Clock: clk, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func wrong(code string) string {
	if code == "000000" {
		return "000001"
	}
	return "000000"
}

func TestEnrollAndVerify(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	out := &outbox{}
	f := newFactor(t, mfa.TypeSMS, clk, out)

	if _, err := f.BeginEnrollment(ctx, mfa.EnrollmentRequest{UserID: "u1", Address: "0151"}); !errors.Is(err, otp.ErrPhoneFormat) {
		t.Fatalf("bad number: %v", err)
	}
	e, err := f.BeginEnrollment(ctx, mfa.EnrollmentRequest{UserID: "u1", Address: "+49 151 12345678"})
	if err != nil {
		t.Fatal(err)
	}
	if out.to != "+4915112345678" || len(out.code) != 6 || strings.Trim(out.code, "0123456789") != "" {
		t.Fatalf("sent %q to %q", out.code, out.to)
	}
	if bytes.Contains(e.Pending.Data, []byte(out.code)) || e.Pending.Label != "+49•••••••••78" {
		t.Fatalf("pending data holds the code, or label %q", e.Pending.Label)
	}
	if _, err := f.FinishEnrollment(ctx, e.Pending, wrong(out.code)); !errors.Is(err, mfa.ErrInvalidCode) {
		t.Fatalf("wrong code: %v", err)
	}
	cred, err := f.FinishEnrollment(ctx, e.Pending, " "+out.code[:3]+" "+out.code[3:])
	if err != nil {
		t.Fatal(err)
	}
	if addr, _ := otp.Address(cred); addr != "+4915112345678" || bytes.Contains(cred.Data, []byte("pending")) {
		t.Fatalf("credential %s", cred.Data)
	}
	if _, err := f.FinishEnrollment(ctx, cred, out.code); !errors.Is(err, mfa.ErrInvalidCode) {
		t.Fatalf("finished twice: %v", err)
	}

	ch, err := f.BeginChallenge(ctx, cred)
	if err != nil {
		t.Fatal(err)
	}
	code := out.code
	tests := []struct {
		name    string
		advance time.Duration
		state   []byte
		code    string
		wantErr error
	}{
		{name: "wrong", state: ch.State, code: wrong(code), wantErr: mfa.ErrInvalidCode},
		{name: "too short", state: ch.State, code: code[:5], wantErr: mfa.ErrInvalidCode},
		{name: "letters", state: ch.State, code: "12345a", wantErr: mfa.ErrInvalidCode},
		{name: "no state", code: code, wantErr: mfa.ErrInvalidCode},
		{name: "right", state: ch.State, code: code},
		{name: "at 4m59s", advance: 4*time.Minute + 59*time.Second, state: ch.State, code: code},
		{name: "expired at 5m", advance: time.Second, state: ch.State, code: code, wantErr: mfa.ErrInvalidCode},
	}
	for _, tc := range tests {
		clk.Advance(tc.advance)
		v, err := f.Verify(ctx, cred, tc.state, tc.code)
		if !errors.Is(err, tc.wantErr) || (err == nil && (len(v.AMR) != 1 || v.AMR[0] != "sms" || v.Credential.LastUsedAt.IsZero())) {
			t.Errorf("%s: %+v, %v; want %v", tc.name, v, err, tc.wantErr)
		}
	}

	// A state of another credential does not verify this one.
	other := cred
	other.ID = "other"
	if _, err := f.Verify(ctx, other, ch.State, code); !errors.Is(err, mfa.ErrInvalidCode) {
		t.Errorf("other credential: %v", err)
	}
	// The e-mail factor does not take SMS credentials.
	ef := newFactor(t, mfa.TypeEmail, clk, out)
	if _, err := ef.Verify(ctx, cred, ch.State, code); !errors.Is(err, mfa.ErrWrongFactor) {
		t.Errorf("wrong factor: %v", err)
	}
}

func TestDeliveryFailure(t *testing.T) {
	out := &outbox{fail: errors.New("smtp: 451")}
	f := newFactor(t, mfa.TypeEmail, clock.Real{}, out)
	_, err := f.BeginEnrollment(context.Background(), mfa.EnrollmentRequest{UserID: "u1", Address: "alice@example.org"})
	if !errors.Is(err, otp.ErrDelivery) || strings.Contains(err.Error(), out.code) {
		t.Fatalf("err = %v", err)
	}
}

// Codes are uniform over 000000-999999: every digit position sees every
// digit (a smoke test of the sampling, not a statistical proof).
func TestCodesUseAllDigits(t *testing.T) {
	out := &outbox{}
	f := newFactor(t, mfa.TypeSMS, clock.Real{}, out)
	cred := mfa.Credential{ID: "c", Type: mfa.TypeSMS, Data: []byte(`{"address":"+4915112345678"}`)}
	seen := [6][10]bool{}
	for range 400 {
		if _, err := f.BeginChallenge(context.Background(), cred); err != nil {
			t.Fatal(err)
		}
		for i, c := range out.code {
			seen[i][c-'0'] = true
		}
	}
	for i := range seen {
		for d, ok := range seen[i] {
			if !ok {
				t.Errorf("digit %d never at position %d", d, i)
			}
		}
	}
}

func TestRandomSourceInjected(t *testing.T) {
	out := &outbox{}
	zero := bytes.NewReader(make([]byte, 1024))
	f, err := otp.New(otp.Options{Type: mfa.TypeSMS, Deliver: out, Key: bytes.Repeat([]byte{1}, 32), Rand: zero})
	if err != nil {
		t.Fatal(err)
	}
	cred := mfa.Credential{ID: "c", Type: mfa.TypeSMS, Data: []byte(`{"address":"+4915112345678"}`)}
	if _, err := f.BeginChallenge(context.Background(), cred); err != nil || out.code != "000000" {
		t.Fatalf("code %q from an all-zero source, %v", out.code, err)
	}
}

func TestDurationWords(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{5 * time.Minute, "5 minutes"}, {time.Minute, "1 minute"}, {time.Hour, "1 hour"}, {24 * time.Hour, "24 hours"}, {90 * time.Minute, "90 minutes"}} {
		if got := otp.DurationWords(tc.d); got != tc.want {
			t.Errorf("DurationWords(%s) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
