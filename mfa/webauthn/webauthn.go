package webauthn

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/go-webauthn/webauthn/protocol"
	gowa "github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/mfa"
)

// Values of Options.UserVerification and Options.ResidentKey.
const (
	Required    = "required"
	Preferred   = "preferred"
	Discouraged = "discouraged"
)

// Values of Options.Attestation.
const (
	AttestationNone     = "none"
	AttestationIndirect = "indirect"
	AttestationDirect   = "direct"
)

// Ceremony kinds kept in the state.
const (
	kindRegister     = "register"
	kindAssert       = "assert"
	kindDiscoverable = "discoverable"
)

// Errors of the factor, checked with errors.Is. Verification failures
// also wrap mfa.ErrInvalidCode.
var (
	// ErrSignCount: the authenticator's signature counter did not
	// increase: a cloned authenticator or a replayed assertion.
	ErrSignCount = errors.New("webauthn: signature counter did not increase")
	// ErrAAGUID: the authenticator model is not in the allow list.
	ErrAAGUID = errors.New("webauthn: authenticator model not allowed")
	// ErrCeremony: the state is not a ceremony of the expected kind and
	// user.
	ErrCeremony = errors.New("webauthn: no matching ceremony")
)

// Options configure the factor.
type Options struct {
	// RPID is the relying party id, a domain (the issuer's host).
	RPID string
	// RPName is shown by the browser when creating a credential; default
	// "Latchkey".
	RPName string
	// Origins are the origins allowed in clientDataJSON (the issuer's
	// origin); required.
	Origins []string
	// UserVerification: required, preferred (default) or discouraged.
	UserVerification string
	// ResidentKey: whether a registered credential should be
	// discoverable (a passkey): required, preferred (default) or
	// discouraged.
	ResidentKey string
	// Attestation: none (default), indirect or direct.
	Attestation string
	// AllowedAAGUIDs, when not empty, lists the authenticator models
	// (AAGUID, e.g. "ee882879-721c-4913-9775-3dfcce97072a") that may
	// register; any other, including the all-zero AAGUID, is refused.
	AllowedAAGUIDs []string
	// Clock (CreatedAt, LastUsedAt) defaults to the system clock; Rand
	// (credential record ids) to crypto/rand.
	Clock clock.Clock
	Rand  io.Reader
}

// Factor is the WebAuthn factor. It is safe for concurrent use.
type Factor struct {
	wa      *gowa.WebAuthn
	uv      protocol.UserVerificationRequirement
	rk      protocol.ResidentKeyRequirement
	aaguids []uuid.UUID
	clock   clock.Clock
	rand    io.Reader
}

var _ mfa.Factor = (*Factor)(nil)

// New validates o and returns the factor; every problem is reported.
func New(o Options) (*Factor, error) {
	if o.RPName == "" {
		o.RPName = "Latchkey"
	}
	if o.UserVerification == "" {
		o.UserVerification = Preferred
	}
	if o.ResidentKey == "" {
		o.ResidentKey = Preferred
	}
	if o.Attestation == "" {
		o.Attestation = AttestationNone
	}
	var errs []error
	if err := ValidateRPID(o.RPID); err != nil {
		errs = append(errs, fmt.Errorf("rpID: %w", err))
	}
	if len(o.Origins) == 0 {
		errs = append(errs, errors.New("origins: required"))
	}
	for i, origin := range o.Origins {
		if err := validateOrigin(origin); err != nil {
			errs = append(errs, fmt.Errorf("origins[%d]: %w", i, err))
		}
	}
	levels := []string{Required, Preferred, Discouraged}
	if !slices.Contains(levels, o.UserVerification) {
		errs = append(errs, fmt.Errorf("userVerification: %q is not one of required, preferred, discouraged", o.UserVerification))
	}
	if !slices.Contains(levels, o.ResidentKey) {
		errs = append(errs, fmt.Errorf("residentKey: %q is not one of required, preferred, discouraged", o.ResidentKey))
	}
	if !slices.Contains([]string{AttestationNone, AttestationIndirect, AttestationDirect}, o.Attestation) {
		errs = append(errs, fmt.Errorf("attestation: %q is not one of none, indirect, direct", o.Attestation))
	}
	f := &Factor{uv: protocol.UserVerificationRequirement(o.UserVerification), rk: protocol.ResidentKeyRequirement(o.ResidentKey), clock: o.Clock, rand: o.Rand}
	for i, s := range o.AllowedAAGUIDs {
		id, err := uuid.Parse(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("allowedAAGUIDs[%d]: %q is not a UUID", i, s))
			continue
		}
		f.aaguids = append(f.aaguids, id)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("webauthn: %w", err)
	}
	wa, err := gowa.New(&gowa.Config{
		RPID: o.RPID, RPDisplayName: o.RPName, RPOrigins: o.Origins,
		AttestationPreference: protocol.ConveyancePreference(o.Attestation),
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey: f.rk, RequireResidentKey: protocol.ResidentKeyRequired(), UserVerification: f.uv,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("webauthn: %w", err)
	}
	if f.rk != protocol.ResidentKeyRequirementRequired {
		wa.Config.AuthenticatorSelection.RequireResidentKey = protocol.ResidentKeyNotRequired()
	}
	f.wa = wa
	if f.clock == nil {
		f.clock = clock.Real{}
	}
	if f.rand == nil {
		f.rand = rand.Reader
	}
	return f, nil
}

