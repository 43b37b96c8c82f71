package mfa_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/mfa"
)

// stub is a factor that does nothing, for registry tests.
type stub struct{ typ string }

func (s stub) Type() string { return s.typ }
func (stub) BeginEnrollment(context.Context, mfa.EnrollmentRequest) (mfa.Enrollment, error) {
	return mfa.Enrollment{}, nil
}
func (stub) FinishEnrollment(context.Context, mfa.Credential, string) (mfa.Credential, error) {
	return mfa.Credential{}, nil
}
func (stub) BeginChallenge(context.Context, mfa.Credential) (mfa.Challenge, error) {
	return mfa.Challenge{}, nil
}
func (stub) Verify(context.Context, mfa.Credential, []byte, string) (mfa.Verification, error) {
	return mfa.Verification{}, nil
}

func TestRegistry(t *testing.T) {
	r, err := mfa.NewRegistry(stub{"totp"}, stub{"recovery"}, stub{"email"})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Types(); !slices.Equal(got, []string{"email", "recovery", "totp"}) {
		t.Fatalf("Types = %q", got)
	}
	if f, err := r.Get("totp"); err != nil || f.Type() != "totp" {
		t.Fatalf("Get(totp) = %v, %v", f, err)
	}
	_, err = r.Get("sms")
	if !errors.Is(err, mfa.ErrUnknownFactor) || err.Error() != `mfa: unknown factor type "sms"` {
		t.Fatalf("Get(sms) err = %v", err)
	}
	_, err = mfa.NewRegistry(stub{"totp"}, stub{"totp"})
	if err == nil || err.Error() != `mfa: factor type "totp" registered twice` {
		t.Fatalf("duplicate: %v", err)
	}
}

func TestNewCredentialID(t *testing.T) {
	id, err := mfa.NewCredentialID(bytes.NewReader(bytes.Repeat([]byte{0xff}, 16)))
	if err != nil || id != "_____________________w" {
		t.Fatalf("id = %q, %v", id, err)
	}
	_, err = mfa.NewCredentialID(bytes.NewReader(make([]byte, 15)))
	if err == nil || err.Error() != "mfa: credential id: read random: unexpected EOF" {
		t.Fatalf("short random: %v", err)
	}
}

func TestSecretsDoNotPrint(t *testing.T) {
	c := mfa.Credential{ID: "c1", UserID: "u1", Type: "totp", Data: []byte("SEALED-SEED"), CreatedAt: time.Unix(0, 0)}
	e := mfa.Enrollment{Pending: c, URI: "otpauth://totp/x?secret=SECRETB32", Secret: "SECRETB32", QRCode: []byte("PNG"), Codes: []string{"CODE1-CODE1"}}
	var logged bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logged, nil))
	log.Info("enrolled", "enrollment", e, "credential", c)
	out := []string{
		fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c),
		fmt.Sprint(e), fmt.Sprintf("%v %+v %#v %s", e, e, e, e),
		logged.String(),
	}
	for _, s := range out {
		for _, secret := range []string{"SEALED-SEED", "SECRETB32", "CODE1", "PNG"} {
			if strings.Contains(s, secret) {
				t.Fatalf("%q shows %s", s, secret)
			}
		}
	}
	if want := `mfa.Credential{ID: "c1", UserID: "u1", Type: "totp"}`; fmt.Sprint(c) != want {
		t.Fatalf("String = %s", c)
	}
	if want := `"enrollment":{"id":"c1","user_id":"u1","type":"totp"}`; !strings.Contains(logged.String(), want) {
		t.Fatalf("log = %s", logged.String())
	}
}
