package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/latchkeyid/latchkey/storage"
)

// sidMarks are the revocations recorded for one session id (under
// endedSIDKey, for as long as an access token issued under the session
// may live), read by accessRevoked in one ephemeral read:
//
//   - Ended: the session ended (endSession); every access token issued
//     under it until then is revoked.
//   - Clients: a reused refresh token revoked a client's family
//     (refreshReused); that client's access tokens issued under the
//     session until then are revoked (RFC 9700 4.14.2: the access tokens
//     of a compromised grant go with it).
type sidMarks struct {
	Ended   time.Time            `json:"ended,omitzero"`
	Clients map[string]time.Time `json:"clients,omitempty"`
}

// parseSIDMarks reads a marker; a bare RFC 3339 time is the older
// "ended" marker. ok is false for an unreadable one.
func parseSIDMarks(raw []byte) (m sidMarks, ok bool) {
	if t, err := time.Parse(time.RFC3339Nano, string(raw)); err == nil {
		return sidMarks{Ended: t}, true
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return sidMarks{}, false
	}
	return m, true
}

// revokes tells whether the marks revoke an access token of clientID
// issued at iat (whole seconds: a token minted in the second of the mark
// counts as before it).
func (m sidMarks) revokes(clientID string, iat time.Time) bool {
	if !m.Ended.IsZero() && !iat.After(m.Ended.Truncate(time.Second)) {
		return true
	}
	t, ok := m.Clients[clientID]
	return ok && !iat.After(t.Truncate(time.Second))
}

// markSIDEnded records that session sid ended at now.
func (b *Broker) markSIDEnded(ctx context.Context, sid string, now time.Time) error {
	raw, err := json.Marshal(sidMarks{Ended: now.UTC()})
	if err != nil {
		return err
	}
	return b.eph.Put(ctx, endedSIDKey(sid), raw, b.atTTL)
}

// markSIDClient records that clientID's access tokens under session sid
// issued until now are revoked, keeping what the marker already says
// (compare-and-swap: an "ended" written at the same time is not lost).
func (b *Broker) markSIDClient(ctx context.Context, sid, clientID string, now time.Time) error {
	key := endedSIDKey(sid)
	for range 8 {
		old, err := b.eph.Get(ctx, key)
		found := err == nil
		var m sidMarks
		switch {
		case errors.Is(err, storage.ErrNotFound):
		case err != nil:
			return err
		default:
			var ok bool
			if m, ok = parseSIDMarks(old); !ok {
				m = sidMarks{}
			}
		}
		if m.Clients == nil {
			m.Clients = map[string]time.Time{}
		}
		m.Clients[clientID] = now.UTC()
		raw, err := json.Marshal(m)
		if err != nil {
			return err
		}
		if !found {
			err = b.eph.Create(ctx, key, raw, b.atTTL)
		} else {
			err = b.eph.CompareAndSwap(ctx, key, old, raw, b.atTTL)
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, storage.ErrConflict) && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
	}
	return fmt.Errorf("mark session %s: too many concurrent changes", sid)
}
