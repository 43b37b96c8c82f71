package totp

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	pqtotp "github.com/pquerna/otp/totp"
	"github.com/skip2/go-qrcode"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/mfa"
)

// AMR is the amr value a TOTP verification adds.
const AMR = mfa.AMROTP

// Defaults of Options.
const (
	DefaultAlgorithm = "SHA1"
	DefaultDigits    = 6
	DefaultPeriod    = 30 * time.Second
	DefaultQRSize    = 256
)

// skew is how many time steps either side of the current one are accepted.
const skew = 1

// Sealer encrypts the seed at rest; *secretbox.Keyring satisfies it. The
// additional data is the credential id.
type Sealer interface {
	Seal(plaintext, additionalData []byte) (string, error)
	Open(sealed string, additionalData []byte) ([]byte, error)
}

// Options configure a Factor. Issuer and Sealer are required.
type Options struct {
	// Issuer names the service in authenticator apps; no ':'.
	Issuer string
	// Algorithm is the HMAC hash: "SHA1" (default; the one every app
	// supports), "SHA256" or "SHA512".
	Algorithm string
	// Digits is 6 (default) or 8.
	Digits int
	// Period is the time step, a whole number of seconds; default 30s.
	Period time.Duration
	// QRSize is the QR code's width and height in pixels; default 256.
	QRSize int
	Sealer Sealer
	// Clock defaults to the system clock; Rand (seeds and credential
	// ids) to crypto/rand.
	Clock clock.Clock
	Rand  io.Reader
}

// Factor is the TOTP factor. It is safe for concurrent use.
type Factor struct {
	issuer string
	params params
	qrSize int
	sealer Sealer
	clock  clock.Clock
	rand   io.Reader
}

var _ mfa.Factor = (*Factor)(nil)

// params are the code parameters, kept per credential.
type params struct {
	alg    string
	digits int
	period int64 // seconds
}

