package storage

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// MFACredential is one enrolled second factor of one user (mfa.Credential
// is this type). Data belongs to the factor of Type: a document only that
// factor reads and writes, with its secrets sealed or hashed (for TOTP the
// sealed seed and the last accepted time step; for recovery codes the
// hashes). ID is random; TOTP binds its sealed seed to it, so Data copied
// to another credential does not open. Deleting the user deletes it.
type MFACredential struct {
	ID     string `json:"id"`
	UserID string `json:"user_id"`
	Type   string `json:"type"`
	// Label is the user's name for it ("phone"), shown in lists.
	Label      string    `json:"label,omitempty"`
	Data       []byte    `json:"data"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

// String describes the credential without its Data.
func (c MFACredential) String() string {
	return fmt.Sprintf("mfa.Credential{ID: %q, UserID: %q, Type: %q}", c.ID, c.UserID, c.Type)
}

// GoString is String, for %#v.
func (c MFACredential) GoString() string { return c.String() }

// LogValue keeps Data out of structured logs.
func (c MFACredential) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", c.ID), slog.String("user_id", c.UserID), slog.String("type", c.Type))
}

// MFAStore is the part of Durable that keeps second-factor credentials
// (it satisfies mfa.Store).
type MFAStore interface {
	// CreateMFACredential stores a confirmed credential; ErrConflict if
	// its id exists, ErrNotFound if its user does not.
	CreateMFACredential(ctx context.Context, c MFACredential) error
	// GetMFACredential returns ErrNotFound if there is no such credential.
	GetMFACredential(ctx context.Context, id string) (MFACredential, error)
	// ListMFACredentials returns a user's credentials, oldest first (none:
	// an empty list, no error).
	ListMFACredentials(ctx context.Context, userID string) ([]MFACredential, error)
	// UpdateMFACredential applies fn atomically (the row is locked while
	// fn runs) and returns fn's error wrapped. The updater may not change
	// ID, UserID or Type.
	UpdateMFACredential(ctx context.Context, id string, fn func(MFACredential) (MFACredential, error)) error
	// DeleteMFACredential removes one credential; ErrNotFound if absent.
	DeleteMFACredential(ctx context.Context, id string) error
	// DeleteUserMFACredentials removes every credential of a user and
	// returns how many it removed.
	DeleteUserMFACredentials(ctx context.Context, userID string) (int64, error)
}
