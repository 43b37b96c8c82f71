package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/storage"
)

// Session is one browser's SSO session. The cookie holds a random value;
// the record is keyed by its SHA-256, so a store dump reveals no cookie.
type Session struct {
	// SID is the stable public id put in tokens (`sid`); it never changes
	// for the life of the session, unlike the cookie value.
	SID         string    `json:"sid"`
	UserID      string    `json:"user_id"`
	AuthTime    time.Time `json:"auth_time"`
	AMR         []string  `json:"amr"`
	ConnectorID string    `json:"connector_id"`
	// Factors records each factor with the time it was used.
	Factors   map[string]time.Time `json:"factors,omitempty"`
	Clients   []string             `json:"clients,omitempty"`
	CreatedAt time.Time            `json:"created_at"`
	// IdleExpiry moves forward on use (at most once a minute); the session
	// never outlives AbsoluteExpiry.
	IdleExpiry     time.Time `json:"idle_expiry"`
	AbsoluteExpiry time.Time `json:"absolute_expiry"`
}

// ErrNoSession: no session for that cookie value (absent, expired, ended).
var ErrNoSession = errors.New("session: no session")

// Options configure a Store.
type Options struct {
	IdleTimeout     time.Duration // default 24h
	AbsoluteTimeout time.Duration // default 7 days (168h)
	Clock           clock.Clock
	Rand            io.Reader
}

// Store keeps sessions in the ephemeral store.
type Store struct {
	eph      storage.Ephemeral
	idle     time.Duration
	absolute time.Duration
	clock    clock.Clock
	rand     io.Reader
}

