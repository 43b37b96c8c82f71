package otp

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/mfa"
)

const (
	// Digits is the length of a code.
	Digits = 6
	// TTL is how long a code is valid.
	TTL = 5 * time.Minute
	// MaxAttempts is how many wrong answers one code takes before it is
	// void (the caller counts).
	MaxAttempts = 5
)

// ErrDelivery wraps a failed send: the user is told the code could not
// be sent, and the caller writes an event.
var ErrDelivery = errors.New("otp: the code could not be sent")

// Deliverer sends a code to an address (a phone number or an e-mail
// address).
type Deliverer interface {
	Deliver(ctx context.Context, address, code string, validFor time.Duration) error
}

// Options configure a Factor.
type Options struct {
	// Type is mfa.TypeSMS or mfa.TypeEmail.
	Type    string
	Deliver Deliverer
	// Key keys the code hashes (at least 32 bytes, shared by replicas);
	// nil: a random key of this process.
	Key   []byte
	Clock clock.Clock
	Rand  io.Reader
}

// Factor is the SMS or e-mail code factor.
type Factor struct {
	typ   string
	amr   string
	send  Deliverer
	key   []byte
	clock clock.Clock
	rand  io.Reader
}

var _ mfa.Factor = (*Factor)(nil)

// New checks o and returns the factor.
func New(o Options) (*Factor, error) {
	f := &Factor{typ: o.Type, send: o.Deliver, key: o.Key, clock: o.Clock, rand: o.Rand}
	switch o.Type {
	case mfa.TypeSMS:
		f.amr = mfa.AMRSMS
	case mfa.TypeEmail:
		f.amr = mfa.AMRMail
	default:
		return nil, fmt.Errorf("otp: type %q: want sms or email", o.Type)
	}
	if o.Deliver == nil {
		return nil, errors.New("otp: Deliver is required")
	}
	if f.clock == nil {
		f.clock = clock.Real{}
	}
	if f.rand == nil {
		f.rand = rand.Reader
	}
	switch {
	case len(f.key) == 0:
		f.key = make([]byte, 32)
		if _, err := io.ReadFull(f.rand, f.key); err != nil {
			return nil, fmt.Errorf("otp: random key: %w", err)
		}
	case len(f.key) < 32:
		return nil, errors.New("otp: Key must be at least 32 bytes")
	}
	return f, nil
}

// Type is mfa.TypeSMS or mfa.TypeEmail.
func (f *Factor) Type() string { return f.typ }

// data is a credential's Data.
type data struct {
	Address string `json:"address"`
	// Pending is the enrollment's code, until FinishEnrollment.
	Pending *State `json:"pending,omitempty"`
}

// State is one sent code: kept server-side until it is answered.
type State struct {
	ID      string    `json:"id"`
	Hash    []byte    `json:"hash"`
	Expires time.Time `json:"expires"`
}

func readData(c mfa.Credential) (data, error) {
	var d data
	if err := json.Unmarshal(c.Data, &d); err != nil || d.Address == "" {
		return data{}, fmt.Errorf("%w: otp credential %s", mfa.ErrCorrupt, c.ID)
	}
	return d, nil
}

// Address returns the credential's phone number or e-mail address.
func Address(c mfa.Credential) (string, error) {
	d, err := readData(c)
	return d.Address, err
}

// Masked returns the credential's address as the pages show it.
func Masked(c mfa.Credential) string {
	d, err := readData(c)
	switch {
	case err != nil:
		return "•••"
	case c.Type == mfa.TypeSMS:
		return MaskPhone(d.Address)
	default:
		return MaskEmail(d.Address)
	}
}

// Normalize validates an address for this factor.
func (f *Factor) Normalize(address string) (string, error) {
	if f.typ == mfa.TypeSMS {
		return NormalizePhone(address)
	}
	return NormalizeEmail(address)
}

func (f *Factor) random(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(f.rand, b); err != nil {
		return nil, fmt.Errorf("otp: read random: %w", err)
	}
	return b, nil
}

// newCode returns a uniform 6-digit code (rejection sampling).
func (f *Factor) newCode() (string, error) {
	const limit = 4294000000 // the largest multiple of 10^6 below 2^32
	for range 64 {
		b, err := f.random(4)
		if err != nil {
			return "", err
		}
		if v := binary.BigEndian.Uint32(b); v < limit {
			return fmt.Sprintf("%06d", v%1000000), nil
		}
	}
	return "", errors.New("otp: random source is not random")
}

func (f *Factor) hash(credID, stateID, code string) []byte {
	m := hmac.New(sha256.New, f.key)
	m.Write([]byte("latchkey-otp\x00" + f.typ + "\x00" + credID + "\x00" + stateID + "\x00" + code))
	return m.Sum(nil)
}

