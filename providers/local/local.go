package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/latchkeyid/latchkey/providers"
)

// Length limits on Login's input; longer input is refused before any
// lookup or hashing.
const (
	MaxUsernameLength = 256  // bytes, after trimming
	MaxPasswordLength = 1024 // bytes
)

// ErrNoAccount is what Accounts.AccountByUsername returns (possibly
// wrapped) when no account has the username.
var ErrNoAccount = errors.New("local: no such account")

// Account is a local user as the connector needs it.
type Account struct {
	ID            string // the Latchkey user id; becomes Identity.Subject
	Username      string
	Email         string
	EmailVerified bool
	Name          string
	Groups        []string
	PasswordHash  string // argon2id PHC string; "" means no password
	Disabled      bool
}

// String names the account without its password hash.
func (a Account) String() string {
	return fmt.Sprintf("local.Account{ID: %q, Username: %q}", a.ID, a.Username)
}

// GoString is String, for %#v.
func (a Account) GoString() string { return a.String() }

// LogValue keeps the password hash out of structured logs.
func (a Account) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", a.ID), slog.String("username", a.Username))
}

// Accounts finds local accounts. cmd adapts the storage to it.
type Accounts interface {
	// AccountByUsername returns the account with exactly this username,
	// or ErrNoAccount.
	AccountByUsername(ctx context.Context, username string) (Account, error)
}

// Connector is the local password connector.
type Connector struct {
	accounts Accounts
	hasher   *Hasher
	log      *slog.Logger
	// dummy is a hash under the hasher's parameters that unknown users are
	// verified against, so they cost what a known user costs.
	dummy string
}

var _ providers.PasswordConnector = (*Connector)(nil)

// New returns a connector over accounts. It computes the dummy hash once,
// which takes one hash's time (a few tens of milliseconds with
// DefaultParams). A nil log discards.
func New(accounts Accounts, h *Hasher, log *slog.Logger) *Connector {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The dummy's value is never a secret: an unknown user fails whatever
	// the verification says. A fixed salt serves as well as a random one.
	salt := make([]byte, h.params.SaltLength)
	return &Connector{
		accounts: accounts,
		hasher:   h,
		log:      log,
		dummy:    h.hashWithSalt("latchkey dummy password", salt),
	}
}

// Login checks username and password; see the package doc for the rules.
// It returns providers.ErrInvalidCredentials for every failure the user
// caused, providers.ErrBusy (wrapped) when no hashing slot frees up in
// time, and other lookup errors wrapped.
func (c *Connector) Login(ctx context.Context, username, password string) (providers.Identity, error) {
	username = strings.TrimSpace(username)
	if len(username) > MaxUsernameLength || len(password) > MaxPasswordLength {
		c.log.DebugContext(ctx, "local login refused", slog.String("reason", "input too long"))
		return providers.Identity{}, providers.ErrInvalidCredentials
	}

	var acct Account
	found := false
	// The username as typed, then in lower case: self-registration stores
	// usernames in lower case (as Keycloak does), so "Alice" signs in as
	// "alice"; an account whose stored name has capitals still needs them.
	// (The login limits and lockout count both spellings as one.)
	for _, name := range slices.Compact([]string{username, strings.ToLower(username)}) {
		if username == "" || found {
			break
		}
		a, err := c.accounts.AccountByUsername(ctx, name)
		switch {
		case err == nil:
			acct, found = a, true
		case errors.Is(err, ErrNoAccount):
		default:
			return providers.Identity{}, fmt.Errorf("local: look up account: %w", err)
		}
	}

	// Exactly one verification on every path from here on.
	encoded := c.dummy
	if found && acct.PasswordHash != "" {
		encoded = acct.PasswordHash
	}
	ok, err := c.hasher.Verify(ctx, encoded, password)
	unreadable := errors.Is(err, ErrMalformedHash)
	if unreadable {
		// A corrupt stored hash is the operator's problem; the user gets
		// the usual answer after the usual cost, which keeps the account's
		// existence hidden. The error names the bad part, never the hash.
		c.log.ErrorContext(ctx, "local login: stored password hash unreadable",
			slog.String("user_id", acct.ID), slog.String("error", err.Error()))
		_, err = c.hasher.Verify(ctx, c.dummy, password)
	}
	if err != nil {
		return providers.Identity{}, fmt.Errorf("local: verify password: %w", err)
	}

	reason := ""
	switch {
	case !found:
		reason = "unknown user"
	case acct.PasswordHash == "":
		reason = "account has no password"
	case unreadable:
		reason = "stored hash unreadable"
	case acct.Disabled:
		reason = "account disabled"
	case password == "":
		reason = "empty password"
	case !ok:
		reason = "wrong password"
	}
	if reason != "" {
		// The typed username is not logged: people type their password
		// into the username field. Known accounts are named by id.
		attrs := []any{slog.String("reason", reason)}
		if found {
			attrs = append(attrs, slog.String("user_id", acct.ID))
		}
		c.log.DebugContext(ctx, "local login refused", attrs...)
		return providers.Identity{}, providers.ErrInvalidCredentials
	}
	return providers.Identity{
		Subject:       acct.ID,
		Username:      acct.Username,
		Email:         acct.Email,
		EmailVerified: acct.EmailVerified,
		Name:          acct.Name,
		Groups:        slices.Clone(acct.Groups),
		AMR:           []string{"pwd"},
	}, nil
}
