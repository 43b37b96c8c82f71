package storage

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// APIKey is an admin API key. The key itself is shown once at creation and
// never stored: Hash is the hex SHA-256 of the whole key. Prefix is the
// short public part at the start of the key; it names the key in lists,
// audit events and the CLI, and is how a presented key is looked up.
type APIKey struct {
	Prefix string   `json:"prefix"`
	Hash   string   `json:"hash"`
	Name   string   `json:"name,omitempty"`
	Scopes []string `json:"scopes"`
	// CreatedBy says who made it ("cli", "admin:<prefix>", "user:<id>").
	CreatedBy string    `json:"created_by,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt zero: never. A rotation shortens the old key's expiry to
	// the end of the overlap period.
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
	// ReplacedBy is the prefix of the key a rotation made from this one.
	ReplacedBy string `json:"replaced_by,omitempty"`
}

// String describes the key without its hash.
func (k APIKey) String() string {
	return fmt.Sprintf("storage.APIKey{Prefix: %q, Scopes: %q}", k.Prefix, k.Scopes)
}

// GoString is String, for %#v.
func (k APIKey) GoString() string { return k.String() }

// LogValue keeps the hash out of structured logs.
func (k APIKey) LogValue() slog.Value {
	return slog.GroupValue(slog.String("prefix", k.Prefix), slog.Any("scopes", k.Scopes))
}

// Active reports whether the key may be used at now: not revoked and not
// expired.
func (k APIKey) Active(now time.Time) bool {
	return k.RevokedAt.IsZero() && (k.ExpiresAt.IsZero() || now.Before(k.ExpiresAt))
}

// APIKeyStore is the part of Durable that keeps admin API keys.
type APIKeyStore interface {
	// CreateAPIKey stores a key; ErrConflict if its prefix or hash exists.
	CreateAPIKey(ctx context.Context, k APIKey) error
	// GetAPIKey returns the key with that prefix; ErrNotFound if none.
	GetAPIKey(ctx context.Context, prefix string) (APIKey, error)
	// ListAPIKeys returns every key, oldest first (none: an empty list).
	ListAPIKeys(ctx context.Context) ([]APIKey, error)
	// UpdateAPIKey applies fn atomically; the updater may not change
	// Prefix or Hash. ErrNotFound if absent.
	UpdateAPIKey(ctx context.Context, prefix string, fn func(APIKey) (APIKey, error)) error
	// TouchAPIKey sets LastUsedAt to at if it is earlier (a use recorded
	// without a read-modify-write); ErrNotFound if absent.
	TouchAPIKey(ctx context.Context, prefix string, at time.Time) error
}
