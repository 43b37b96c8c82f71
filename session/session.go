package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/storage"
)

// Session is one SSO session of one user. The cookie holds a random value;
// only the SHA-256 of it is stored, so a store dump reveals no cookie.
type Session struct {
	// SID is the stable public id put in tokens (`sid`); it never changes
	// for the life of the session, unlike the cookie value.
	SID         string    `json:"sid"`
	UserID      string    `json:"user_id"`
	AuthTime    time.Time `json:"auth_time"`
	AMR         []string  `json:"amr"`
	ConnectorID string    `json:"connector_id"`
	// Factors records each factor with the time it was last used.
	Factors map[string]time.Time `json:"factors,omitempty"`
	// Steps are the authentication steps of the session: the primary
	// login (Factor "") and each verified second factor, each with its
	// amr values and time. The broker derives the session's amr and acr
	// from them (mfa.AMR, mfa.ACRFor); neither is stored apart. AMR above
	// is the primary login's values.
	Steps []Step `json:"steps,omitempty"`
	// Clients are the clients the session signed into, in order.
	Clients   []string  `json:"clients,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// Device is the browser of the last sign-in (shown on the account
	// page so the user can tell sessions apart).
	Device Device `json:"device,omitzero"`
	// IdleExpiry moves forward on use (at most once a minute); the session
	// never outlives AbsoluteExpiry.
	IdleExpiry     time.Time `json:"idle_expiry"`
	AbsoluteExpiry time.Time `json:"absolute_expiry"`
}

// Device describes the browser that signed in: its IP address and
// User-Agent header (at most 256 bytes), as the request had them.
type Device struct {
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"ua,omitempty"`
}

// Step is one authentication step (the shape of mfa.Step, which session
// may not import).
type Step struct {
	// Factor is the second-factor type, or "" for the primary login.
	Factor string    `json:"factor,omitempty"`
	AMR    []string  `json:"amr"`
	At     time.Time `json:"at"`
}

// AllSteps returns the session's steps; a session stored before steps
// were recorded has one primary step made of its AMR and AuthTime.
func (s Session) AllSteps() []Step {
	if len(s.Steps) == 0 && len(s.AMR) > 0 {
		return []Step{{AMR: slices.Clone(s.AMR), At: s.AuthTime}}
	}
	return slices.Clone(s.Steps)
}

// withPrimary replaces the primary step with a new sign-in, keeping the
// second-factor steps.
func withPrimary(steps []Step, amr []string, at time.Time) []Step {
	out := []Step{{AMR: slices.Clone(amr), At: at}}
	for _, st := range steps {
		if st.Factor != "" {
			out = append(out, st)
		}
	}
	return out
}

// ErrNoSession: no session for that cookie value or sid (absent, expired,
// ended, or a cookie value that was replaced).
var ErrNoSession = errors.New("session: no session")

// Options configure a Store.
type Options struct {
	IdleTimeout     time.Duration // default 24h
	AbsoluteTimeout time.Duration // default 7 days (168h)
	Clock           clock.Clock
	Rand            io.Reader
}

// Store keeps sessions in the ephemeral store. Three kinds of keys, each
// read and written alone (so a Redis Cluster can hold them):
//
//	session:<sha256(cookie)>  the sid of the session the cookie names
//	session-sid:<sid>         the session record (and the hash of its one valid cookie)
//	user-sessions:<user id>   the user's sids with their absolute expiry
//
// The record is keyed by the stable sid, so rotating the cookie changes
// only the pointer, and the per-user index (for "sign out everywhere",
// `latchkey sessions`, disabling a user) never needs rewriting on
// rotation. Every change to a record or the index is a compare-and-swap.
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

// casAttempts bounds the compare-and-swap loops; each failed attempt means
// another request changed the same key at the same moment.
const casAttempts = 10

// maxCookieLen bounds what is hashed and looked up; ours are 43 bytes.
const maxCookieLen = 128

func hashCookie(cookie string) string {
	sum := sha256.Sum256([]byte(cookie))
	return hex.EncodeToString(sum[:])
}

func cookieKey(hash string) string   { return "session:" + hash }
func recordKey(sid string) string    { return "session-sid:" + sid }
func userKey(userID string) string   { return "user-sessions:" + userID }
func validCookie(cookie string) bool { return cookie != "" && len(cookie) <= maxCookieLen }

// record is what the store holds under recordKey.
type record struct {
	Session
	// CookieHash is the hex SHA-256 of the one cookie value that names
	// the session now. A pointer left behind by an older value (rotated
	// away) does not match it and finds nothing.
	CookieHash string `json:"cookie_hash"`
}

