package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/latchkeyid/latchkey/storage"
)

// GetKeys returns the signing-keys record; storage.ErrNotFound before the
// first UpdateKeys.
func (s *Store) GetKeys(ctx context.Context) (storage.Keys, error) {
	k, err := s.getKeys(ctx, s.reader(ctx))
	if err != nil {
		return storage.Keys{}, fmt.Errorf("get keys: %w", err)
	}
	return k, nil
}

func (s *Store) getKeys(ctx context.Context, q querier) (storage.Keys, error) {
	var (
		k    storage.Keys
		data []byte
	)
	err := q.QueryRowContext(ctx, `SELECT version, data, updated_at FROM keys WHERE id = 1`).
		Scan(&k.Version, &data, timeDest{&k.UpdatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return storage.Keys{}, storage.ErrNotFound
	}
	if err != nil {
		return storage.Keys{}, err
	}
	k.Data = rawValue(data)
	return k, nil
}

// UpdateKeys is a compare-and-swap on the version: it reads the record,
// calls fn without holding any lock, and writes fn's result with Version
// old+1 only if the stored version is still old; otherwise
// storage.ErrConflict. UpdatedAt is set to now unless fn changed it.
func (s *Store) UpdateKeys(ctx context.Context, fn func(storage.Keys) (storage.Keys, error)) (storage.Keys, error) {
	old, err := s.getKeys(ctx, s.reader(ctx))
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return storage.Keys{}, fmt.Errorf("update keys: %w", err)
	}
	k, err := fn(old)
	if err != nil {
		return storage.Keys{}, fmt.Errorf("update keys: %w", err)
	}
	k.Version = old.Version + 1
	s.touch(old.UpdatedAt, &k.UpdatedAt)
	var res sql.Result
	if old.Version == 0 {
		res, err = s.writer(ctx).ExecContext(ctx,
			`INSERT INTO keys (id, version, data, updated_at) VALUES (1, $1, $2, $3) ON CONFLICT DO NOTHING`,
			k.Version, rawArg(k.Data), s.timeArg(k.UpdatedAt))
	} else {
		res, err = s.writer(ctx).ExecContext(ctx,
			`UPDATE keys SET version = $1, data = $2, updated_at = $3 WHERE id = 1 AND version = $4`,
			k.Version, rawArg(k.Data), s.timeArg(k.UpdatedAt), old.Version)
	}
	if err != nil {
		return storage.Keys{}, fmt.Errorf("update keys from version %d: %w", old.Version, err)
	}
	if n, err := affected(res); err != nil || n == 0 {
		return storage.Keys{}, fmt.Errorf("update keys from version %d: another writer changed them first: %w", old.Version, orConflict(err))
	}
	if k.Data != nil {
		k.Data = append([]byte{}, k.Data...)
	}
	return k, nil
}
