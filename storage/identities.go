package storage

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Identity links a user to an account at an upstream connector: the pair
// (ConnectorID, Subject) is unique and names one user. ConnectorData is
// what the connector keeps to re-check the user later (an upstream
// refresh token, sealed by the connector with the keyring); it is never
// logged. Deleting the user deletes its identities.
type Identity struct {
	ConnectorID string `json:"connector_id"`
	Subject     string `json:"subject"`
	UserID      string `json:"user_id"`
	// Email is the address the upstream reported at the last sign-in
	// (for display and audits; linking reads the user record).
	Email         string    `json:"email,omitempty"`
	ConnectorData []byte    `json:"connector_data,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	LastLoginAt   time.Time `json:"last_login_at,omitzero"`
}

// String describes the identity without its ConnectorData.
func (i Identity) String() string {
	return fmt.Sprintf("storage.Identity{ConnectorID: %q, Subject: %q, UserID: %q}", i.ConnectorID, i.Subject, i.UserID)
}

// GoString is String, for %#v.
func (i Identity) GoString() string { return i.String() }

// LogValue keeps ConnectorData out of structured logs.
func (i Identity) LogValue() slog.Value {
	return slog.GroupValue(slog.String("connector_id", i.ConnectorID), slog.String("subject", i.Subject),
		slog.String("user_id", i.UserID))
}

// IdentityStore is the part of Durable that keeps linked upstream
// identities.
type IdentityStore interface {
	// CreateIdentity links an identity; ErrConflict if (ConnectorID,
	// Subject) is linked already, ErrNotFound if the user does not exist.
	CreateIdentity(ctx context.Context, id Identity) error
	// GetIdentity returns ErrNotFound if (connectorID, subject) is not
	// linked.
	GetIdentity(ctx context.Context, connectorID, subject string) (Identity, error)
	// ListUserIdentities returns a user's identities, oldest first (none:
	// an empty list, no error).
	ListUserIdentities(ctx context.Context, userID string) ([]Identity, error)
	// UpdateIdentity applies fn atomically; the updater may not change
	// ConnectorID, Subject or UserID. ErrNotFound if absent.
	UpdateIdentity(ctx context.Context, connectorID, subject string, fn func(Identity) (Identity, error)) error
	// DeleteIdentity unlinks one identity; ErrNotFound if absent.
	DeleteIdentity(ctx context.Context, connectorID, subject string) error
	// ListUsersByEmail returns the users whose email is exactly email,
	// oldest first (linking by verified email reads it).
	ListUsersByEmail(ctx context.Context, email string) ([]User, error)
}
