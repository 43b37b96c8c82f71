package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/latchkeyid/latchkey/storage"
)

const apiKeyColumns = `prefix, hash, name, scopes_json, created_by, created_at, expires_at, last_used_at, revoked_at, replaced_by`

func scanAPIKey(row interface{ Scan(...any) error }) (storage.APIKey, error) {
	var (
		k      storage.APIKey
		scopes []byte
	)
	if err := row.Scan(&k.Prefix, &k.Hash, &k.Name, &scopes, &k.CreatedBy, timeDest{&k.CreatedAt},
		timeDest{&k.ExpiresAt}, timeDest{&k.LastUsedAt}, timeDest{&k.RevokedAt}, &k.ReplacedBy); err != nil {
		return storage.APIKey{}, err
	}
	if err := decodeDoc(scopes, &k.Scopes); err != nil {
		return storage.APIKey{}, err
	}
	return k, nil
}

func (s *Store) apiKeyArgs(k storage.APIKey) ([]any, error) {
	scopes, err := docArg(k.Scopes)
	if err != nil {
		return nil, err
	}
	return []any{k.Prefix, k.Hash, k.Name, scopes, k.CreatedBy, s.timeArg(k.CreatedAt),
		s.nullTimeArg(k.ExpiresAt), s.nullTimeArg(k.LastUsedAt), s.nullTimeArg(k.RevokedAt), k.ReplacedBy}, nil
}

// CreateAPIKey stores a key; storage.ErrConflict if its prefix or hash
// exists.
func (s *Store) CreateAPIKey(ctx context.Context, k storage.APIKey) error {
	if k.Prefix == "" || k.Hash == "" {
		return errors.New("create api key: empty prefix or hash")
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = s.now()
	}
	args, err := s.apiKeyArgs(k)
	if err != nil {
		return fmt.Errorf("create api key %q: %w", k.Prefix, err)
	}
	res, err := s.writer(ctx).ExecContext(ctx,
		`INSERT INTO api_keys (`+apiKeyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING`, args...)
	if err != nil {
		return fmt.Errorf("create api key %q: %w", k.Prefix, err)
	}
	if n, err := affected(res); err != nil || n == 0 {
		return fmt.Errorf("create api key %q: prefix or hash exists: %w", k.Prefix, orConflict(err))
	}
	return nil
}

func (s *Store) getAPIKey(ctx context.Context, q querier, prefix, lock string) (storage.APIKey, error) {
	k, err := scanAPIKey(q.QueryRowContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE prefix = $1`+lock, prefix))
	if errors.Is(err, sql.ErrNoRows) {
		return storage.APIKey{}, storage.ErrNotFound
	}
	return k, err
}

// GetAPIKey returns the key with that prefix; storage.ErrNotFound if none.
func (s *Store) GetAPIKey(ctx context.Context, prefix string) (storage.APIKey, error) {
	k, err := s.getAPIKey(ctx, s.reader(ctx), prefix, "")
	if err != nil {
		return storage.APIKey{}, fmt.Errorf("get api key %q: %w", prefix, err)
	}
	return k, nil
}

// ListAPIKeys returns every key, oldest first.
func (s *Store) ListAPIKeys(ctx context.Context) ([]storage.APIKey, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys ORDER BY created_at, prefix`)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	defer rows.Close()
	out := []storage.APIKey{}
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, fmt.Errorf("list api keys: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	return out, nil
}

// UpdateAPIKey applies fn to the key with its row locked.
func (s *Store) UpdateAPIKey(ctx context.Context, prefix string, fn func(storage.APIKey) (storage.APIKey, error)) error {
	err := s.inTx(ctx, func(ctx context.Context, tx *Store) error {
		old, err := tx.getAPIKey(ctx, tx.tx, prefix, tx.forUpdate())
		if err != nil {
			return err
		}
		k, err := fn(old)
		if err != nil {
			return err
		}
		if k.Prefix != old.Prefix || k.Hash != old.Hash {
			return errors.New("the updater changed the prefix or hash")
		}
		args, err := tx.apiKeyArgs(k)
		if err != nil {
			return err
		}
		_, err = tx.tx.ExecContext(ctx, `UPDATE api_keys SET name = $3, scopes_json = $4, created_by = $5, created_at = $6,
			expires_at = $7, last_used_at = $8, revoked_at = $9, replaced_by = $10 WHERE prefix = $1 AND hash = $2`, args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("update api key %q: %w", prefix, err)
	}
	return nil
}

// TouchAPIKey records a use: LastUsedAt becomes at unless it is later.
func (s *Store) TouchAPIKey(ctx context.Context, prefix string, at time.Time) error {
	res, err := s.writer(ctx).ExecContext(ctx,
		`UPDATE api_keys SET last_used_at = CASE WHEN last_used_at IS NULL OR last_used_at < $2 THEN $2 ELSE last_used_at END WHERE prefix = $1`,
		prefix, s.timeArg(at))
	if err != nil {
		return fmt.Errorf("touch api key %q: %w", prefix, err)
	}
	n, err := affected(res)
	if err != nil {
		return fmt.Errorf("touch api key %q: %w", prefix, err)
	}
	if n == 0 {
		return fmt.Errorf("touch api key %q: %w", prefix, storage.ErrNotFound)
	}
	return nil
}
