package recovery

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/mfa"
	"github.com/latchkeyid/latchkey/storage"
)

// AMR is the amr value a recovery code adds.
const AMR = mfa.AMRRecovery

const (
	// Count is the number of codes in a set.
	Count = 10
	// Length is the number of characters of a code (5 bits each).
	Length = 10
	// Alphabet is Crockford's base32 alphabet.
	Alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	// maxInput bounds what Verify looks at: a formatted code with generous
	// white space is far shorter.
	maxInput = 64
)

// Options configure a Factor.
type Options struct {
	// Clock defaults to the system clock; Rand (codes and credential ids)
	// to crypto/rand.
	Clock clock.Clock
	Rand  io.Reader
}

// Factor is the recovery-code factor. It is safe for concurrent use if
// Rand is.
type Factor struct {
	clock clock.Clock
	rand  io.Reader
}

var _ mfa.Factor = (*Factor)(nil)

// New returns the factor.
func New(o Options) *Factor {
	f := &Factor{clock: o.Clock, rand: o.Rand}
	if f.clock == nil {
		f.clock = clock.Real{}
	}
	if f.rand == nil {
		f.rand = rand.Reader
	}
	return f
}

// Type returns mfa.TypeRecovery.
func (f *Factor) Type() string { return mfa.TypeRecovery }

// state is the credential's Data.
type state struct {
	V     int     `json:"v"`
	Codes []entry `json:"codes"`
}

type entry struct {
	Hash   string    `json:"hash"` // hex SHA-256 of credential id, 0x00, normalised code
	UsedAt time.Time `json:"used_at,omitzero"`
}

func decode(c mfa.Credential) (state, error) {
	if c.Type != mfa.TypeRecovery {
		return state{}, fmt.Errorf("recovery: credential %q of type %q: %w", c.ID, c.Type, mfa.ErrWrongFactor)
	}
	var s state
	if err := json.Unmarshal(c.Data, &s); err != nil {
		return state{}, fmt.Errorf("recovery: credential %q: %w: %v", c.ID, mfa.ErrCorrupt, err)
	}
	if s.V != 1 || len(s.Codes) == 0 || slices.ContainsFunc(s.Codes, func(e entry) bool { return len(e.Hash) != 2*sha256.Size }) {
		return state{}, fmt.Errorf("recovery: credential %q: %w: invalid fields", c.ID, mfa.ErrCorrupt)
	}
	return s, nil
}

func encode(id string, s state) ([]byte, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("recovery: credential %q: encode: %w", id, err)
	}
	return b, nil
}

// hash is the stored form of a normalised code of credential id.
func hash(id, code string) string {
	h := sha256.New()
	h.Write([]byte(id))
	h.Write([]byte{0})
	h.Write([]byte(code))
	return hex.EncodeToString(h.Sum(nil))
}

// Normalise turns what a user typed into a code's canonical form: white
// space and dashes dropped, upper case, O read as 0 and I and L as 1. ok is
// false unless the result is Length characters of Alphabet.
func Normalise(input string) (code string, ok bool) {
	if len(input) > maxInput {
		return "", false
	}
	var b strings.Builder
	for _, r := range input {
		switch {
		case r == '-' || r == ' ' || r == '\t' || r == '\n' || r == '\r':
			continue
		case r >= 'a' && r <= 'z':
			r -= 'a' - 'A'
		}
		switch r {
		case 'O':
			r = '0'
		case 'I', 'L':
			r = '1'
		}
		if r > 0x7f || !strings.ContainsRune(Alphabet, r) {
			return "", false
		}
		b.WriteRune(r)
	}
	if b.Len() != Length {
		return "", false
	}
	return b.String(), true
}

// generate draws a set of distinct codes for credential id: the codes
// formatted for display and the state holding their hashes.
func (f *Factor) generate(id string) ([]string, state, error) {
	codes := make([]string, 0, Count)
	s := state{V: 1, Codes: make([]entry, 0, Count)}
	buf := make([]byte, Length)
	for len(codes) < Count {
		if _, err := io.ReadFull(f.rand, buf); err != nil {
			return nil, state{}, fmt.Errorf("recovery: read random: %w", err)
		}
		code := make([]byte, Length)
		for i, b := range buf {
			code[i] = Alphabet[b&31] // 256 is a multiple of 32: unbiased
		}
		h := hash(id, string(code))
		if slices.ContainsFunc(s.Codes, func(e entry) bool { return e.Hash == h }) {
			continue
		}
		s.Codes = append(s.Codes, entry{Hash: h})
		codes = append(codes, string(code[:Length/2])+"-"+string(code[Length/2:]))
	}
	clear(buf)
	return codes, s, nil
}

// BeginEnrollment generates a set for req.UserID: the pending credential
// and the codes to show once.
func (f *Factor) BeginEnrollment(_ context.Context, req mfa.EnrollmentRequest) (mfa.Enrollment, error) {
	if req.UserID == "" {
		return mfa.Enrollment{}, errors.New("recovery: enroll: user id required")
	}
	id, err := mfa.NewCredentialID(f.rand)
	if err != nil {
		return mfa.Enrollment{}, fmt.Errorf("recovery: enroll: %w", err)
	}
	codes, s, err := f.generate(id)
	if err != nil {
		return mfa.Enrollment{}, err
	}
	data, err := encode(id, s)
	if err != nil {
		return mfa.Enrollment{}, err
	}
	return mfa.Enrollment{
		Pending: mfa.Credential{ID: id, UserID: req.UserID, Type: mfa.TypeRecovery, Label: req.Label, Data: data, CreatedAt: f.clock.Now()},
		Codes:   codes,
	}, nil
}

