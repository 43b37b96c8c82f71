package webauthn_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/mfa"
	"github.com/latchkeyid/latchkey/mfa/webauthn"
	"github.com/latchkeyid/latchkey/mfa/webauthn/webauthntest"
)

const origin = "https://id.example.com"

func newFactor(t *testing.T, mod func(*webauthn.Options)) *webauthn.Factor {
	t.Helper()
	o := webauthn.Options{RPID: "id.example.com", Origins: []string{origin}, Clock: clock.NewFake(time.Unix(1767225600, 0))}
	if mod != nil {
		mod(&o)
	}
	f, err := webauthn.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

var alice = webauthn.User{ID: "u-alice", Name: "alice"}

// register makes a credential for alice with a.
func register(t *testing.T, f *webauthn.Factor, a *webauthntest.Authenticator) mfa.Credential {
	t.Helper()
	ctx := context.Background()
	c, err := f.BeginRegistration(ctx, alice, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.Create(c.Options)
	if err != nil {
		t.Fatal(err)
	}
	v, err := f.FinishRegistration(ctx, alice, c.State, "laptop", resp, nil)
	if err != nil {
		t.Fatalf("registration: %v", err)
	}
	if want := []string{"hwk", "user", "mfa"}; a.UV && !a.BackupEligible && !slices.Equal(v.AMR, want) {
		t.Errorf("registration amr %q, want %q", v.AMR, want)
	}
	return v.Credential
}

func TestRegisterAndAssert(t *testing.T) {
	ctx := context.Background()
	f := newFactor(t, nil)
	a := webauthntest.New(origin)
	cred := register(t, f, a)
	if cred.UserID != "u-alice" || cred.Type != mfa.TypeWebAuthn || cred.Label != "laptop" || cred.ID == "" || !webauthn.Discoverable(cred) {
		t.Fatalf("credential %v discoverable=%v", cred, webauthn.Discoverable(cred))
	}
	if !webauthn.Owns(cred, a.Creds[0].ID) || webauthn.Owns(cred, []byte("other")) {
		t.Fatal("Owns does not match the credential id")
	}

	// Second factor: alice is known.
	c, err := f.BeginLogin(ctx, "u-alice", []mfa.Credential{cred})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(c.Options), `"allowCredentials"`) || strings.Contains(string(c.Options), "challenge\":\"\"") {
		t.Fatalf("request options %s", c.Options)
	}
	resp, err := a.Get(c.Options)
	if err != nil {
		t.Fatal(err)
	}
	v, err := f.Verify(ctx, cred, c.State, resp)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"hwk", "user", "mfa"}; !slices.Equal(v.AMR, want) {
		t.Errorf("amr %q, want %q", v.AMR, want)
	}
	if !v.Credential.LastUsedAt.Equal(time.Unix(1767225600, 0)) {
		t.Errorf("LastUsedAt %v", v.Credential.LastUsedAt)
	}

	// Passwordless: the user handle names alice.
	p, err := f.BeginPasskeyLogin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = a.Get(p.Options)
	if err != nil {
		t.Fatal(err)
	}
	as, err := webauthn.ParseAssertion(resp)
	if err != nil || as.UserID != "u-alice" || !webauthn.Owns(cred, as.CredentialID) {
		t.Fatalf("assertion %+v %v", as, err)
	}
	if _, err := f.Verify(ctx, v.Credential, p.State, resp); err != nil {
		t.Fatal(err)
	}
}

func TestAMR(t *testing.T) {
	for _, tc := range []struct {
		name   string
		uv, be bool
		want   []string
	}{
		{"security key without PIN", false, false, []string{"hwk", "user"}},
		{"security key with PIN", true, false, []string{"hwk", "user", "mfa"}},
		{"synced passkey", true, true, []string{"swk", "user", "mfa"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFactor(t, nil)
			a := webauthntest.New(origin)
			a.UV, a.BackupEligible = tc.uv, tc.be
			cred := register(t, f, a)
			c, _ := f.BeginLogin(ctx, "u-alice", []mfa.Credential{cred})
			resp, _ := a.Get(c.Options)
			v, err := f.Verify(ctx, cred, c.State, resp)
			if err != nil || !slices.Equal(v.AMR, tc.want) {
				t.Fatalf("amr %q %v, want %q", v.AMR, err, tc.want)
			}
			if acr := mfa.ACRFor(mfa.AMR([]mfa.Step{{AMR: v.AMR}})); tc.uv && acr != mfa.ACRPhr {
				t.Errorf("a passkey with user verification alone gives acr %q", acr)
			}
		})
	}
}