// NewStore returns a session store over eph.
func NewStore(eph storage.Ephemeral, o Options) *Store {
	s := &Store{eph: eph, idle: o.IdleTimeout, absolute: o.AbsoluteTimeout, clock: o.Clock, rand: o.Rand}
	if s.idle <= 0 {
		s.idle = 24 * time.Hour
	}
	if s.absolute <= 0 {
		s.absolute = 7 * 24 * time.Hour
	}
	if s.clock == nil {
		s.clock = clock.Real{}
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	return s
}

// refreshEvery bounds how often a read moves the idle expiry forward.
const refreshEvery = time.Minute

func key(cookie string) string {
	sum := sha256.Sum256([]byte(cookie))
	return "session:" + hex.EncodeToString(sum[:])
}

func (s *Store) random() (string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Create starts a session for a user who just signed in and returns the
// cookie value. amr lists the factors used now.
func (s *Store) Create(ctx context.Context, userID, connectorID string, amr []string) (string, Session, error) {
	now := s.clock.Now().UTC()
	cookie, err := s.random()
	if err != nil {
		return "", Session{}, err
	}
	sid, err := s.random()
	if err != nil {
		return "", Session{}, err
	}
	sess := Session{
		SID: sid, UserID: userID, AuthTime: now, AMR: amr, ConnectorID: connectorID,
		Factors: map[string]time.Time{}, CreatedAt: now,
		IdleExpiry: now.Add(s.idle), AbsoluteExpiry: now.Add(s.absolute),
	}
	for _, f := range amr {
		sess.Factors[f] = now
	}
	if err := s.put(ctx, cookie, sess, now); err != nil {
		return "", Session{}, err
	}
	return cookie, sess, nil
}

// Renew records a sign-in by userID in a browser that presented
// oldCookie ("" if none) and returns the new cookie value. The cookie value
// always changes, and the old value stops working, so a value known before
// the sign-in is worthless after it. When oldCookie names a live session of
// the same user, the SSO session continues: its SID, creation time and
// clients stay, and its auth time, AMR and idle and absolute expiry start
// again from this sign-in (the factors keep their earlier times, updated
// for the factors used now). Otherwise the old session, if any, ends and a
// new one starts.
func (s *Store) Renew(ctx context.Context, oldCookie, userID, connectorID string, amr []string) (string, Session, error) {
	old, ok, err := s.load(ctx, oldCookie)
	if err != nil {
		return "", Session{}, err
	}
	now := s.clock.Now().UTC()
	if !ok || old.UserID != userID || !now.Before(old.IdleExpiry) || !now.Before(old.AbsoluteExpiry) {
		if ok {
			if err := s.Delete(ctx, oldCookie); err != nil {
				return "", Session{}, err
			}
		}
		return s.Create(ctx, userID, connectorID, amr)
	}
	cookie, err := s.random()
	if err != nil {
		return "", Session{}, err
	}
	sess := old
	sess.AuthTime, sess.AMR, sess.ConnectorID = now, amr, connectorID
	sess.IdleExpiry, sess.AbsoluteExpiry = now.Add(s.idle), now.Add(s.absolute)
	if sess.Factors == nil {
		sess.Factors = map[string]time.Time{}
	}
	for _, f := range amr {
		sess.Factors[f] = now
	}
	if err := s.put(ctx, cookie, sess, now); err != nil {
		return "", Session{}, err
	}
	if err := s.Delete(ctx, oldCookie); err != nil {
		return "", Session{}, err
	}
	return cookie, sess, nil
}

// load reads the record of a cookie value as stored; ok is false when
// there is none. A record that cannot be decoded is returned as a session
// of no user, so that Renew replaces it.
func (s *Store) load(ctx context.Context, cookie string) (Session, bool, error) {
	if cookie == "" || len(cookie) > 128 {
		return Session{}, false, nil
	}
	b, err := s.eph.Get(ctx, key(cookie))
	if errors.Is(err, storage.ErrNotFound) {
		return Session{}, false, nil
	}
	if err != nil {
		return Session{}, false, fmt.Errorf("load session: %w", err)
	}
	var sess Session
	if err := json.Unmarshal(b, &sess); err != nil {
		return Session{}, true, nil
	}
	return sess, true, nil
}

func (s *Store) put(ctx context.Context, cookie string, sess Session, now time.Time) error {
	b, err := json.Marshal(sess)
	if err != nil {
		return fmt.Errorf("encode session: %w", err)
	}
	ttl := expiry(sess).Sub(now)
	if ttl <= 0 {
		return ErrNoSession
	}
	if err := s.eph.Put(ctx, key(cookie), b, ttl); err != nil {
		return fmt.Errorf("store session: %w", err)
	}
	return nil
}

// Get returns the session for a cookie value, extending its idle expiry
// (at most once a minute). ErrNoSession when there is none.
func (s *Store) Get(ctx context.Context, cookie string) (Session, error) {
	if cookie == "" || len(cookie) > 128 {
		return Session{}, ErrNoSession
	}
	b, err := s.eph.Get(ctx, key(cookie))
	if errors.Is(err, storage.ErrNotFound) {
		return Session{}, ErrNoSession
	}
	if err != nil {
		return Session{}, fmt.Errorf("load session: %w", err)
	}
	var sess Session
	if err := json.Unmarshal(b, &sess); err != nil {
		return Session{}, fmt.Errorf("decode session: %w", err)
	}
	now := s.clock.Now().UTC()
	if !now.Before(sess.IdleExpiry) || !now.Before(sess.AbsoluteExpiry) {
		return Session{}, ErrNoSession
	}
	if sess.IdleExpiry.Sub(now) < s.idle-refreshEvery {
		next := sess
		next.IdleExpiry = now.Add(s.idle)
		nb, err := json.Marshal(next)
		if err == nil {
			ttl := expiry(next).Sub(now)
			// A lost race only means another request extended it first.
			if err := s.eph.CompareAndSwap(ctx, key(cookie), b, nb, ttl); err == nil {
				sess = next
			}
		}
	}
	return sess, nil
}

// AddClient records that the session signed into clientID.
func (s *Store) AddClient(ctx context.Context, cookie, clientID string) error {
	for range 5 {
		b, err := s.eph.Get(ctx, key(cookie))
		if errors.Is(err, storage.ErrNotFound) {
			return ErrNoSession
		}
		if err != nil {
			return fmt.Errorf("load session: %w", err)
		}
		var sess Session
		if err := json.Unmarshal(b, &sess); err != nil {
			return fmt.Errorf("decode session: %w", err)
		}
		for _, c := range sess.Clients {
			if c == clientID {
				return nil
			}
		}
		sess.Clients = append(sess.Clients, clientID)
		nb, err := json.Marshal(sess)
		if err != nil {
			return fmt.Errorf("encode session: %w", err)
		}
		err = s.eph.CompareAndSwap(ctx, key(cookie), b, nb, 0)
		if err == nil {
			return nil
		}
		if !errors.Is(err, storage.ErrConflict) {
			return fmt.Errorf("update session: %w", err)
		}
	}
	return fmt.Errorf("update session: %w", storage.ErrConflict)
}

// Delete ends the session named by the cookie value.
func (s *Store) Delete(ctx context.Context, cookie string) error {
	if err := s.eph.Delete(ctx, key(cookie)); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// expiry is when the session ends unless used again.
func expiry(s Session) time.Time {
	if s.AbsoluteExpiry.Before(s.IdleExpiry) {
		return s.AbsoluteExpiry
	}
	return s.IdleExpiry
}