// ValidateRPID checks a relying party id: a domain name (not an IP
// address), as browsers require.
func ValidateRPID(id string) error {
	if id == "" {
		return errors.New("required")
	}
	if net.ParseIP(strings.Trim(id, "[]")) != nil {
		return fmt.Errorf("%q is an IP address; WebAuthn needs a domain name", id)
	}
	if err := protocol.ValidateRPID(id); err != nil {
		return fmt.Errorf("%q is not a valid domain: %w", id, err)
	}
	return nil
}

func validateOrigin(origin string) error {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.Path != "" || u.RawQuery != "" {
		return fmt.Errorf("%q is not an origin (scheme://host[:port])", origin)
	}
	if u.Scheme == "http" && u.Hostname() != "localhost" {
		return fmt.Errorf("%q: browsers allow WebAuthn over http only on localhost", origin)
	}
	return nil
}

// Type is mfa.TypeWebAuthn.
func (f *Factor) Type() string { return mfa.TypeWebAuthn }

// User is the account a ceremony is for.
type User struct {
	// ID is the Latchkey user id; it is the WebAuthn user handle.
	ID string
	// Name (username or email) and DisplayName are shown by the browser
	// and authenticator.
	Name, DisplayName string
}

// Ceremony is the first half of a ceremony: Options for the browser (the
// JSON of navigator.credentials.create or .get), State to keep
// server-side and hand back once.
type Ceremony struct {
	Options []byte
	State   []byte
}

// state is what Ceremony.State holds.
type state struct {
	Kind    string           `json:"kind"`
	UserID  string           `json:"user_id,omitempty"`
	Session gowa.SessionData `json:"session"`
}

// record is what a credential's Data holds.
type record struct {
	Credential gowa.Credential `json:"credential"`
	// Discoverable: the browser reported a resident (discoverable)
	// credential at registration (credProps).
	Discoverable bool `json:"discoverable,omitempty"`
}

// waUser adapts a user and its credentials to go-webauthn.
type waUser struct {
	u     User
	creds []gowa.Credential
}

func (w waUser) WebAuthnID() []byte                     { return []byte(w.u.ID) }
func (w waUser) WebAuthnName() string                   { return w.u.Name }
func (w waUser) WebAuthnDisplayName() string            { return w.u.DisplayName }
func (w waUser) WebAuthnCredentials() []gowa.Credential { return w.creds }

func decodeRecord(c mfa.Credential) (record, error) {
	if c.Type != mfa.TypeWebAuthn {
		return record{}, fmt.Errorf("%w: %q", mfa.ErrWrongFactor, c.Type)
	}
	var r record
	if err := json.Unmarshal(c.Data, &r); err != nil || len(r.Credential.ID) == 0 || len(r.Credential.PublicKey) == 0 {
		return record{}, fmt.Errorf("%w: webauthn credential %s", mfa.ErrCorrupt, c.ID)
	}
	return r, nil
}

// records decodes the WebAuthn credentials among creds (others are
// skipped).
func records(creds []mfa.Credential) ([]gowa.Credential, error) {
	var out []gowa.Credential
	for _, c := range creds {
		if c.Type != mfa.TypeWebAuthn {
			continue
		}
		r, err := decodeRecord(c)
		if err != nil {
			return nil, err
		}
		out = append(out, r.Credential)
	}
	return out, nil
}

