package keys

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/latchkeyid/latchkey/internal/secretbox"
	"github.com/latchkeyid/latchkey/storage"
)

// Rotate rotates every algorithm's keys if force is set or the rotation
// time has come: the next key starts signing, a new next key is generated
// (and published from now on), the old signing key is retired until
// now+RetireAfter, retired keys past their time are dropped, and the next
// rotation is set to now+RotationPeriod. Keys of algorithms no longer
// configured are retired instead of rotated.
//
// The write is a compare-and-swap from the record Rotate read. If another
// replica changed the record first, Rotate loads theirs and returns false
// with no error. When no rotation is due, Rotate still installs the record
// it read if it is newer, so calling it regularly also refreshes.
func (m *Manager) Rotate(ctx context.Context, force bool) (bool, error) {
	rec, err := m.store.GetKeys(ctx)
	if err != nil {
		return false, fmt.Errorf("rotate signing keys: %w", err)
	}
	doc, err := parseDocument(rec.Data)
	if err != nil {
		return false, fmt.Errorf("rotate signing keys (version %d): %w", rec.Version, err)
	}
	now := m.now()
	if !force && now.Before(doc.NextRotation) {
		return false, m.refreshFrom(rec)
	}
	nd, err := m.rotated(ctx, doc, now, force)
	if err != nil {
		return false, fmt.Errorf("rotate signing keys: %w", err)
	}
	snap, err := m.build(0, nd)
	if err != nil {
		return false, fmt.Errorf("rotate signing keys: %w", err)
	}
	written, err := m.swap(ctx, rec.Version, nd, "keys.rotated", map[string]any{"forced": force})
	if errors.Is(err, storage.ErrConflict) {
		m.log.InfoContext(ctx, "signing keys were changed by another replica; using theirs")
		if err := m.Refresh(ctx); err != nil {
			return false, err
		}
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("rotate signing keys: %w", err)
	}
	snap.version = written.Version
	m.install(snap)
	attrs := []any{"version", written.Version, "forced", force, "next_rotation", nd.NextRotation}
	for _, alg := range m.algOrder(nd) {
		if k := nd.Algorithms[alg].Signing.KID; k != "" {
			attrs = append(attrs, "kid_"+alg, k)
		}
	}
	m.log.InfoContext(ctx, "signing keys rotated", attrs...)
	return true, nil
}

// rotated returns the rotated copy of doc. It generates the new next keys,
// which is why it runs before, not inside, the compare-and-swap.
func (m *Manager) rotated(ctx context.Context, doc *document, now time.Time, force bool) (*document, error) {
	nd := doc.clone()
	retireAt := now.Add(m.o.RetireAfter).UTC()
	for _, alg := range m.algOrder(nd) {
		ak := nd.Algorithms[alg]
		var kept []storedKey
		for _, r := range ak.Retired {
			if now.Before(r.RetireAt) {
				kept = append(kept, r)
			}
		}
		configured := slices.Contains(m.o.Algorithms, alg)
		if ak.Signing.KID != "" {
			old := ak.Signing
			old.RetireAt = retireAt
			kept = append(kept, old)
			ak.Signing = storedKey{}
		}
		if configured && ak.Next.KID != "" {
			if published := now.Sub(ak.Next.Created); published < m.o.PrePublish {
				m.log.WarnContext(ctx, "next signing key starts signing before the pre-publish time; relying parties with a cached JWKS may reject new tokens until they refetch it",
					"alg", alg, "kid", ak.Next.KID, "published_for", published.String(), "pre_publish", m.o.PrePublish.String(), "forced", force)
			}
			ak.Signing = ak.Next
			ak.Signing.Activated = now.UTC()
			next, err := newKey(alg, m.o.Rand, m.o.Keyring, now)
			if err != nil {
				return nil, err
			}
			ak.Next = next
		} else {
			// Not configured any more (or malformed): it never signed, so
			// the next key can go at once.
			ak.Next = storedKey{}
		}
		ak.Retired = kept
		if ak.Signing.KID == "" && len(ak.Retired) == 0 {
			delete(nd.Algorithms, alg)
		}
	}
	nd.NextRotation = now.Add(m.o.RotationPeriod).UTC()
	return nd, nil
}

