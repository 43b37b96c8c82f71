package mfa

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"

	"github.com/latchkeyid/latchkey/storage"
)

// Factor types: the Type of a [Credential] and the key of a [Registry].
// Policy rules name factors by these values.
const (
	TypeTOTP     = "totp"
	TypeWebAuthn = "webauthn"
	TypeSMS      = "sms"
	TypeEmail    = "email"
	TypeRecovery = "recovery"
)

// Sentinel errors of the factors, checked with errors.Is. The wrapping
// error says what failed but never holds a code, seed or recovery code.
var (
	// ErrInvalidCode: the response does not verify (wrong, expired or
	// malformed code). Shown to the user as "that code is not valid".
	ErrInvalidCode = errors.New("mfa: invalid code")
	// ErrReplay: the response is valid but was already used with this
	// credential (a TOTP code for a time step at or before the last one
	// accepted, a recovery code already spent).
	ErrReplay = errors.New("mfa: code already used")
	// ErrNotEnrolled: the user has no confirmed credential of that factor.
	ErrNotEnrolled = errors.New("mfa: factor not enrolled")
	// ErrUnknownFactor: no factor of that type is registered.
	ErrUnknownFactor = errors.New("mfa: unknown factor type")
	// ErrWrongFactor: a credential was given to a factor of another type.
	ErrWrongFactor = errors.New("mfa: credential belongs to another factor")
	// ErrCorrupt: the credential's data cannot be read (bad encoding, or
	// a sealed secret that does not open under the configured keys or
	// for this credential id).
	ErrCorrupt = errors.New("mfa: credential data unreadable")
)

// Credential is one enrolled factor of one user: the storage record
// (storage.MFACredential), so every durable backend satisfies [Store]. Data
// belongs to the factor of Type: a document only that factor reads and
// writes, with its secrets sealed or hashed. ID is random
// (NewCredentialID); TOTP binds its sealed seed to it, so Data copied to
// another credential does not open. It prints and logs without Data.
type Credential = storage.MFACredential

// EnrollmentRequest starts an enrollment.
type EnrollmentRequest struct {
	UserID string
	// AccountName names the account in an authenticator app (the
	// username or email); TOTP requires it.
	AccountName string
	// Label is copied to the credential.
	Label string
	// Address is the phone number (E.164) or e-mail address an SMS or
	// e-mail code factor sends its codes to.
	Address string
}

// Enrollment is what BeginEnrollment returns. Pending is kept server-side
// (in the auth request; its secrets are already sealed or hashed) until
// FinishEnrollment; the other fields are shown to the user once and never
// stored. Only the fields of the factor's kind are set.
type Enrollment struct {
	Pending Credential
	// TOTP: the otpauth:// URI, the seed as base32 text for typing in, and
	// the URI as a QR code PNG.
	URI    string
	Secret string
	QRCode []byte
	// Recovery codes: the codes, formatted for display.
	Codes []string
	// Options is what the browser needs to create a credential (WebAuthn
	// creation options as JSON).
	Options []byte
}

// String describes the enrollment without its secrets.
func (e Enrollment) String() string { return "mfa.Enrollment{Pending: " + e.Pending.String() + "}" }

// GoString is String, for %#v.
func (e Enrollment) GoString() string { return e.String() }

// LogValue keeps the secrets out of structured logs.
func (e Enrollment) LogValue() slog.Value { return e.Pending.LogValue() }

// Challenge is what BeginChallenge returns. State is kept server-side
// until Verify (a hashed one-time code, a WebAuthn ceremony); Options go to
// the browser (WebAuthn request options as JSON). Both are nil for TOTP and
// recovery codes, which need no challenge.
type Challenge struct {
	State   []byte
	Options []byte
}

// Verification is the result of a successful Verify.
type Verification struct {
	// Credential is the verified credential with its new state (replay
	// step, spent code, counter) and LastUsedAt: the caller stores it, as
	// the result of the Store.UpdateMFACredential updater.
	Credential Credential
	// AMR lists the values this verification adds to the session's amr
	// (CONTRACTS.md): ["otp"] for TOTP, ["rcode"] for a recovery code.
	AMR []string
}

// Factor is one kind of second factor. The methods do no storage I/O; see
// the package comment for how the caller keeps pending credentials and
// stores results.
type Factor interface {
	// Type is the factor type (TypeTOTP, ...), the Type of its credentials.
	Type() string
	// BeginEnrollment makes a new pending credential for req.UserID.
	BeginEnrollment(ctx context.Context, req EnrollmentRequest) (Enrollment, error)
	// FinishEnrollment checks the user's response against the pending
	// credential (for TOTP, a first valid code) and returns the credential
	// to store.
	FinishEnrollment(ctx context.Context, pending Credential, response string) (Credential, error)
	// BeginChallenge prepares a verification of cred.
	BeginChallenge(ctx context.Context, cred Credential) (Challenge, error)
	// Verify checks response against cred (and state from BeginChallenge)
	// and returns the updated credential. It has no side effects, so it
	// may run inside a store updater that is called more than once.
	Verify(ctx context.Context, cred Credential, state []byte, response string) (Verification, error)
}

// Registry maps factor types to factors. cmd builds it (NewRegistry or a
// map literal) and passes it in; nothing registers itself.
type Registry map[string]Factor

// NewRegistry builds a registry of factors; two factors of one type are an
// error.
func NewRegistry(factors ...Factor) (Registry, error) {
	r := make(Registry, len(factors))
	for _, f := range factors {
		t := f.Type()
		if _, dup := r[t]; dup {
			return nil, fmt.Errorf("mfa: factor type %q registered twice", t)
		}
		r[t] = f
	}
	return r, nil
}

// Get returns the factor of type typ, or an error wrapping
// ErrUnknownFactor.
func (r Registry) Get(typ string) (Factor, error) {
	f, ok := r[typ]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownFactor, typ)
	}
	return f, nil
}

// Types returns the registered factor types, sorted.
func (r Registry) Types() []string { return slices.Sorted(maps.Keys(r)) }

// Store is the durable storage of credentials that mfa's callers need.
// The storage backends satisfy it (storage.ErrNotFound and
// storage.ErrConflict as everywhere); mfa itself never calls it.
type Store interface {
	// CreateMFACredential stores a confirmed credential; ErrConflict if
	// its id exists, ErrNotFound if its user does not. Deleting the user
	// deletes their credentials.
	CreateMFACredential(ctx context.Context, c Credential) error
	// GetMFACredential returns ErrNotFound if there is no such credential.
	GetMFACredential(ctx context.Context, id string) (Credential, error)
	// ListMFACredentials returns a user's credentials, oldest first
	// (none: an empty list, no error).
	ListMFACredentials(ctx context.Context, userID string) ([]Credential, error)
	// UpdateMFACredential applies fn atomically (no lost update between
	// concurrent calls: this is what makes replay protection hold across
	// replicas) and returns fn's error wrapped. fn may be called more than
	// once.
	UpdateMFACredential(ctx context.Context, id string, fn func(Credential) (Credential, error)) error
	// DeleteMFACredential removes one credential; ErrNotFound if absent.
	DeleteMFACredential(ctx context.Context, id string) error
	// DeleteUserMFACredentials removes every credential of a user
	// (`latchkey mfa reset`) and returns how many it removed.
	DeleteUserMFACredentials(ctx context.Context, userID string) (int64, error)
}

// NewCredentialID returns a random credential id: 128 bits from random,
// base64url without padding.
func NewCredentialID(random io.Reader) (string, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(random, b); err != nil {
		return "", fmt.Errorf("mfa: credential id: read random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