func encodeCeremony(opts any, st state) (Ceremony, error) {
	o, err := json.Marshal(opts)
	if err != nil {
		return Ceremony{}, fmt.Errorf("webauthn: encode options: %w", err)
	}
	s, err := json.Marshal(st)
	if err != nil {
		return Ceremony{}, fmt.Errorf("webauthn: encode state: %w", err)
	}
	return Ceremony{Options: o, State: s}, nil
}

func decodeState(b []byte, kinds ...string) (state, error) {
	var st state
	if len(b) == 0 || json.Unmarshal(b, &st) != nil || !slices.Contains(kinds, st.Kind) || st.Session.Challenge == "" {
		return state{}, fmt.Errorf("%w: %w", mfa.ErrInvalidCode, ErrCeremony)
	}
	return st, nil
}

// BeginRegistration starts registering a new authenticator for u;
// existing are the user's credentials (their WebAuthn ones are excluded,
// so one authenticator is not registered twice).
func (f *Factor) BeginRegistration(_ context.Context, u User, existing []mfa.Credential) (Ceremony, error) {
	if u.ID == "" || len(u.ID) > 64 {
		return Ceremony{}, errors.New("webauthn: the user id must be 1 to 64 bytes (it is the user handle)")
	}
	if u.Name == "" {
		u.Name = u.ID
	}
	if u.DisplayName == "" {
		u.DisplayName = u.Name
	}
	creds, err := records(existing)
	if err != nil {
		return Ceremony{}, err
	}
	excl := make([]protocol.CredentialDescriptor, len(creds))
	for i, c := range creds {
		excl[i] = c.Descriptor()
	}
	opts, sess, err := f.wa.BeginRegistration(waUser{u: u}, gowa.WithExclusions(excl),
		gowa.WithExtensions(gowa.WithExtensionCredProps()))
	if err != nil {
		return Ceremony{}, fmt.Errorf("webauthn: begin registration: %w", err)
	}
	return encodeCeremony(opts.Response, state{Kind: kindRegister, UserID: u.ID, Session: *sess})
}