// Rewrap re-seals every private key not sealed under the keyring's first
// encryption key and returns how many it re-sealed. Every key must open
// with the keyring (the old encryption key must still be configured).
func (m *Manager) Rewrap(ctx context.Context) (int, error) {
	for range maxAttempts {
		rec, doc, err := m.load(ctx)
		if err != nil {
			return 0, err
		}
		nd := doc.clone()
		n := 0
		rewrap := func(k *storedKey, role string) error {
			if k.KID == "" || !m.o.Keyring.NeedsRewrap(k.Private) {
				return nil
			}
			kekID, _ := secretbox.KeyID(k.Private)
			sealed, err := m.o.Keyring.Rewrap(k.Private, []byte(k.KID))
			if err != nil {
				return fmt.Errorf("rewrap %s key %q (sealed under encryption key %q): %w", role, k.KID, kekID, err)
			}
			k.Private = sealed
			n++
			return nil
		}
		for _, alg := range m.algOrder(nd) {
			ak := nd.Algorithms[alg]
			if err := rewrap(&ak.Signing, "signing"); err != nil {
				return 0, err
			}
			if err := rewrap(&ak.Next, "next"); err != nil {
				return 0, err
			}
			for i := range ak.Retired {
				if err := rewrap(&ak.Retired[i], "retired"); err != nil {
					return 0, err
				}
			}
		}
		if n == 0 {
			return 0, m.refreshFrom(rec)
		}
		snap, err := m.build(0, nd)
		if err != nil {
			return 0, fmt.Errorf("rewrap signing keys: %w", err)
		}
		written, err := m.swap(ctx, rec.Version, nd, "keys.rewrapped", map[string]any{"keys": n, "encryption_key": m.o.Keyring.PrimaryKeyID()})
		if errors.Is(err, storage.ErrConflict) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("rewrap signing keys: %w", err)
		}
		snap.version = written.Version
		m.install(snap)
		m.log.InfoContext(ctx, "signing keys re-encrypted", "count", n, "encryption_key", m.o.Keyring.PrimaryKeyID(), "version", written.Version)
		return n, nil
	}
	return 0, fmt.Errorf("rewrap signing keys: the keys record changed %d times in a row", maxAttempts)
}

// State is where a key is in its life.
type State string

// Key states.
const (
	StateSigning State = "signing" // signs new tokens
	StateNext    State = "next"    // published, signs after the next rotation
	StateRetired State = "retired" // published until Retires, signs nothing
)

// KeyInfo describes one key without private material.
type KeyInfo struct {
	KID       string    `json:"kid"`
	Algorithm string    `json:"alg"`
	State     State     `json:"state"`
	Created   time.Time `json:"created"`
	// Activates is when the key started (signing, retired) or will start
	// (next) signing.
	Activates time.Time `json:"activates,omitzero"`
	// Retires is when a retired key leaves (or left) the JWKS.
	Retires time.Time `json:"retires,omitzero"`
	// EncryptionKey is the id of the encryption key sealing the private key.
	EncryptionKey string `json:"encryption_key"`
}

// List reads the record from the store and describes every key in it, per
// algorithm: signing, next, then retired ones (including any whose retire
// time has passed but that the next rotation has not dropped yet). It does
// not decrypt anything.
func (m *Manager) List(ctx context.Context) ([]KeyInfo, error) {
	_, doc, err := m.load(ctx)
	if err != nil {
		return nil, err
	}
	var out []KeyInfo
	info := func(k storedKey, st State, activates time.Time) {
		if k.KID == "" {
			return
		}
		kek, _ := secretbox.KeyID(k.Private)
		out = append(out, KeyInfo{KID: k.KID, Algorithm: k.Alg, State: st, Created: k.Created,
			Activates: activates, Retires: k.RetireAt, EncryptionKey: kek})
	}
	for _, alg := range m.algOrder(doc) {
		ak := doc.Algorithms[alg]
		info(ak.Signing, StateSigning, ak.Signing.Activated)
		info(ak.Next, StateNext, doc.NextRotation)
		for _, r := range ak.Retired {
			info(r, StateRetired, r.Activated)
		}
	}
	return out, nil
}
