package broker

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/latchkeyid/latchkey/mfa"
	"github.com/latchkeyid/latchkey/storage"
)

// AuthRequest is a started login, kept in the ephemeral store from
// /authorize until the code is issued. It is the only truth about the
// login: no step trusts hidden form fields.
type AuthRequest struct {
	ID                  string          `json:"id"`
	ClientID            string          `json:"client_id"`
	RedirectURI         string          `json:"redirect_uri"`
	ResponseMode        string          `json:"response_mode"`
	Scopes              []string        `json:"scopes"`
	State               string          `json:"state,omitempty"`
	Nonce               string          `json:"nonce,omitempty"`
	CodeChallenge       string          `json:"code_challenge,omitempty"`
	CodeChallengeMethod string          `json:"code_challenge_method,omitempty"`
	Prompt              []string        `json:"prompt,omitempty"`
	MaxAge              *int            `json:"max_age,omitempty"`
	LoginHint           string          `json:"login_hint,omitempty"`
	UILocales           []string        `json:"ui_locales,omitempty"`
	ACRValues           []string        `json:"acr_values,omitempty"`
	Claims              json.RawMessage `json:"claims,omitempty"`
	ConnectorID         string          `json:"connector_id,omitempty"`
	// BindingHash is SHA-256 of the binding cookie of the browser that
	// started the request; every later step must present that cookie.
	BindingHash string    `json:"binding_hash"`
	CreatedAt   time.Time `json:"created_at"`

	// Filled in by the steps.
	UserID       string    `json:"user_id,omitempty"`
	AuthTime     time.Time `json:"auth_time,omitzero"`
	AMR          []string  `json:"amr,omitempty"`
	SID          string    `json:"sid,omitempty"`
	LoginConnID  string    `json:"login_connector,omitempty"`
	ConsentGiven bool      `json:"consent_given,omitempty"`
	// AccountChosen: the user picked an account on the account chooser
	// (prompt=select_account is answered). AddAccount: the user chose
	// "use another account": sign in with the form, and keep the
	// browser's current account as another account.
	AccountChosen bool `json:"account_chosen,omitempty"`
	AddAccount    bool `json:"add_account,omitempty"`
	// MFAFactors are the factor types the second-factor page offers (set
	// by the dispatcher when the policy asks for a challenge or an
	// enrollment). MFAPending is a TOTP enrollment in progress: the
	// pending credential, its seed sealed, bound to UserID.
	MFAFactors []string        `json:"mfa_factors,omitempty"`
	MFAPending *mfa.Credential `json:"mfa_pending,omitempty"`
	// PendingLink is an upstream identity waiting to be linked to an
	// existing account once the user signs in with it (federation_link.go).
	PendingLink *PendingLink `json:"pending_link,omitempty"`
	// WebAuthn is the WebAuthn ceremony in progress (mfa/webauthn state:
	// the challenge and, but for a passkey sign-in, the user); it is
	// taken out before the browser's answer is checked (broker/webauthn.go).
	WebAuthn []byte `json:"webauthn,omitempty"`
	// SessionCookie is the session this request rides on (not stored).
	SessionCookie string `json:"-"`
	// stored: the request is in the ephemeral store (finish must take it).
	stored bool
}

func requestKey(id string) string { return "authreq:" + id }

// randomToken returns n random bytes, base64url.
func (b *Broker) randomToken(n int) (string, error) {
	buf := make([]byte, n)
	if _, err := io.ReadFull(b.rand, buf); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(buf), nil
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// saveRequest stores req with what remains of its lifetime.
func (b *Broker) saveRequest(ctx context.Context, req *AuthRequest) error {
	data, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode auth request: %w", err)
	}
	ttl := req.CreatedAt.Add(b.reqTTL).Sub(b.now())
	if ttl <= 0 {
		return errRequestExpired
	}
	if err := b.eph.Put(ctx, requestKey(req.ID), data, ttl); err != nil {
		return fmt.Errorf("store auth request: %w", err)
	}
	req.stored = true
	return nil
}

var (
	// errRequestExpired: the auth request is gone (expired or finished).
	errRequestExpired = errors.New("the sign-in request has expired or was already completed")
	// errWrongBrowser: the request was started by another browser.
	errWrongBrowser = errors.New("the sign-in request was started in another browser")
)

// loadRequest returns the request if the browser presenting binding
// started it.
func (b *Broker) loadRequest(ctx context.Context, id, binding string) (*AuthRequest, error) {
	if id == "" || len(id) > 64 {
		return nil, errRequestExpired
	}
	data, err := b.eph.Get(ctx, requestKey(id))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errRequestExpired
	}
	if err != nil {
		return nil, fmt.Errorf("load auth request: %w", err)
	}
	var req AuthRequest
	if err := json.Unmarshal(data, &req); err != nil {
		return nil, fmt.Errorf("decode auth request: %w", err)
	}
	if binding == "" || subtle.ConstantTimeCompare([]byte(sha256Hex(binding)), []byte(req.BindingHash)) != 1 {
		return nil, errWrongBrowser
	}
	req.stored = true
	return &req, nil
}

// CSRFToken is the form token for a request's pages: derived from the
// binding cookie and the request id, so it needs no storage and a page
// rendered for one browser is useless in another.
func CSRFToken(binding, requestID string) string {
	sum := sha256.Sum256([]byte("latchkey-csrf\x00" + binding + "\x00" + requestID))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func checkCSRF(binding, requestID, got string) bool {
	return subtle.ConstantTimeCompare([]byte(CSRFToken(binding, requestID)), []byte(got)) == 1
}

// RequestUI returns the ui_locales and the client of the auth request
// id if the browser presenting binding started it, for the language and
// theme of its pages; zero when there is no such request.
func (b *Broker) RequestUI(ctx context.Context, id, binding string) (uiLocales []string, clientID string) {
	req, err := b.loadRequest(ctx, id, binding)
	if err != nil {
		return nil, ""
	}
	return req.UILocales, req.ClientID
}