// New validates o and returns the factor; every problem is reported.
func New(o Options) (*Factor, error) {
	f := &Factor{
		issuer: o.Issuer, qrSize: o.QRSize, sealer: o.Sealer, clock: o.Clock, rand: o.Rand,
		params: params{alg: o.Algorithm, digits: o.Digits, period: int64(o.Period / time.Second)},
	}
	if f.params.alg == "" {
		f.params.alg = DefaultAlgorithm
	}
	if f.params.digits == 0 {
		f.params.digits = DefaultDigits
	}
	if o.Period == 0 {
		f.params.period = int64(DefaultPeriod / time.Second)
	}
	if f.qrSize == 0 {
		f.qrSize = DefaultQRSize
	}
	if f.clock == nil {
		f.clock = clock.Real{}
	}
	if f.rand == nil {
		f.rand = rand.Reader
	}
	var errs []error
	if o.Issuer == "" {
		errs = append(errs, errors.New("issuer: required"))
	} else if strings.Contains(o.Issuer, ":") {
		errs = append(errs, errors.New("issuer: must not contain ':'"))
	}
	if _, ok := algorithm(f.params.alg); !ok {
		errs = append(errs, fmt.Errorf("algorithm: %q is not one of SHA1, SHA256, SHA512", o.Algorithm))
	}
	if f.params.digits != 6 && f.params.digits != 8 {
		errs = append(errs, fmt.Errorf("digits: %d is not 6 or 8", o.Digits))
	}
	if o.Period != 0 && (o.Period < time.Second || o.Period%time.Second != 0) {
		errs = append(errs, fmt.Errorf("period: %s is not a whole number of seconds >= 1s", o.Period))
	}
	if f.qrSize < 0 {
		errs = append(errs, fmt.Errorf("qrSize: %d is negative", o.QRSize))
	}
	if o.Sealer == nil {
		errs = append(errs, errors.New("sealer: required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("totp: %w", err)
	}
	return f, nil
}

// algorithm maps a configured name to the library's value.
func algorithm(name string) (otp.Algorithm, bool) {
	switch name {
	case "SHA1":
		return otp.AlgorithmSHA1, true
	case "SHA256":
		return otp.AlgorithmSHA256, true
	case "SHA512":
		return otp.AlgorithmSHA512, true
	}
	return 0, false
}

// seedSize is the HMAC output length of the algorithm, the seed length
// RFC 6238's reference uses (20 bytes for SHA1: 160 bits).
func seedSize(alg string) int {
	switch alg {
	case "SHA256":
		return sha256.Size
	case "SHA512":
		return sha512.Size
	}
	return sha1.Size
}

// Type returns mfa.TypeTOTP.
func (f *Factor) Type() string { return mfa.TypeTOTP }

// state is the credential's Data.
type state struct {
	V        int    `json:"v"`
	Seed     string `json:"seed"` // sealed with the credential id
	Alg      string `json:"alg"`
	Digits   int    `json:"digits"`
	Period   int64  `json:"period"`
	LastStep int64  `json:"last_step"` // -1: pending, no code accepted yet
}

const pendingStep = -1

func (s state) params() params { return params{alg: s.Alg, digits: s.Digits, period: s.Period} }

// decode reads and checks a TOTP credential's Data.
func decode(c mfa.Credential) (state, error) {
	if c.Type != mfa.TypeTOTP {
		return state{}, fmt.Errorf("totp: credential %q of type %q: %w", c.ID, c.Type, mfa.ErrWrongFactor)
	}
	var s state
	if err := json.Unmarshal(c.Data, &s); err != nil {
		return state{}, fmt.Errorf("totp: credential %q: %w: %v", c.ID, mfa.ErrCorrupt, err)
	}
	_, algOK := algorithm(s.Alg)
	if s.V != 1 || s.Seed == "" || !algOK || (s.Digits != 6 && s.Digits != 8) || s.Period < 1 || s.LastStep < pendingStep {
		return state{}, fmt.Errorf("totp: credential %q: %w: invalid fields", c.ID, mfa.ErrCorrupt)
	}
	return s, nil
}

func encode(id string, s state) ([]byte, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("totp: credential %q: encode: %w", id, err)
	}
	return b, nil
}

// BeginEnrollment draws a seed, seals it and returns the pending
// credential with the otpauth:// URI, the base32 seed and the QR code PNG.
// req.UserID and req.AccountName are required; AccountName must not
// contain ':'.
func (f *Factor) BeginEnrollment(_ context.Context, req mfa.EnrollmentRequest) (mfa.Enrollment, error) {
	if req.UserID == "" {
		return mfa.Enrollment{}, errors.New("totp: enroll: user id required")
	}
	if req.AccountName == "" || strings.Contains(req.AccountName, ":") {
		return mfa.Enrollment{}, errors.New("totp: enroll: account name required, without ':'")
	}
	id, err := mfa.NewCredentialID(f.rand)
	if err != nil {
		return mfa.Enrollment{}, fmt.Errorf("totp: enroll: %w", err)
	}
	seed := make([]byte, seedSize(f.params.alg))
	defer clear(seed)
	if _, err := io.ReadFull(f.rand, seed); err != nil {
		return mfa.Enrollment{}, fmt.Errorf("totp: enroll: read seed: %w", err)
	}
	return f.enroll(id, req, seed)
}

// enroll builds the pending credential for a given id and seed.
func (f *Factor) enroll(id string, req mfa.EnrollmentRequest, seed []byte) (mfa.Enrollment, error) {
	sealed, err := f.sealer.Seal(seed, []byte(id))
	if err != nil {
		return mfa.Enrollment{}, fmt.Errorf("totp: enroll: seal seed: %w", err)
	}
	alg, _ := algorithm(f.params.alg)
	key, err := pqtotp.Generate(pqtotp.GenerateOpts{
		Issuer: f.issuer, AccountName: req.AccountName, Period: uint(f.params.period),
		Secret: seed, Digits: otp.Digits(f.params.digits), Algorithm: alg,
	})
	if err != nil {
		return mfa.Enrollment{}, fmt.Errorf("totp: enroll: otpauth uri: %w", err)
	}
	png, err := qrcode.Encode(key.URL(), qrcode.Medium, f.qrSize)
	if err != nil {
		return mfa.Enrollment{}, fmt.Errorf("totp: enroll: qr code: %w", err)
	}
	data, err := encode(id, state{V: 1, Seed: sealed, Alg: f.params.alg, Digits: f.params.digits, Period: f.params.period, LastStep: pendingStep})
	if err != nil {
		return mfa.Enrollment{}, err
	}
	return mfa.Enrollment{
		Pending: mfa.Credential{
			ID: id, UserID: req.UserID, Type: mfa.TypeTOTP, Label: req.Label,
			Data: data, CreatedAt: f.clock.Now(),
		},
		URI: key.URL(), Secret: key.Secret(), QRCode: png,
	}, nil
}

// FinishEnrollment confirms a pending credential with a first valid code
// and returns it to store, that code's step remembered.
func (f *Factor) FinishEnrollment(_ context.Context, pending mfa.Credential, code string) (mfa.Credential, error) {
	s, err := decode(pending)
	if err != nil {
		return mfa.Credential{}, err
	}
	if s.LastStep != pendingStep {
		return mfa.Credential{}, fmt.Errorf("totp: credential %q is already confirmed", pending.ID)
	}
	now := f.clock.Now()
	step, err := f.check(pending.ID, s, code, now)
	if err != nil {
		return mfa.Credential{}, err
	}
	s.LastStep = step
	if pending.Data, err = encode(pending.ID, s); err != nil {
		return mfa.Credential{}, err
	}
	pending.CreatedAt, pending.LastUsedAt = now, now
	return pending, nil
}

// BeginChallenge needs nothing: the user reads the code from the app.
func (f *Factor) BeginChallenge(_ context.Context, cred mfa.Credential) (mfa.Challenge, error) {
	if _, err := decode(cred); err != nil {
		return mfa.Challenge{}, err
	}
	return mfa.Challenge{}, nil
}

// Verify accepts code for cred's current time step ±1 if that step is
// after the last step cred accepted, and returns cred with the new last
// step. Errors: mfa.ErrInvalidCode (wrong, expired, malformed),
// mfa.ErrReplay, mfa.ErrNotEnrolled (a pending credential),
// mfa.ErrWrongFactor, mfa.ErrCorrupt. state is ignored.
func (f *Factor) Verify(_ context.Context, cred mfa.Credential, _ []byte, code string) (mfa.Verification, error) {
	s, err := decode(cred)
	if err != nil {
		return mfa.Verification{}, err
	}
	if s.LastStep == pendingStep {
		return mfa.Verification{}, fmt.Errorf("totp: credential %q is not confirmed: %w", cred.ID, mfa.ErrNotEnrolled)
	}
	now := f.clock.Now()
	step, err := f.check(cred.ID, s, code, now)
	if err != nil {
		return mfa.Verification{}, err
	}
	s.LastStep = step
	if cred.Data, err = encode(cred.ID, s); err != nil {
		return mfa.Verification{}, err
	}
	cred.LastUsedAt = now
	return mfa.Verification{Credential: cred, AMR: []string{AMR}}, nil
}

// normalise drops spaces (apps show "123 456") and checks that the code is
// exactly digits ASCII digits.
func normalise(code string, digits int) (string, bool) {
	code = strings.Join(strings.Fields(code), "")
	if len(code) != digits {
		return "", false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return "", false
		}
	}
	return code, true
}