// TestBadAssertions: every response that does not belong to the ceremony
// and credential is refused.
func TestBadAssertions(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		// bend changes the authenticator or ceremony before the
		// assertion; it returns the state to verify with.
		bend    func(a *webauthntest.Authenticator, f *webauthn.Factor, cred mfa.Credential, st []byte) []byte
		want    error
		message string
	}{
		{"another challenge", func(a *webauthntest.Authenticator, f *webauthn.Factor, cred mfa.Credential, _ []byte) []byte {
			other, _ := f.BeginLogin(ctx, "u-alice", []mfa.Credential{cred})
			return other.State
		}, mfa.ErrInvalidCode, "Error validating challenge"},
		{"another origin", func(a *webauthntest.Authenticator, _ *webauthn.Factor, _ mfa.Credential, st []byte) []byte {
			a.Origin = "https://evil.example.net"
			return st
		}, mfa.ErrInvalidCode, "Error validating origin"},
		{"another RP ID", func(a *webauthntest.Authenticator, _ *webauthn.Factor, _ mfa.Credential, st []byte) []byte {
			a.RPID = "evil.example.net"
			return st
		}, mfa.ErrInvalidCode, "RP Hash mismatch"},
		{"counter regression", func(a *webauthntest.Authenticator, _ *webauthn.Factor, _ mfa.Credential, st []byte) []byte {
			a.Counter = 3 // the stored counter is 5; this assertion says 4
			return st
		}, webauthn.ErrSignCount, "signature counter did not increase (stored 5, presented 4)"},
		{"registration state", func(a *webauthntest.Authenticator, f *webauthn.Factor, _ mfa.Credential, _ []byte) []byte {
			c, _ := f.BeginRegistration(ctx, alice, nil)
			return c.State
		}, webauthn.ErrCeremony, "no matching ceremony"},
		{"no state", func(*webauthntest.Authenticator, *webauthn.Factor, mfa.Credential, []byte) []byte { return nil }, webauthn.ErrCeremony, "no matching ceremony"},
		{"begun for another user", func(a *webauthntest.Authenticator, f *webauthn.Factor, cred mfa.Credential, _ []byte) []byte {
			bob := cred
			bob.UserID = "u-bob"
			c, _ := f.BeginLogin(ctx, "u-bob", []mfa.Credential{bob})
			return c.State
		}, webauthn.ErrCeremony, "begun for another user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFactor(t, nil)
			a := webauthntest.New(origin)
			cred := register(t, f, a)
			a.Counter = 4
			c, _ := f.BeginLogin(ctx, "u-alice", []mfa.Credential{cred})
			resp, _ := a.Get(c.Options)
			v, err := f.Verify(ctx, cred, c.State, resp) // counter now 5
			if err != nil {
				t.Fatal(err)
			}
			cred = v.Credential
			c, _ = f.BeginLogin(ctx, "u-alice", []mfa.Credential{cred})
			st := tc.bend(a, f, cred, c.State)
			resp, err = a.Get(c.Options)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.Verify(ctx, cred, st, resp)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("err = %v, want %v containing %q", err, tc.want, tc.message)
			}
		})
	}
}