// FinishEnrollment returns the pending credential to store, created now.
// Recovery codes need no confirmation: response is ignored (the page asks
// the user to confirm that the codes are saved).
func (f *Factor) FinishEnrollment(_ context.Context, pending mfa.Credential, _ string) (mfa.Credential, error) {
	if _, err := decode(pending); err != nil {
		return mfa.Credential{}, err
	}
	pending.CreatedAt = f.clock.Now()
	return pending, nil
}

// Regenerate replaces cur's codes with a new set (same credential id),
// voiding every old code, and returns the credential to store and the new
// codes to show once. Generate outside the store updater and write the
// returned Data inside it.
func (f *Factor) Regenerate(_ context.Context, cur mfa.Credential) (mfa.Credential, []string, error) {
	if cur.Type != mfa.TypeRecovery {
		return mfa.Credential{}, nil, fmt.Errorf("recovery: credential %q of type %q: %w", cur.ID, cur.Type, mfa.ErrWrongFactor)
	}
	codes, s, err := f.generate(cur.ID)
	if err != nil {
		return mfa.Credential{}, nil, err
	}
	if cur.Data, err = encode(cur.ID, s); err != nil {
		return mfa.Credential{}, nil, err
	}
	cur.CreatedAt, cur.LastUsedAt = f.clock.Now(), time.Time{}
	return cur, codes, nil
}

// BeginChallenge needs nothing: the user types a code.
func (f *Factor) BeginChallenge(_ context.Context, cred mfa.Credential) (mfa.Challenge, error) {
	if _, err := decode(cred); err != nil {
		return mfa.Challenge{}, err
	}
	return mfa.Challenge{}, nil
}

// Verify spends the code the user typed and returns cred with it marked
// used. Errors: mfa.ErrInvalidCode (not one of the set, or malformed),
// mfa.ErrReplay (already used), mfa.ErrWrongFactor, mfa.ErrCorrupt. state
// is ignored.
func (f *Factor) Verify(_ context.Context, cred mfa.Credential, _ []byte, input string) (mfa.Verification, error) {
	s, err := decode(cred)
	if err != nil {
		return mfa.Verification{}, err
	}
	code, ok := Normalise(input)
	if !ok {
		return mfa.Verification{}, fmt.Errorf("recovery: credential %q: %w: not a recovery code", cred.ID, mfa.ErrInvalidCode)
	}
	h := []byte(hash(cred.ID, code))
	found := -1
	for i, e := range s.Codes {
		if subtle.ConstantTimeCompare(h, []byte(e.Hash)) == 1 {
			found = i
		}
	}
	switch {
	case found < 0:
		return mfa.Verification{}, fmt.Errorf("recovery: credential %q: %w", cred.ID, mfa.ErrInvalidCode)
	case !s.Codes[found].UsedAt.IsZero():
		return mfa.Verification{}, fmt.Errorf("recovery: credential %q: %w", cred.ID, mfa.ErrReplay)
	}
	now := f.clock.Now()
	s.Codes[found].UsedAt = now
	if cred.Data, err = encode(cred.ID, s); err != nil {
		return mfa.Verification{}, err
	}
	cred.LastUsedAt = now
	return mfa.Verification{Credential: cred, AMR: []string{AMR}}, nil
}

// Remaining returns how many codes of cred are unused. A credential with
// none left no longer counts as an enrolled factor.
func Remaining(cred mfa.Credential) (int, error) {
	s, err := decode(cred)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range s.Codes {
		if e.UsedAt.IsZero() {
			n++
		}
	}
	return n, nil
}

// Issue gives userID a new set of recovery codes in st and returns them
// (shown once): an existing set is regenerated in place (its id and
// label stay; the old codes stop working), any further sets are deleted;
// without one a set is created. The one place that hands out codes: the
// sign-in enrollment, the account page and `latchkey mfa
// recovery-codes` all call it. Run it in a transaction where the caller
// has one.
func (f *Factor) Issue(ctx context.Context, st mfa.Store, userID string) ([]string, error) {
	creds, err := st.ListMFACredentials(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("recovery: list credentials: %w", err)
	}
	var codes []string
	kept := false
	for _, c := range creds {
		if c.Type != mfa.TypeRecovery {
			continue
		}
		if kept {
			if err := st.DeleteMFACredential(ctx, c.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return nil, fmt.Errorf("recovery: delete extra set %s: %w", c.ID, err)
			}
			continue
		}
		kept = true
		if err := st.UpdateMFACredential(ctx, c.ID, func(cur mfa.Credential) (mfa.Credential, error) {
			next, list, err := f.Regenerate(ctx, cur)
			codes = list
			return next, err
		}); err != nil {
			return nil, fmt.Errorf("recovery: regenerate %s: %w", c.ID, err)
		}
	}
	if kept {
		return codes, nil
	}
	e, err := f.BeginEnrollment(ctx, mfa.EnrollmentRequest{UserID: userID, Label: "recovery codes"})
	if err != nil {
		return nil, err
	}
	cred, err := f.FinishEnrollment(ctx, e.Pending, "")
	if err != nil {
		return nil, err
	}
	if err := st.CreateMFACredential(ctx, cred); err != nil {
		return nil, fmt.Errorf("recovery: store the set: %w", err)
	}
	return e.Codes, nil
}