func (s *Store) random() (string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func (s *Store) now() time.Time { return s.clock.Now().UTC() }

// alive reports whether a session is still within both timeouts.
func alive(sess Session, now time.Time) bool {
	return now.Before(sess.IdleExpiry) && now.Before(sess.AbsoluteExpiry)
}

// expiry is when the session ends unless used again.
func expiry(s Session) time.Time {
	if s.AbsoluteExpiry.Before(s.IdleExpiry) {
		return s.AbsoluteExpiry
	}
	return s.IdleExpiry
}

// Create starts a session for a user who just signed in and returns the
// cookie value. amr lists the factors used now.
func (s *Store) Create(ctx context.Context, userID, connectorID string, amr []string) (string, Session, error) {
	return s.create(ctx, userID, connectorID, amr, Device{})
}

func (s *Store) create(ctx context.Context, userID, connectorID string, amr []string, dev Device) (string, Session, error) {
	if userID == "" {
		return "", Session{}, errors.New("create session: no user id")
	}
	now := s.now()
	cookie, err := s.random()
	if err != nil {
		return "", Session{}, err
	}
	sid, err := s.random()
	if err != nil {
		return "", Session{}, err
	}
	sess := Session{
		SID: sid, UserID: userID, AuthTime: now, AMR: slices.Clone(amr), ConnectorID: connectorID,
		Factors: map[string]time.Time{}, Steps: withPrimary(nil, amr, now), CreatedAt: now, Device: dev,
		IdleExpiry: now.Add(s.idle), AbsoluteExpiry: now.Add(s.absolute),
	}
	for _, f := range amr {
		sess.Factors[f] = now
	}
	// The index first: a crash after it leaves an entry without a record,
	// which readers skip; the other order could leave a session that
	// "sign out everywhere" cannot find.
	if err := s.indexPut(ctx, userID, sid, sess.AbsoluteExpiry); err != nil {
		return "", Session{}, err
	}
	rec := record{Session: sess, CookieHash: hashCookie(cookie)}
	b, err := json.Marshal(rec)
	if err != nil {
		return "", Session{}, fmt.Errorf("encode session: %w", err)
	}
	if err := s.eph.Create(ctx, recordKey(sid), b, expiry(sess).Sub(now)); err != nil {
		return "", Session{}, fmt.Errorf("store session: %w", err)
	}
	if err := s.eph.Put(ctx, cookieKey(rec.CookieHash), []byte(sid), sess.AbsoluteExpiry.Sub(now)); err != nil {
		return "", Session{}, fmt.Errorf("store session cookie: %w", err)
	}
	return cookie, sess, nil
}

// resolve returns the record a cookie value names and its stored bytes
// (for a compare-and-swap). ok is false when there is none, or the cookie
// is no longer the session's current value. Expiry is not checked.
func (s *Store) resolve(ctx context.Context, cookie string) (record, []byte, bool, error) {
	if !validCookie(cookie) {
		return record{}, nil, false, nil
	}
	hash := hashCookie(cookie)
	sid, err := s.eph.Get(ctx, cookieKey(hash))
	if errors.Is(err, storage.ErrNotFound) {
		return record{}, nil, false, nil
	}
	if err != nil {
		return record{}, nil, false, fmt.Errorf("load session cookie: %w", err)
	}
	rec, raw, ok, err := s.loadRecord(ctx, string(sid))
	if err != nil || !ok {
		return record{}, nil, false, err
	}
	if subtle.ConstantTimeCompare([]byte(rec.CookieHash), []byte(hash)) != 1 {
		return record{}, nil, false, nil
	}
	return rec, raw, true, nil
}

// loadRecord reads the record of sid as stored. A record that cannot be
// decoded is an error.
func (s *Store) loadRecord(ctx context.Context, sid string) (record, []byte, bool, error) {
	if sid == "" || len(sid) > maxCookieLen {
		return record{}, nil, false, nil
	}
	raw, err := s.eph.Get(ctx, recordKey(sid))
	if errors.Is(err, storage.ErrNotFound) {
		return record{}, nil, false, nil
	}
	if err != nil {
		return record{}, nil, false, fmt.Errorf("load session: %w", err)
	}
	var rec record
	if err := json.Unmarshal(raw, &rec); err != nil {
		return record{}, nil, false, fmt.Errorf("decode session: %w", err)
	}
	return rec, raw, true, nil
}

// Get returns the session for a cookie value, extending its idle expiry
// (at most once a minute). ErrNoSession when there is none.
func (s *Store) Get(ctx context.Context, cookie string) (Session, error) {
	rec, raw, ok, err := s.resolve(ctx, cookie)
	if err != nil {
		return Session{}, err
	}
	now := s.now()
	if !ok || !alive(rec.Session, now) {
		return Session{}, ErrNoSession
	}
	if rec.IdleExpiry.Sub(now) < s.idle-refreshEvery {
		next := rec
		next.IdleExpiry = now.Add(s.idle)
		nb, err := json.Marshal(next)
		if err == nil {
			// A lost race only means another request changed it first.
			if err := s.eph.CompareAndSwap(ctx, recordKey(rec.SID), raw, nb, expiry(next.Session).Sub(now)); err == nil {
				rec = next
			}
		}
	}
	return rec.Session, nil
}

// GetBySID returns a live session by its public id; ErrNoSession when
// there is none. It does not extend the session.
func (s *Store) GetBySID(ctx context.Context, sid string) (Session, error) {
	rec, _, ok, err := s.loadRecord(ctx, sid)
	if err != nil {
		return Session{}, err
	}
	if !ok || !alive(rec.Session, s.now()) {
		return Session{}, ErrNoSession
	}
	return rec.Session, nil
}

// update applies fn to the record of the session cookie names, with a
// compare-and-swap retried on conflict. fn may be called more than once.
// ttl 0 keeps the record's expiry.
func (s *Store) update(ctx context.Context, cookie string, fn func(r *record) (changed bool, ttl time.Duration)) (record, error) {
	for range casAttempts {
		rec, raw, ok, err := s.resolve(ctx, cookie)
		if err != nil {
			return record{}, err
		}
		if !ok || !alive(rec.Session, s.now()) {
			return record{}, ErrNoSession
		}
		changed, ttl := fn(&rec)
		if !changed {
			return rec, nil
		}
		nb, err := json.Marshal(rec)
		if err != nil {
			return record{}, fmt.Errorf("encode session: %w", err)
		}
		err = s.eph.CompareAndSwap(ctx, recordKey(rec.SID), raw, nb, ttl)
		switch {
		case err == nil:
			return rec, nil
		case errors.Is(err, storage.ErrNotFound):
			return record{}, ErrNoSession
		case !errors.Is(err, storage.ErrConflict):
			return record{}, fmt.Errorf("update session: %w", err)
		}
	}
	return record{}, fmt.Errorf("update session: %w", storage.ErrConflict)
}

// Renew records a sign-in by userID in a browser that presented
// oldCookie ("" if none) and returns the new cookie value. The cookie value
// always changes, and the old value stops working, so a value known before
// the sign-in is worthless after it (session fixation).
//
// When oldCookie names a live session of the same user, that SSO session
// continues: its SID, creation time and clients stay, and its auth time,
// AMR and idle and absolute expiry start again from this sign-in (the
// factors keep their earlier times, updated for the factors used now).
// Otherwise a new session starts; a live session of another user that
// oldCookie names is left alone (the caller ends it, which notifies its
// clients, or keeps it as another account of the browser).
func (s *Store) Renew(ctx context.Context, oldCookie, userID, connectorID string, amr []string) (string, Session, error) {
	return s.RenewOn(ctx, oldCookie, userID, connectorID, amr, Device{})
}

// RenewOn is Renew recording the browser that signed in (dev; a zero
// Device keeps what the session had).
func (s *Store) RenewOn(ctx context.Context, oldCookie, userID, connectorID string, amr []string, dev Device) (string, Session, error) {
	old, _, ok, err := s.resolve(ctx, oldCookie)
	if err != nil {
		return "", Session{}, err
	}
	if !ok || old.UserID != userID || !alive(old.Session, s.now()) {
		return s.create(ctx, userID, connectorID, amr, dev)
	}
	cookie, err := s.random()
	if err != nil {
		return "", Session{}, err
	}
	newHash := hashCookie(cookie)
	var absolute time.Time
	rec, err := s.update(ctx, oldCookie, func(r *record) (bool, time.Duration) {
		now := s.now()
		r.Steps = withPrimary(r.AllSteps(), amr, now)
		r.AuthTime, r.AMR, r.ConnectorID = now, slices.Clone(amr), connectorID
		if dev != (Device{}) {
			r.Device = dev
		}
		r.IdleExpiry, r.AbsoluteExpiry = now.Add(s.idle), now.Add(s.absolute)
		if r.Factors == nil {
			r.Factors = map[string]time.Time{}
		}
		for _, f := range amr {
			r.Factors[f] = now
		}
		r.CookieHash = newHash
		absolute = r.AbsoluteExpiry
		return true, expiry(r.Session).Sub(now)
	})
	if errors.Is(err, ErrNoSession) {
		// Ended while we were renewing it: start afresh.
		return s.create(ctx, userID, connectorID, amr, dev)
	}
	if err != nil {
		return "", Session{}, err
	}
	now := s.now()
	if err := s.eph.Put(ctx, cookieKey(newHash), []byte(rec.SID), absolute.Sub(now)); err != nil {
		return "", Session{}, fmt.Errorf("store session cookie: %w", err)
	}
	if err := s.eph.Delete(ctx, cookieKey(hashCookie(oldCookie))); err != nil {
		return "", Session{}, fmt.Errorf("delete old session cookie: %w", err)
	}
	if err := s.indexPut(ctx, userID, rec.SID, absolute); err != nil {
		return "", Session{}, err
	}
	return cookie, rec.Session, nil
}

// Rotate gives the session cookie names a new cookie value and retires
// the old one, changing nothing else: for a privilege change that is not
// a sign-in. ErrNoSession when there is no live session.
func (s *Store) Rotate(ctx context.Context, cookie string) (string, Session, error) {
	next, err := s.random()
	if err != nil {
		return "", Session{}, err
	}
	newHash := hashCookie(next)
	rec, err := s.update(ctx, cookie, func(r *record) (bool, time.Duration) {
		r.CookieHash = newHash
		return true, 0
	})
	if err != nil {
		return "", Session{}, err
	}
	now := s.now()
	if err := s.eph.Put(ctx, cookieKey(newHash), []byte(rec.SID), rec.AbsoluteExpiry.Sub(now)); err != nil {
		return "", Session{}, fmt.Errorf("store session cookie: %w", err)
	}
	if err := s.eph.Delete(ctx, cookieKey(hashCookie(cookie))); err != nil {
		return "", Session{}, fmt.Errorf("delete old session cookie: %w", err)
	}
	return next, rec.Session, nil
}

// AddStep records a verified second factor in the session cookie names
// and rotates the cookie (a step-up is a privilege change: the value known
// before it is worthless after it). It returns the new cookie value and
// the session; ErrNoSession when there is no live session, or it is not
// userID's (the factor was verified for another user).
func (s *Store) AddStep(ctx context.Context, cookie, userID string, step Step) (string, Session, error) {
	if step.Factor == "" {
		return "", Session{}, errors.New("add step: a second factor step needs its factor type")
	}
	next, err := s.random()
	if err != nil {
		return "", Session{}, err
	}
	newHash := hashCookie(next)
	wrongUser := false
	rec, err := s.update(ctx, cookie, func(r *record) (bool, time.Duration) {
		if r.UserID != userID {
			wrongUser = true
			return false, 0
		}
		wrongUser = false
		r.Steps = append(r.AllSteps(), Step{Factor: step.Factor, AMR: slices.Clone(step.AMR), At: step.At})
		if r.Factors == nil {
			r.Factors = map[string]time.Time{}
		}
		for _, v := range step.AMR {
			r.Factors[v] = step.At
		}
		r.CookieHash = newHash
		return true, 0
	})
	if err != nil {
		return "", Session{}, err
	}
	if wrongUser {
		return "", Session{}, ErrNoSession
	}
	now := s.now()
	if err := s.eph.Put(ctx, cookieKey(newHash), []byte(rec.SID), rec.AbsoluteExpiry.Sub(now)); err != nil {
		return "", Session{}, fmt.Errorf("store session cookie: %w", err)
	}
	if err := s.eph.Delete(ctx, cookieKey(hashCookie(cookie))); err != nil {
		return "", Session{}, fmt.Errorf("delete old session cookie: %w", err)
	}
	return next, rec.Session, nil
}

// AddClient records that the session signed into clientID.
func (s *Store) AddClient(ctx context.Context, cookie, clientID string) error {
	_, err := s.update(ctx, cookie, func(r *record) (bool, time.Duration) {
		if slices.Contains(r.Clients, clientID) {
			return false, 0
		}
		r.Clients = append(r.Clients, clientID)
		return true, 0
	})
	return err
}

// End ends the session sid and returns it as it was. Of concurrent calls
// for one session exactly one gets it; the others get ErrNoSession, so
// whoever ends a session notifies its clients once.
func (s *Store) End(ctx context.Context, sid string) (Session, error) {
	if sid == "" || len(sid) > maxCookieLen {
		return Session{}, ErrNoSession
	}
	raw, err := s.eph.Take(ctx, recordKey(sid))
	if errors.Is(err, storage.ErrNotFound) {
		return Session{}, ErrNoSession
	}
	if err != nil {
		return Session{}, fmt.Errorf("end session: %w", err)
	}
	var rec record
	if err := json.Unmarshal(raw, &rec); err != nil {
		return Session{}, fmt.Errorf("decode ended session: %w", err)
	}
	if err := s.eph.Delete(ctx, cookieKey(rec.CookieHash)); err != nil {
		return rec.Session, fmt.Errorf("delete session cookie: %w", err)
	}
	if err := s.indexRemove(ctx, rec.UserID, sid); err != nil {
		return rec.Session, err
	}
	return rec.Session, nil
}

// SIDOf returns the sid of the live session a cookie value names;
// ErrNoSession when there is none. It does not extend the session.
func (s *Store) SIDOf(ctx context.Context, cookie string) (string, error) {
	rec, _, ok, err := s.resolve(ctx, cookie)
	if err != nil {
		return "", err
	}
	if !ok || !alive(rec.Session, s.now()) {
		return "", ErrNoSession
	}
	return rec.SID, nil
}

// ListByUser returns the user's live sessions, oldest first.
func (s *Store) ListByUser(ctx context.Context, userID string) ([]Session, error) {
	entries, _, err := s.loadIndex(ctx, userID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	out := []Session{}
	for _, e := range entries {
		rec, _, ok, err := s.loadRecord(ctx, e.SID)
		if err != nil {
			return nil, err
		}
		if ok && rec.UserID == userID && alive(rec.Session, now) {
			out = append(out, rec.Session)
		}
	}
	slices.SortStableFunc(out, func(a, b Session) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// indexEntry is one session in a user's index.
type indexEntry struct {
	SID     string    `json:"sid"`
	Expires time.Time `json:"exp"`
}

func (s *Store) loadIndex(ctx context.Context, userID string) ([]indexEntry, []byte, error) {
	raw, err := s.eph.Get(ctx, userKey(userID))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("load session index: %w", err)
	}
	var entries []indexEntry
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, nil, fmt.Errorf("decode session index: %w", err)
	}
	return entries, raw, nil
}

// emptyIndexTTL is how long an emptied index stays (it is not deleted,
// so that a concurrent add's compare-and-swap still finds it).
const emptyIndexTTL = time.Minute

// updateIndex applies fn to the user's index (expired entries already
// dropped) with a compare-and-swap, retried on conflict.
func (s *Store) updateIndex(ctx context.Context, userID string, fn func([]indexEntry) []indexEntry) error {
	for range casAttempts {
		entries, raw, err := s.loadIndex(ctx, userID)
		if err != nil {
			return err
		}
		now := s.now()
		entries = slices.DeleteFunc(entries, func(e indexEntry) bool { return !now.Before(e.Expires) })
		entries = fn(entries)
		ttl := emptyIndexTTL
		for _, e := range entries {
			ttl = max(ttl, e.Expires.Sub(now))
		}
		nb, err := json.Marshal(entries)
		if err != nil {
			return fmt.Errorf("encode session index: %w", err)
		}
		if raw == nil {
			if len(entries) == 0 {
				return nil
			}
			err = s.eph.Create(ctx, userKey(userID), nb, ttl)
		} else {
			err = s.eph.CompareAndSwap(ctx, userKey(userID), raw, nb, ttl)
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, storage.ErrConflict) && !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("update session index: %w", err)
		}
	}
	return fmt.Errorf("update session index: %w", storage.ErrConflict)
}

func (s *Store) indexPut(ctx context.Context, userID, sid string, expires time.Time) error {
	return s.updateIndex(ctx, userID, func(es []indexEntry) []indexEntry {
		es = slices.DeleteFunc(es, func(e indexEntry) bool { return e.SID == sid })
		return append(es, indexEntry{SID: sid, Expires: expires})
	})
}

func (s *Store) indexRemove(ctx context.Context, userID, sid string) error {
	return s.updateIndex(ctx, userID, func(es []indexEntry) []indexEntry {
		return slices.DeleteFunc(es, func(e indexEntry) bool { return e.SID == sid })
	})
}
