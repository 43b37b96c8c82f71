package storage

import (
	"context"
	"time"
)

// Durable is the durable store (SQL). Consumers should depend on the few
// methods they use through an interface of their own.
//
// Update functions receive the current record and return the new one; the
// backend applies the change atomically (no lost updates under concurrency)
// and returns the updater's error unchanged (wrapped) if it fails. Updaters
// may be called more than once and must not have side effects.
type Durable interface {
	CreateClient(ctx context.Context, c Client) error
	GetClient(ctx context.Context, id string) (Client, error)
	ListClients(ctx context.Context) ([]Client, error)
	UpdateClient(ctx context.Context, id string, fn func(Client) (Client, error)) error
	DeleteClient(ctx context.Context, id string) error

	CreateConnector(ctx context.Context, c Connector) error
	GetConnector(ctx context.Context, id string) (Connector, error)
	ListConnectors(ctx context.Context) ([]Connector, error)
	UpdateConnector(ctx context.Context, id string, fn func(Connector) (Connector, error)) error
	DeleteConnector(ctx context.Context, id string) error

	CreateUser(ctx context.Context, u User) error
	GetUser(ctx context.Context, id string) (User, error)
	GetUserByUsername(ctx context.Context, username string) (User, error)
	ListUsers(ctx context.Context) ([]User, error)
	UpdateUser(ctx context.Context, id string, fn func(User) (User, error)) error
	DeleteUser(ctx context.Context, id string) error

	// GetConsent returns ErrNotFound when the user granted the client
	// nothing. PutConsent creates or replaces it (ErrNotFound if the user
	// or client does not exist); deleting the user or client deletes it.
	GetConsent(ctx context.Context, userID, clientID string) (Consent, error)
	PutConsent(ctx context.Context, c Consent) error
	DeleteConsent(ctx context.Context, userID, clientID string) error
	// ListUserConsents returns the user's consents, oldest grant first
	// (none: an empty list, no error).
	ListUserConsents(ctx context.Context, userID string) ([]Consent, error)
	// RevokeUserRefreshTokens sets RevokedAt to at on every token of the
	// client issued to the user not yet revoked and returns how many.
	RevokeUserRefreshTokens(ctx context.Context, clientID, userID string, at time.Time) (int64, error)

	MFAStore // second-factor credentials (mfa.go)

	IdentityStore // linked upstream identities (identities.go)

	APIKeyStore // admin API keys (apikeys.go)

	// CreateRefreshToken stores a refresh token as given; ErrConflict if
	// its hash exists, ErrNotFound if its user or client does not.
	// Deleting the user or the client deletes their refresh tokens.
	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	// GetRefreshToken returns the token with that hash; ErrNotFound if
	// none.
	GetRefreshToken(ctx context.Context, hash string) (RefreshToken, error)
	// RotateRefreshToken is the rotation compare-and-swap: if the token
	// with hash is neither rotated nor revoked, it sets its RotatedAt to at
	// and its SuccessorHash to successor.Hash and inserts successor, all
	// in one transaction. ErrConflict if the token was already rotated or
	// revoked (or the successor's hash exists), and nothing changes;
	// ErrNotFound if there is no such token. Of concurrent rotations of
	// one token exactly one succeeds; the others get ErrConflict, never a
	// serialization error.
	RotateRefreshToken(ctx context.Context, hash string, at time.Time, successor RefreshToken) error
	// RevokeRefreshFamily sets RevokedAt to at on every token of the family
	// not yet revoked, including a successor inserted by a rotation that
	// raced with it, and returns how many it revoked (0 for an unknown
	// family).
	RevokeRefreshFamily(ctx context.Context, familyID string, at time.Time) (int64, error)
	// RevokeRefreshTokensBySID sets RevokedAt to at on every token of
	// clientID issued under the SSO session sid (RefreshToken.SID) not yet
	// revoked, including a successor inserted by a rotation that raced
	// with it, and returns how many it revoked. An empty sid or client id
	// revokes nothing.
	RevokeRefreshTokensBySID(ctx context.Context, clientID, sid string, at time.Time) (int64, error)
	// PruneRefreshTokens deletes every token of each family that can no
	// longer refresh: a family created before familyCreatedBefore (its
	// absolute lifetime is over) or whose newest token was issued before
	// lastIssuedBefore (its idle lifetime is over). It returns how many
	// rows it deleted. A family that can still refresh keeps every row,
	// rotated ones included, so the reuse of an old token is still seen.
	PruneRefreshTokens(ctx context.Context, familyCreatedBefore, lastIssuedBefore time.Time) (int64, error)

	// GetKeys returns ErrNotFound before the first UpdateKeys.
	GetKeys(ctx context.Context) (Keys, error)
	// UpdateKeys is a compare-and-swap: fn sees the current record (Version
	// 0 and nil Data when there is none) and returns the next one; the
	// store writes it only if the record is still the one fn saw, setting
	// Version to old.Version+1, and otherwise returns ErrConflict. It does
	// not retry: a replica that loses the race reloads and uses the
	// winner's keys.
	UpdateKeys(ctx context.Context, fn func(Keys) (Keys, error)) (Keys, error)

	// AppendEvent writes an audit event. Inside Tx it commits or rolls
	// back with the change it describes. An empty ID is filled in.
	AppendEvent(ctx context.Context, e Event) error
	ListEvents(ctx context.Context, f EventFilter) ([]Event, error)

	// Tx runs fn in one transaction: every change fn makes through tx is
	// committed together if fn returns nil and rolled back otherwise. Tx
	// inside Tx joins the outer transaction.
	Tx(ctx context.Context, fn func(ctx context.Context, tx Durable) error) error

	Ping(ctx context.Context) error
	Close() error
}

// CounterAdder is implemented by ephemeral stores that add more than one
// to a counter in one operation (the rate limiter's batched counts use it
// when the store has it).
type CounterAdder interface {
	// IncrBy adds n (at least 1) to the counter at key and returns the new
	// value; otherwise as Ephemeral.Incr (created at n with expiry ttl,
	// later additions keep that expiry).
	IncrBy(ctx context.Context, key string, n int64, ttl time.Duration) (int64, error)
}

// Ephemeral is the store for short-lived values with a TTL. Keys are
// opaque strings; values are bytes (the caller encodes). A value past its
// TTL is gone for every method. Every method works on one key, so a Redis
// Cluster can hold them.
type Ephemeral interface {
	// Put stores value under key, replacing any value. ttl must be > 0.
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Create stores value only if key is absent; ErrConflict otherwise.
	Create(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Get returns ErrNotFound for a missing or expired key.
	Get(ctx context.Context, key string) ([]byte, error)
	// Take atomically returns and deletes the value: of concurrent callers,
	// exactly one gets it; the others get ErrNotFound.
	Take(ctx context.Context, key string) ([]byte, error)
	// CompareAndSwap replaces the value only if it is still old:
	// ErrNotFound if the key is missing, ErrConflict if it holds another
	// value. ttl 0 keeps the current expiry.
	CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) error
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Incr adds one to the counter at key and returns the new value. The
	// counter is created at 1 with expiry ttl; later increments keep that
	// expiry (a fixed window).
	Incr(ctx context.Context, key string, ttl time.Duration) (int64, error)
	// TTL returns the time left on key; ErrNotFound if missing or expired.
	TTL(ctx context.Context, key string) (time.Duration, error)

	Ping(ctx context.Context) error
	Close() error
}
