package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/latchkeyid/latchkey/storage"
)

// Ephemeral is storage.Ephemeral on the Store's database (table
// ephemeral). Expiry comes from the Store's clock; a row past its
// expires_at is absent for every method, and Sweep deletes such rows. It
// shares the Store's connections: Close does nothing, close the Store.
//
// Keys and values are not logged and not put in errors: keys are often
// derived from secrets (code hashes, session ids).
type Ephemeral struct {
	s *Store
}

var _ storage.Ephemeral = (*Ephemeral)(nil)

// Ephemeral returns the ephemeral store on the same database. Called with
// a context from inside Tx, its methods join that transaction.
func (s *Store) Ephemeral() *Ephemeral {
	return &Ephemeral{s: &Store{c: s.c}}
}

func checkTTL(ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("ttl %s: must be positive", ttl)
	}
	return nil
}

// value is b as stored: never NULL.
func value(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Put stores value under key with the given TTL, replacing any value.
func (e *Ephemeral) Put(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	if err := checkTTL(ttl); err != nil {
		return fmt.Errorf("ephemeral put: %w", err)
	}
	s := e.s
	expires := s.timeArg(s.c.clock.Now().Add(ttl))
	err := s.write(ctx, func(ctx context.Context, q querier) error {
		_, err := q.ExecContext(ctx,
			`INSERT INTO ephemeral (key, value, expires_at) VALUES ($1, $2, $3)
			 ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`,
			key, value(v), expires)
		return err
	})
	if err != nil {
		return fmt.Errorf("ephemeral put: %w", err)
	}
	return nil
}

// Create stores value only if key is absent or expired; storage.ErrConflict
// otherwise.
func (e *Ephemeral) Create(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	if err := checkTTL(ttl); err != nil {
		return fmt.Errorf("ephemeral create: %w", err)
	}
	s := e.s
	now := s.c.clock.Now()
	var n int64
	err := s.write(ctx, func(ctx context.Context, q querier) error {
		res, err := q.ExecContext(ctx,
			`INSERT INTO ephemeral (key, value, expires_at) VALUES ($1, $2, $3)
			 ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
			 WHERE ephemeral.expires_at <= $4`,
			key, value(v), s.timeArg(now.Add(ttl)), s.timeArg(now))
		if err != nil {
			return err
		}
		n, err = affected(res)
		return err
	})
	if err != nil {
		return fmt.Errorf("ephemeral create: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("ephemeral create: key exists: %w", storage.ErrConflict)
	}
	return nil
}

// Get returns the value; storage.ErrNotFound if missing or expired.
func (e *Ephemeral) Get(ctx context.Context, key string) ([]byte, error) {
	s := e.s
	var v []byte
	err := s.reader(ctx).QueryRowContext(ctx,
		`SELECT value FROM ephemeral WHERE key = $1 AND expires_at > $2`, key, s.timeArg(s.c.clock.Now())).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("ephemeral get: %w", storage.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("ephemeral get: %w", err)
	}
	return v, nil
}

// Take atomically returns and deletes the value (one DELETE ... RETURNING):
// of concurrent callers exactly one gets it. An expired value is deleted
// and reported as storage.ErrNotFound.
func (e *Ephemeral) Take(ctx context.Context, key string) ([]byte, error) {
	s := e.s
	var (
		v       []byte
		expires time.Time
		found   bool
	)
	err := s.write(ctx, func(ctx context.Context, q querier) error {
		v, found = nil, false
		err := q.QueryRowContext(ctx,
			`DELETE FROM ephemeral WHERE key = $1 RETURNING value, expires_at`, key).Scan(&v, timeDest{&expires})
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		found = err == nil
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ephemeral take: %w", err)
	}
	if !found {
		return nil, fmt.Errorf("ephemeral take: %w", storage.ErrNotFound)
	}
	if !expires.After(s.c.clock.Now()) {
		return nil, fmt.Errorf("ephemeral take: %w", storage.ErrNotFound)
	}
	return v, nil
}

// CompareAndSwap replaces the value only if it is still old:
// storage.ErrNotFound if missing or expired, storage.ErrConflict if it
// holds another value. ttl 0 keeps the current expiry.
func (e *Ephemeral) CompareAndSwap(ctx context.Context, key string, old, v []byte, ttl time.Duration) error {
	if ttl < 0 {
		return fmt.Errorf("ephemeral compare-and-swap: ttl %s: must not be negative", ttl)
	}
	s := e.s
	now := s.c.clock.Now()
	var swapped, present bool
	err := s.write(ctx, func(ctx context.Context, q querier) error {
		swapped, present = false, false
		var (
			res sql.Result
			err error
		)
		if ttl == 0 {
			res, err = q.ExecContext(ctx,
				`UPDATE ephemeral SET value = $2 WHERE key = $1 AND value = $3 AND expires_at > $4`,
				key, value(v), value(old), s.timeArg(now))
		} else {
			res, err = q.ExecContext(ctx,
				`UPDATE ephemeral SET value = $2, expires_at = $5 WHERE key = $1 AND value = $3 AND expires_at > $4`,
				key, value(v), value(old), s.timeArg(now), s.timeArg(now.Add(ttl)))
		}
		if err != nil {
			return err
		}
		n, err := affected(res)
		if err != nil || n == 1 {
			swapped = err == nil
			return err
		}
		// Nothing swapped: tell a missing key from a different value.
		var one int
		err = q.QueryRowContext(ctx,
			`SELECT 1 FROM ephemeral WHERE key = $1 AND expires_at > $2`, key, s.timeArg(now)).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		present = err == nil
		return err
	})
	switch {
	case err != nil:
		return fmt.Errorf("ephemeral compare-and-swap: %w", err)
	case swapped:
		return nil
	case !present:
		return fmt.Errorf("ephemeral compare-and-swap: %w", storage.ErrNotFound)
	}
	return fmt.Errorf("ephemeral compare-and-swap: value changed: %w", storage.ErrConflict)
}

// Delete removes key; a missing key is not an error.
func (e *Ephemeral) Delete(ctx context.Context, key string) error {
	err := e.s.write(ctx, func(ctx context.Context, q querier) error {
		_, err := q.ExecContext(ctx, `DELETE FROM ephemeral WHERE key = $1`, key)
		return err
	})
	if err != nil {
		return fmt.Errorf("ephemeral delete: %w", err)
	}
	return nil
}

// incrSQL is one upsert per dialect: $1 key, $2 the value n as decimal
// text, $3 the expiry of a new window, $4 now, $5 n. An absent or expired
// row starts a new window at n; a live one is incremented by n and keeps
// its expiry. A live row
// that does not hold a decimal counter is left alone and returns no row.
var incrSQL = map[string]string{
	DialectSQLite: `INSERT INTO ephemeral (key, value, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (key) DO UPDATE SET
			value = CASE WHEN ephemeral.expires_at <= $4 THEN excluded.value
				ELSE CAST(CAST(CAST(CAST(ephemeral.value AS TEXT) AS INTEGER) + $5 AS TEXT) AS BLOB) END,
			expires_at = CASE WHEN ephemeral.expires_at <= $4 THEN excluded.expires_at ELSE ephemeral.expires_at END
		WHERE ephemeral.expires_at <= $4
			OR (length(ephemeral.value) BETWEEN 1 AND 18 AND CAST(ephemeral.value AS TEXT) NOT GLOB '*[^0-9]*')
		RETURNING value`,
	DialectPostgres: `INSERT INTO ephemeral (key, value, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (key) DO UPDATE SET
			value = CASE WHEN ephemeral.expires_at <= $4 THEN excluded.value
				ELSE convert_to((encode(ephemeral.value, 'escape')::bigint + $5::bigint)::text, 'UTF8') END,
			expires_at = CASE WHEN ephemeral.expires_at <= $4 THEN excluded.expires_at ELSE ephemeral.expires_at END
		WHERE ephemeral.expires_at <= $4 OR encode(ephemeral.value, 'escape') ~ '^[0-9]{1,18}$'
		RETURNING value`,
}

// Incr adds one to the counter at key and returns the new value. The
// counter is created at 1 with expiry ttl; later increments keep that
// expiry (a fixed window). The value is the decimal text, as in Redis.
func (e *Ephemeral) Incr(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	return e.IncrBy(ctx, key, 1, ttl)
}

var _ storage.CounterAdder = (*Ephemeral)(nil)

// IncrBy adds n (at least 1) to the counter at key, like Incr.
func (e *Ephemeral) IncrBy(ctx context.Context, key string, n int64, ttl time.Duration) (int64, error) {
	if err := checkTTL(ttl); err != nil {
		return 0, fmt.Errorf("ephemeral incr: %w", err)
	}
	if n < 1 {
		return 0, fmt.Errorf("ephemeral incr: add %d: want at least 1", n)
	}
	s := e.s
	now := s.c.clock.Now()
	var (
		v       []byte
		counter bool
	)
	err := s.write(ctx, func(ctx context.Context, q querier) error {
		v, counter = nil, false
		err := q.QueryRowContext(ctx, incrSQL[s.c.dialect],
			key, []byte(strconv.FormatInt(n, 10)), s.timeArg(now.Add(ttl)), s.timeArg(now), n).Scan(&v)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		counter = err == nil
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("ephemeral incr: %w", err)
	}
	if !counter {
		return 0, errors.New("ephemeral incr: the key holds a value that is not a counter")
	}
	total, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("ephemeral incr: stored counter: %w", err)
	}
	return total, nil
}

// TTL returns the time left on key; storage.ErrNotFound if missing or
// expired.
func (e *Ephemeral) TTL(ctx context.Context, key string) (time.Duration, error) {
	s := e.s
	now := s.c.clock.Now()
	var expires time.Time
	err := s.reader(ctx).QueryRowContext(ctx,
		`SELECT expires_at FROM ephemeral WHERE key = $1 AND expires_at > $2`, key, s.timeArg(now)).Scan(timeDest{&expires})
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("ephemeral ttl: %w", storage.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("ephemeral ttl: %w", err)
	}
	d := expires.Sub(now)
	if d <= 0 {
		return 0, fmt.Errorf("ephemeral ttl: %w", storage.ErrNotFound)
	}
	return d, nil
}

// Sweep deletes every expired row and returns how many it deleted. The
// server calls it periodically; correctness does not depend on it.
func (e *Ephemeral) Sweep(ctx context.Context) (int64, error) {
	s := e.s
	res, err := s.writer(ctx).ExecContext(ctx,
		`DELETE FROM ephemeral WHERE expires_at <= $1`, s.timeArg(s.c.clock.Now()))
	if err != nil {
		return 0, fmt.Errorf("ephemeral sweep: %w", err)
	}
	n, err := affected(res)
	if err != nil {
		return 0, fmt.Errorf("ephemeral sweep: %w", err)
	}
	return n, nil
}

// Ping checks that the database answers.
func (e *Ephemeral) Ping(ctx context.Context) error { return e.s.Ping(ctx) }

// Close does nothing: the Store owns the connections.
func (e *Ephemeral) Close() error { return nil }
