package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/storage"
)

// An API key is "lk_" + 10 hex digits (the public prefix) + "_" + 43
// base64url characters (256 random bits). Only the prefix and the SHA-256
// of the whole key are stored.
const (
	keyMarker    = "lk_"
	prefixHexLen = 10
	prefixLen    = len(keyMarker) + prefixHexLen
	secretLen    = 43
	keyLen       = prefixLen + 1 + secretLen
)

// Resources are what scopes name; each has :read and :write (audit only
// :read), and resource:* grants both.
var Resources = []string{"clients", "connectors", "users", "keys", "audit"}

// ValidScope reports whether s is a scope a key may hold.
func ValidScope(s string) bool {
	res, act, ok := strings.Cut(s, ":")
	if !ok || !slices.Contains(Resources, res) {
		return false
	}
	switch act {
	case "read", "*":
		return true
	case "write":
		return res != "audit"
	}
	return false
}

// scopeAllows reports whether the granted scopes include need
// ("clients:write"): exactly, or by "clients:*".
func scopeAllows(granted []string, need string) bool {
	res, _, _ := strings.Cut(need, ":")
	return slices.Contains(granted, need) || slices.Contains(granted, res+":*")
}

// CheckScopes returns a problem for each scope that is not valid; none
// is a problem too.
func CheckScopes(scopes []string) []FieldProblem {
	if len(scopes) == 0 {
		return []FieldProblem{{Field: "scopes", Message: "at least one scope is required (" + strings.Join(ScopeExamples(), ", ") + ")"}}
	}
	var out []FieldProblem
	for i, s := range scopes {
		if !ValidScope(s) {
			out = append(out, FieldProblem{Field: fmt.Sprintf("scopes[%d]", i),
				Message: fmt.Sprintf("%q is not a scope: want RESOURCE:read, RESOURCE:write or RESOURCE:* with RESOURCE one of %s (audit is read only)", s, strings.Join(Resources, ", "))})
		}
	}
	return out
}

// ScopeExamples lists every valid scope but the wildcards.
func ScopeExamples() []string {
	var out []string
	for _, r := range Resources {
		out = append(out, r+":read")
		if r != "audit" {
			out = append(out, r+":write")
		}
	}
	return out
}

// HashKey is the stored form of an API key: hex SHA-256.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// parseKey splits a presented key into its prefix; ok is false when it
// does not have the shape of a key.
func parseKey(key string) (prefix string, ok bool) {
	if len(key) != keyLen || !strings.HasPrefix(key, keyMarker) || key[prefixLen] != '_' {
		return "", false
	}
	if _, err := hex.DecodeString(key[len(keyMarker):prefixLen]); err != nil {
		return "", false
	}
	if _, err := base64.RawURLEncoding.DecodeString(key[prefixLen+1:]); err != nil {
		return "", false
	}
	return key[:prefixLen], true
}

// Keys creates, rotates, revokes and checks API keys. The CLI and the
// server share it.
type Keys struct {
	Store storage.Durable
	Clock clock.Clock
	// Rand is the randomness for new keys; nil is crypto/rand.
	Rand io.Reader
}

func (k Keys) now() time.Time {
	if k.Clock == nil {
		return time.Now()
	}
	return k.Clock.Now()
}

func (k Keys) newKey() (string, error) {
	r := k.Rand
	if r == nil {
		r = rand.Reader
	}
	b := make([]byte, prefixHexLen/2+32)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("random api key: %w", err)
	}
	return keyMarker + hex.EncodeToString(b[:prefixHexLen/2]) + "_" + base64.RawURLEncoding.EncodeToString(b[prefixHexLen/2:]), nil
}

// ErrInvalidScopes is returned by Create for an empty or unknown scope;
// it wraps the problems as text.
var ErrInvalidScopes = errors.New("invalid scopes")

// Create makes a key with the scopes and expiry (zero: never) and returns
// it; the key is shown once and only its hash is kept.
func (k Keys) Create(ctx context.Context, name string, scopes []string, expiresAt time.Time, actor string) (string, storage.APIKey, error) {
	if probs := CheckScopes(scopes); len(probs) > 0 {
		msgs := make([]string, len(probs))
		for i, p := range probs {
			msgs[i] = p.Field + ": " + p.Message
		}
		return "", storage.APIKey{}, fmt.Errorf("%w: %s", ErrInvalidScopes, strings.Join(msgs, "; "))
	}
	now := k.now()
	if !expiresAt.IsZero() && !expiresAt.After(now) {
		return "", storage.APIKey{}, errors.New("the expiry is in the past")
	}
	token, err := k.newKey()
	if err != nil {
		return "", storage.APIKey{}, err
	}
	rec := storage.APIKey{Prefix: token[:prefixLen], Hash: HashKey(token), Name: name, Scopes: slices.Clone(scopes),
		CreatedBy: actor, CreatedAt: now, ExpiresAt: expiresAt}
	err = k.Store.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
		if err := tx.CreateAPIKey(ctx, rec); err != nil {
			return err
		}
		return tx.AppendEvent(ctx, storage.Event{Type: "apikey.created", Actor: actor,
			Data: map[string]any{"prefix": rec.Prefix, "scopes": rec.Scopes, "name": name}})
	})
	if err != nil {
		return "", storage.APIKey{}, fmt.Errorf("create api key: %w", err)
	}
	return token, rec, nil
}