// FinishRegistration checks the browser's response (the JSON of the
// PublicKeyCredential) against the ceremony in st, which must have been
// begun for u, and returns the new credential to store with its label.
// A response for another ceremony, user, origin or RP id, or from an
// authenticator model not allowed, is an error wrapping
// mfa.ErrInvalidCode. existing are the user's credentials: registering
// one of them again is refused.
func (f *Factor) FinishRegistration(_ context.Context, u User, st []byte, label, response string, existing []mfa.Credential) (mfa.Verification, error) {
	s, err := decodeState(st, kindRegister)
	if err != nil {
		return mfa.Verification{}, err
	}
	if s.UserID != u.ID {
		return mfa.Verification{}, fmt.Errorf("%w: %w: begun for another user", mfa.ErrInvalidCode, ErrCeremony)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes([]byte(response))
	if err != nil {
		return mfa.Verification{}, fmt.Errorf("%w: registration response: %s", mfa.ErrInvalidCode, describe(err))
	}
	cred, err := f.wa.CreateCredential(waUser{u: u}, s.Session, parsed)
	if err != nil {
		return mfa.Verification{}, fmt.Errorf("%w: registration: %s", mfa.ErrInvalidCode, describe(err))
	}
	if len(f.aaguids) > 0 {
		id, err := uuid.FromBytes(cred.Authenticator.AAGUID)
		if err != nil || !slices.Contains(f.aaguids, id) {
			return mfa.Verification{}, fmt.Errorf("%w: %w: %s", mfa.ErrInvalidCode, ErrAAGUID, id)
		}
	}
	others, err := records(existing)
	if err != nil {
		return mfa.Verification{}, err
	}
	for _, o := range others {
		if bytes.Equal(o.ID, cred.ID) {
			return mfa.Verification{}, fmt.Errorf("%w: this authenticator is already registered", mfa.ErrInvalidCode)
		}
	}
	rec := record{Credential: *cred}
	if props := parsed.ClientExtensionResults.CredProps; props != nil && props.RK != nil {
		rec.Discoverable = *props.RK
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return mfa.Verification{}, fmt.Errorf("webauthn: encode credential: %w", err)
	}
	id, err := mfa.NewCredentialID(f.rand)
	if err != nil {
		return mfa.Verification{}, err
	}
	now := f.clock.Now().UTC()
	return mfa.Verification{
		Credential: mfa.Credential{ID: id, UserID: u.ID, Type: mfa.TypeWebAuthn, Label: label, Data: data, CreatedAt: now, LastUsedAt: now},
		AMR:        amrOf(parsed.Response.AttestationObject.AuthData.Flags),
	}, nil
}

// BeginLogin starts an assertion of one of the user's WebAuthn
// credentials among creds (a second factor).
func (f *Factor) BeginLogin(_ context.Context, userID string, creds []mfa.Credential) (Ceremony, error) {
	recs, err := records(creds)
	if err != nil {
		return Ceremony{}, err
	}
	if len(recs) == 0 {
		return Ceremony{}, mfa.ErrNotEnrolled
	}
	opts, sess, err := f.wa.BeginLogin(waUser{u: User{ID: userID}, creds: recs})
	if err != nil {
		return Ceremony{}, fmt.Errorf("webauthn: begin login: %w", err)
	}
	return encodeCeremony(opts.Response, state{Kind: kindAssert, UserID: userID, Session: *sess})
}

// BeginPasskeyLogin starts an assertion of any discoverable credential
// (the user is not known yet): "Sign in with a passkey" and the
// browser's passkey autofill use the same options.
func (f *Factor) BeginPasskeyLogin(_ context.Context) (Ceremony, error) {
	opts, sess, err := f.wa.BeginDiscoverableLogin()
	if err != nil {
		return Ceremony{}, fmt.Errorf("webauthn: begin passkey login: %w", err)
	}
	return encodeCeremony(opts.Response, state{Kind: kindDiscoverable, Session: *sess})
}

// Assertion is what a browser's assertion response names, before it is
// verified: which credential, and (for a passkey) which user.
type Assertion struct {
	CredentialID []byte
	// UserID is the user handle: the Latchkey user id ("" when the
	// authenticator sent none).
	UserID string
}

// ParseAssertion reads the credential id and user handle of an assertion
// response; it verifies nothing.
func ParseAssertion(response string) (Assertion, error) {
	parsed, err := protocol.ParseCredentialRequestResponseBytes([]byte(response))
	if err != nil {
		return Assertion{}, fmt.Errorf("%w: assertion response: %s", mfa.ErrInvalidCode, describe(err))
	}
	return Assertion{CredentialID: parsed.RawID, UserID: string(parsed.Response.UserHandle)}, nil
}

// Owns reports whether c is the WebAuthn credential with credential id
// id.
func Owns(c mfa.Credential, id []byte) bool {
	r, err := decodeRecord(c)
	return err == nil && bytes.Equal(r.Credential.ID, id)
}

// Discoverable reports whether c was registered as a discoverable
// credential (a passkey).
func Discoverable(c mfa.Credential) bool {
	r, err := decodeRecord(c)
	return err == nil && r.Discoverable
}

// Verify checks an assertion response against cred and the ceremony in
// st (BeginLogin for cred's user, or BeginPasskeyLogin) and returns cred
// with its new signature counter and flags, and the amr values. It has
// no side effects. A counter that did not increase is ErrSignCount; any
// other failure (another challenge, origin, RP id, credential or user;
// a bad signature) wraps mfa.ErrInvalidCode.
func (f *Factor) Verify(_ context.Context, cred mfa.Credential, st []byte, response string) (mfa.Verification, error) {
	s, err := decodeState(st, kindAssert, kindDiscoverable)
	if err != nil {
		return mfa.Verification{}, err
	}
	rec, err := decodeRecord(cred)
	if err != nil {
		return mfa.Verification{}, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes([]byte(response))
	if err != nil {
		return mfa.Verification{}, fmt.Errorf("%w: assertion response: %s", mfa.ErrInvalidCode, describe(err))
	}
	if !bytes.Equal(parsed.RawID, rec.Credential.ID) {
		return mfa.Verification{}, fmt.Errorf("%w: the assertion is for another credential", mfa.ErrInvalidCode)
	}
	user := waUser{u: User{ID: cred.UserID}, creds: []gowa.Credential{rec.Credential}}
	sess := s.Session
	var out *gowa.Credential
	switch s.Kind {
	case kindAssert:
		if s.UserID != cred.UserID {
			return mfa.Verification{}, fmt.Errorf("%w: %w: begun for another user", mfa.ErrInvalidCode, ErrCeremony)
		}
		// The ceremony allowed all of the user's credentials; this check
		// is of the one the browser used.
		if !slices.ContainsFunc(sess.AllowedCredentialIDs, func(id []byte) bool { return bytes.Equal(id, rec.Credential.ID) }) {
			return mfa.Verification{}, fmt.Errorf("%w: the credential was not offered in this ceremony", mfa.ErrInvalidCode)
		}
		sess.AllowedCredentialIDs = [][]byte{rec.Credential.ID}
		out, err = f.wa.ValidateLogin(user, sess, parsed)
	default:
		out, err = f.wa.ValidateDiscoverableLogin(func(rawID, userHandle []byte) (gowa.User, error) {
			if string(userHandle) != cred.UserID {
				return nil, errors.New("user handle of another user")
			}
			return user, nil
		}, sess, parsed)
	}
	if err != nil {
		return mfa.Verification{}, fmt.Errorf("%w: assertion: %s", mfa.ErrInvalidCode, describe(err))
	}
	if out.Authenticator.CloneWarning {
		return mfa.Verification{}, fmt.Errorf("%w (stored %d, presented %d)", ErrSignCount, rec.Credential.Authenticator.SignCount, parsed.Response.AuthenticatorData.Counter)
	}
	rec.Credential = *out
	data, err := json.Marshal(rec)
	if err != nil {
		return mfa.Verification{}, fmt.Errorf("webauthn: encode credential: %w", err)
	}
	next := cred
	next.Data = data
	next.LastUsedAt = f.clock.Now().UTC()
	return mfa.Verification{Credential: next, AMR: amrOf(parsed.Response.AuthenticatorData.Flags)}, nil
}

// amrOf is the amr of a verified assertion (CONTRACTS.md "acr and amr").
func amrOf(flags protocol.AuthenticatorFlags) []string {
	amr := []string{mfa.AMRHardware}
	if flags.HasBackupEligible() {
		amr = []string{mfa.AMRSoftware}
	}
	if flags.HasUserPresent() {
		amr = append(amr, mfa.AMRPresence)
	}
	if flags.HasUserVerified() {
		amr = append(amr, mfa.AMRMFA)
	}
	return amr
}

// describe is a go-webauthn error as text for logs: its details and
// developer information (never key material or the response).
func describe(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		if pe.DevInfo != "" {
			return pe.Details + " (" + pe.DevInfo + ")"
		}
		return pe.Details
	}
	return err.Error()
}

// BeginEnrollment is BeginRegistration for req.UserID without other
// credentials to exclude: Pending.Data holds the ceremony state and
// Options the creation options.
func (f *Factor) BeginEnrollment(ctx context.Context, req mfa.EnrollmentRequest) (mfa.Enrollment, error) {
	c, err := f.BeginRegistration(ctx, User{ID: req.UserID, Name: req.AccountName}, nil)
	if err != nil {
		return mfa.Enrollment{}, err
	}
	return mfa.Enrollment{Pending: mfa.Credential{UserID: req.UserID, Type: mfa.TypeWebAuthn, Label: req.Label, Data: c.State}, Options: c.Options}, nil
}

// FinishEnrollment is FinishRegistration of the ceremony in pending.Data.
func (f *Factor) FinishEnrollment(ctx context.Context, pending mfa.Credential, response string) (mfa.Credential, error) {
	v, err := f.FinishRegistration(ctx, User{ID: pending.UserID}, pending.Data, pending.Label, response, nil)
	return v.Credential, err
}

// BeginChallenge is BeginLogin of cred alone.
func (f *Factor) BeginChallenge(ctx context.Context, cred mfa.Credential) (mfa.Challenge, error) {
	c, err := f.BeginLogin(ctx, cred.UserID, []mfa.Credential{cred})
	if err != nil {
		return mfa.Challenge{}, err
	}
	return mfa.Challenge{State: c.State, Options: c.Options}, nil
}