// check returns the time step code is valid for: the smallest step in
// now's step ±skew after s.LastStep whose code equals code. Every
// candidate is computed and compared in constant time.
func (f *Factor) check(id string, s state, code string, now time.Time) (int64, error) {
	p := s.params()
	code, ok := normalise(code, p.digits)
	if !ok {
		return 0, fmt.Errorf("totp: credential %q: %w: not %d digits", id, mfa.ErrInvalidCode, p.digits)
	}
	if now.Unix() < 0 {
		return 0, fmt.Errorf("totp: credential %q: clock before 1970", id)
	}
	seed, err := f.sealer.Open(s.Seed, []byte(id))
	if err != nil {
		return 0, fmt.Errorf("totp: credential %q: open seed: %w: %w", id, mfa.ErrCorrupt, err)
	}
	secret := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(seed)
	clear(seed)
	alg, _ := algorithm(p.alg)
	opts := hotp.ValidateOpts{Digits: otp.Digits(p.digits), Algorithm: alg}
	current := now.Unix() / p.period
	accepted, replayed := int64(-1), false
	for step := current - skew; step <= current+skew; step++ {
		if step < 0 {
			continue
		}
		want, err := hotp.GenerateCodeCustom(secret, uint64(step), opts)
		if err != nil {
			return 0, fmt.Errorf("totp: credential %q: compute code: %w", id, mfa.ErrCorrupt)
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) != 1 {
			continue
		}
		switch {
		case step <= s.LastStep:
			replayed = true
		case accepted < 0:
			accepted = step
		}
	}
	switch {
	case accepted >= 0:
		return accepted, nil
	case replayed:
		return 0, fmt.Errorf("totp: credential %q: %w", id, mfa.ErrReplay)
	}
	return 0, fmt.Errorf("totp: credential %q: %w", id, mfa.ErrInvalidCode)
}

// Display rebuilds what BeginEnrollment showed for a pending credential
// (the otpauth:// URI, the base32 seed and the QR code), so that the
// enrollment page can be shown again, after a wrong code, with the secret
// the user's app already holds. It refuses a confirmed credential.
func (f *Factor) Display(pending mfa.Credential, accountName string) (mfa.Enrollment, error) {
	s, err := decode(pending)
	if err != nil {
		return mfa.Enrollment{}, err
	}
	if s.LastStep != pendingStep {
		return mfa.Enrollment{}, fmt.Errorf("totp: credential %q is already confirmed", pending.ID)
	}
	seed, err := f.sealer.Open(s.Seed, []byte(pending.ID))
	if err != nil {
		return mfa.Enrollment{}, fmt.Errorf("totp: credential %q: open seed: %w: %w", pending.ID, mfa.ErrCorrupt, err)
	}
	defer clear(seed)
	alg, _ := algorithm(s.Alg)
	key, err := pqtotp.Generate(pqtotp.GenerateOpts{
		Issuer: f.issuer, AccountName: accountName, Period: uint(s.Period),
		Secret: seed, Digits: otp.Digits(s.Digits), Algorithm: alg,
	})
	if err != nil {
		return mfa.Enrollment{}, fmt.Errorf("totp: display: otpauth uri: %w", err)
	}
	png, err := qrcode.Encode(key.URL(), qrcode.Medium, f.qrSize)
	if err != nil {
		return mfa.Enrollment{}, fmt.Errorf("totp: display: qr code: %w", err)
	}
	return mfa.Enrollment{Pending: pending, URI: key.URL(), Secret: key.Secret(), QRCode: png}, nil
}