// ErrKeyInactive: the key is revoked or expired and cannot be rotated.
var ErrKeyInactive = errors.New("the key is revoked or expired")

// Rotate makes a successor of the key with the same name, scopes and
// lifetime, and lets the old key work for overlap more (never longer than
// it would have). It returns the new key, shown once.
func (k Keys) Rotate(ctx context.Context, prefix string, overlap time.Duration, actor string) (string, storage.APIKey, error) {
	if overlap < 0 {
		return "", storage.APIKey{}, errors.New("the overlap must not be negative")
	}
	token, err := k.newKey()
	if err != nil {
		return "", storage.APIKey{}, err
	}
	now := k.now()
	var next storage.APIKey
	err = k.Store.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
		err := tx.UpdateAPIKey(ctx, prefix, func(old storage.APIKey) (storage.APIKey, error) {
			if !old.Active(now) || old.ReplacedBy != "" {
				return old, ErrKeyInactive
			}
			next = storage.APIKey{Prefix: token[:prefixLen], Hash: HashKey(token), Name: old.Name, Scopes: old.Scopes,
				CreatedBy: actor, CreatedAt: now}
			if !old.ExpiresAt.IsZero() {
				next.ExpiresAt = now.Add(old.ExpiresAt.Sub(old.CreatedAt))
			}
			end := now.Add(overlap)
			if old.ExpiresAt.IsZero() || end.Before(old.ExpiresAt) {
				old.ExpiresAt = end
			}
			old.ReplacedBy = next.Prefix
			return old, nil
		})
		if err != nil {
			return err
		}
		if err := tx.CreateAPIKey(ctx, next); err != nil {
			return err
		}
		return tx.AppendEvent(ctx, storage.Event{Type: "apikey.rotated", Actor: actor,
			Data: map[string]any{"prefix": prefix, "new_prefix": next.Prefix, "overlap": overlap.String()}})
	})
	if err != nil {
		return "", storage.APIKey{}, fmt.Errorf("rotate api key %q: %w", prefix, err)
	}
	return token, next, nil
}

// Revoke ends the key now. Revoking a revoked key changes nothing.
func (k Keys) Revoke(ctx context.Context, prefix, actor string) error {
	now := k.now()
	err := k.Store.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
		err := tx.UpdateAPIKey(ctx, prefix, func(old storage.APIKey) (storage.APIKey, error) {
			if old.RevokedAt.IsZero() {
				old.RevokedAt = now
			}
			return old, nil
		})
		if err != nil {
			return err
		}
		return tx.AppendEvent(ctx, storage.Event{Type: "apikey.revoked", Actor: actor, Data: map[string]any{"prefix": prefix}})
	})
	if err != nil {
		return fmt.Errorf("revoke api key %q: %w", prefix, err)
	}
	return nil
}

// errBadKey is every reason a presented key is refused: the answer never
// says which (unknown, wrong secret, expired, revoked); the audit log does.
var errBadKey = errors.New("invalid api key")

// authenticate finds the active key token names. reason says why it was
// refused (for the audit log); prefix is set when the token had the shape
// of a key.
func (k Keys) authenticate(ctx context.Context, token string) (rec storage.APIKey, prefix, reason string, err error) {
	prefix, ok := parseKey(token)
	if !ok {
		return storage.APIKey{}, "", "malformed", errBadKey
	}
	rec, err = k.Store.GetAPIKey(ctx, prefix)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.APIKey{}, prefix, "unknown", errBadKey
	}
	if err != nil {
		return storage.APIKey{}, prefix, "", fmt.Errorf("load api key: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(rec.Hash), []byte(HashKey(token))) != 1 {
		return storage.APIKey{}, prefix, "wrong secret", errBadKey
	}
	now := k.now()
	switch {
	case !rec.RevokedAt.IsZero():
		return storage.APIKey{}, prefix, "revoked", errBadKey
	case !rec.Active(now):
		return storage.APIKey{}, prefix, "expired", errBadKey
	}
	return rec, prefix, "", nil
}