// TestReplay: the same assertion twice: the counter refuses it (the
// broker also takes the ceremony state away after one try).
func TestReplay(t *testing.T) {
	ctx := context.Background()
	f := newFactor(t, nil)
	a := webauthntest.New(origin)
	cred := register(t, f, a)
	c, _ := f.BeginLogin(ctx, "u-alice", []mfa.Credential{cred})
	resp, _ := a.Get(c.Options)
	v, err := f.Verify(ctx, cred, c.State, resp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Verify(ctx, v.Credential, c.State, resp); !errors.Is(err, webauthn.ErrSignCount) {
		t.Fatalf("replay: %v", err)
	}
}

func TestBadRegistrations(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		opts    func(*webauthn.Options)
		bend    func(a *webauthntest.Authenticator)
		user    webauthn.User
		want    error
		message string
	}{
		{"another origin", nil, func(a *webauthntest.Authenticator) { a.Origin = "https://evil.example.net" }, alice, mfa.ErrInvalidCode, "Error validating origin"},
		{"another RP ID", nil, func(a *webauthntest.Authenticator) { a.RPID = "evil.example.net" }, alice, mfa.ErrInvalidCode, "RP Hash mismatch"},
		{"another user's ceremony", nil, nil, webauthn.User{ID: "u-bob", Name: "bob"}, webauthn.ErrCeremony, "begun for another user"},
		{"AAGUID not allowed", func(o *webauthn.Options) { o.AllowedAAGUIDs = []string{"ee882879-721c-4913-9775-3dfcce97072a"} }, nil, alice, webauthn.ErrAAGUID, "authenticator model not allowed"},
		{"user verification required", func(o *webauthn.Options) { o.UserVerification = webauthn.Required }, func(a *webauthntest.Authenticator) { a.UV = false }, alice, mfa.ErrInvalidCode, "User verification required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFactor(t, tc.opts)
			a := webauthntest.New(origin)
			c, err := f.BeginRegistration(ctx, alice, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.bend != nil {
				tc.bend(a)
			}
			resp, err := a.Create(c.Options)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.FinishRegistration(ctx, tc.user, c.State, "x", resp, nil)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("err = %v, want %v containing %q", err, tc.want, tc.message)
			}
		})
	}

	// The same authenticator twice.
	f := newFactor(t, nil)
	a := webauthntest.New(origin)
	cred := register(t, f, a)
	c, _ := f.BeginRegistration(ctx, alice, []mfa.Credential{cred})
	if !strings.Contains(string(c.Options), `"excludeCredentials"`) {
		t.Errorf("options do not exclude the registered credential: %s", c.Options)
	}
	resp, _ := a.Create(c.Options)
	a.Creds[1].ID = a.Creds[0].ID
	resp2, _ := a.Assert(a.Creds[0], "id.example.com", "x") // not a registration at all
	if _, err := f.FinishRegistration(ctx, alice, c.State, "x", resp2, []mfa.Credential{cred}); !errors.Is(err, mfa.ErrInvalidCode) {
		t.Errorf("an assertion as registration: %v", err)
	}
	if _, err := f.FinishRegistration(ctx, alice, c.State, "x", resp, []mfa.Credential{cred}); err != nil {
		t.Errorf("a second authenticator: %v", err)
	}
}

func TestOptions(t *testing.T) {
	_, err := webauthn.New(webauthn.Options{RPID: "127.0.0.1", Origins: []string{"http://127.0.0.1:5556"}, UserVerification: "always", ResidentKey: "x", Attestation: "enterprise", AllowedAAGUIDs: []string{"nope"}})
	want := []string{
		`rpID: "127.0.0.1" is an IP address; WebAuthn needs a domain name`,
		`origins[0]: "http://127.0.0.1:5556": browsers allow WebAuthn over http only on localhost`,
		`userVerification: "always" is not one of required, preferred, discouraged`,
		`residentKey: "x" is not one of required, preferred, discouraged`,
		`attestation: "enterprise" is not one of none, indirect, direct`,
		`allowedAAGUIDs[0]: "nope" is not a UUID`,
	}
	if err == nil || err.Error() != "webauthn: "+strings.Join(want, "\n") {
		t.Fatalf("err = %v", err)
	}
	if _, err := webauthn.New(webauthn.Options{RPID: "localhost", Origins: []string{"http://localhost:5556"}}); err != nil {
		t.Fatal(err)
	}
}

// FuzzParseAssertion: any posted text is an error or an assertion, never
// a panic.
func FuzzParseAssertion(f *testing.F) {
	f.Add(`{"id":"AA","rawId":"AA","type":"public-key","response":{}}`)
	f.Add(`{}`)
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = webauthn.ParseAssertion(s)
	})
}