// issue makes a code for credential id and sends it to address.
func (f *Factor) issue(ctx context.Context, credID, address string) (State, error) {
	code, err := f.newCode()
	if err != nil {
		return State{}, err
	}
	idb, err := f.random(12)
	if err != nil {
		return State{}, err
	}
	st := State{ID: base64.RawURLEncoding.EncodeToString(idb), Expires: f.clock.Now().Add(TTL).UTC()}
	st.Hash = f.hash(credID, st.ID, code)
	if err := f.send.Deliver(ctx, address, code, TTL); err != nil {
		return State{}, fmt.Errorf("%w: %w", ErrDelivery, err)
	}
	return st, nil
}

// check compares a response to a state.
func (f *Factor) check(credID string, st State, response string) error {
	response = strings.Join(strings.Fields(response), "")
	if len(response) != Digits || strings.Trim(response, "0123456789") != "" {
		return mfa.ErrInvalidCode
	}
	if !f.clock.Now().Before(st.Expires) {
		return mfa.ErrInvalidCode
	}
	if !hmac.Equal(f.hash(credID, st.ID, response), st.Hash) {
		return mfa.ErrInvalidCode
	}
	return nil
}

// BeginEnrollment validates req.Address, sends it a code and returns the
// pending credential (address and hashed code). Errors: ErrPhoneFormat
// or ErrEmailFormat for a bad address, ErrDelivery when sending failed.
func (f *Factor) BeginEnrollment(ctx context.Context, req mfa.EnrollmentRequest) (mfa.Enrollment, error) {
	addr, err := f.Normalize(req.Address)
	if err != nil {
		return mfa.Enrollment{}, err
	}
	id, err := mfa.NewCredentialID(f.rand)
	if err != nil {
		return mfa.Enrollment{}, err
	}
	st, err := f.issue(ctx, id, addr)
	if err != nil {
		return mfa.Enrollment{}, err
	}
	raw, err := json.Marshal(data{Address: addr, Pending: &st})
	if err != nil {
		return mfa.Enrollment{}, fmt.Errorf("otp: encode credential: %w", err)
	}
	label := req.Label
	if label == "" {
		label = Masked(mfa.Credential{Type: f.typ, Data: raw})
	}
	return mfa.Enrollment{Pending: mfa.Credential{ID: id, UserID: req.UserID, Type: f.typ, Label: label, Data: raw, CreatedAt: f.clock.Now().UTC()}}, nil
}

// FinishEnrollment checks the code sent by BeginEnrollment and returns
// the credential to store (without the code).
func (f *Factor) FinishEnrollment(_ context.Context, pending mfa.Credential, response string) (mfa.Credential, error) {
	if pending.Type != f.typ {
		return mfa.Credential{}, mfa.ErrWrongFactor
	}
	d, err := readData(pending)
	if err != nil {
		return mfa.Credential{}, err
	}
	if d.Pending == nil {
		return mfa.Credential{}, fmt.Errorf("%w: enrollment already finished", mfa.ErrInvalidCode)
	}
	if err := f.check(pending.ID, *d.Pending, response); err != nil {
		return mfa.Credential{}, err
	}
	d.Pending = nil
	raw, err := json.Marshal(d)
	if err != nil {
		return mfa.Credential{}, fmt.Errorf("otp: encode credential: %w", err)
	}
	pending.Data = raw
	pending.LastUsedAt = f.clock.Now().UTC()
	return pending, nil
}

// BeginChallenge sends a new code to cred's address; State is the JSON
// of the sent code's State.
func (f *Factor) BeginChallenge(ctx context.Context, cred mfa.Credential) (mfa.Challenge, error) {
	if cred.Type != f.typ {
		return mfa.Challenge{}, mfa.ErrWrongFactor
	}
	d, err := readData(cred)
	if err != nil {
		return mfa.Challenge{}, err
	}
	st, err := f.issue(ctx, cred.ID, d.Address)
	if err != nil {
		return mfa.Challenge{}, err
	}
	raw, err := json.Marshal(st)
	if err != nil {
		return mfa.Challenge{}, fmt.Errorf("otp: encode state: %w", err)
	}
	return mfa.Challenge{State: raw}, nil
}

// Verify checks response against the code of state.
func (f *Factor) Verify(_ context.Context, cred mfa.Credential, state []byte, response string) (mfa.Verification, error) {
	if cred.Type != f.typ {
		return mfa.Verification{}, mfa.ErrWrongFactor
	}
	var st State
	if len(state) == 0 || json.Unmarshal(state, &st) != nil {
		return mfa.Verification{}, mfa.ErrInvalidCode
	}
	if err := f.check(cred.ID, st, response); err != nil {
		return mfa.Verification{}, err
	}
	cred.LastUsedAt = f.clock.Now().UTC()
	return mfa.Verification{Credential: cred, AMR: []string{f.amr}}, nil
}
