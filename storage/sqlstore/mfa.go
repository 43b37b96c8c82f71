package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/latchkeyid/latchkey/storage"
)

const mfaColumns = `id, user_id, type, label, data, created_at, last_used_at`

func scanMFACredential(row interface{ Scan(...any) error }) (storage.MFACredential, error) {
	var c storage.MFACredential
	if err := row.Scan(&c.ID, &c.UserID, &c.Type, &c.Label, &c.Data, timeDest{&c.CreatedAt}, timeDest{&c.LastUsedAt}); err != nil {
		return storage.MFACredential{}, err
	}
	if c.Data == nil {
		c.Data = []byte{}
	}
	return c, nil
}

// CreateMFACredential stores a credential; storage.ErrConflict if its id
// exists, storage.ErrNotFound if its user does not.
func (s *Store) CreateMFACredential(ctx context.Context, c storage.MFACredential) error {
	if c.ID == "" || c.UserID == "" || c.Type == "" {
		return errors.New("create mfa credential: empty id, user id or type")
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.now()
	}
	if c.Data == nil {
		c.Data = []byte{}
	}
	err := s.inTx(ctx, func(ctx context.Context, tx *Store) error {
		var n int
		if err := tx.tx.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE id = $1`, c.UserID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("user %q: %w", c.UserID, storage.ErrNotFound)
		}
		res, err := tx.tx.ExecContext(ctx,
			`INSERT INTO mfa_credentials (`+mfaColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
			c.ID, c.UserID, c.Type, c.Label, c.Data, tx.timeArg(c.CreatedAt), tx.nullTimeArg(c.LastUsedAt))
		if err != nil {
			return err
		}
		if n, err := affected(res); err != nil || n == 0 {
			return fmt.Errorf("id exists: %w", orConflict(err))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create mfa credential %q: %w", c.ID, err)
	}
	return nil
}

func (s *Store) getMFACredential(ctx context.Context, q querier, id, lock string) (storage.MFACredential, error) {
	c, err := scanMFACredential(q.QueryRowContext(ctx, `SELECT `+mfaColumns+` FROM mfa_credentials WHERE id = $1`+lock, id))
	if errors.Is(err, sql.ErrNoRows) {
		return storage.MFACredential{}, storage.ErrNotFound
	}
	return c, err
}

// GetMFACredential returns the credential; storage.ErrNotFound if absent.
func (s *Store) GetMFACredential(ctx context.Context, id string) (storage.MFACredential, error) {
	c, err := s.getMFACredential(ctx, s.reader(ctx), id, "")
	if err != nil {
		return storage.MFACredential{}, fmt.Errorf("get mfa credential %q: %w", id, err)
	}
	return c, nil
}

// ListMFACredentials returns the user's credentials, oldest first.
func (s *Store) ListMFACredentials(ctx context.Context, userID string) ([]storage.MFACredential, error) {
	rows, err := s.reader(ctx).QueryContext(ctx,
		`SELECT `+mfaColumns+` FROM mfa_credentials WHERE user_id = $1 ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list mfa credentials of user %q: %w", userID, err)
	}
	defer rows.Close()
	out := []storage.MFACredential{}
	for rows.Next() {
		c, err := scanMFACredential(rows)
		if err != nil {
			return nil, fmt.Errorf("list mfa credentials of user %q: %w", userID, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list mfa credentials of user %q: %w", userID, err)
	}
	return out, nil
}

// UpdateMFACredential applies fn to the credential with its row locked
// (SQLite: the single writer), so concurrent verifications of one code
// see each other's replay state.
func (s *Store) UpdateMFACredential(ctx context.Context, id string, fn func(storage.MFACredential) (storage.MFACredential, error)) error {
	err := s.inTx(ctx, func(ctx context.Context, tx *Store) error {
		old, err := tx.getMFACredential(ctx, tx.tx, id, tx.forUpdate())
		if err != nil {
			return err
		}
		c, err := fn(old)
		if err != nil {
			return err
		}
		if c.ID != old.ID || c.UserID != old.UserID || c.Type != old.Type {
			return errors.New("the updater changed the id, user or type")
		}
		if c.Data == nil {
			c.Data = []byte{}
		}
		_, err = tx.tx.ExecContext(ctx,
			`UPDATE mfa_credentials SET label = $2, data = $3, created_at = $4, last_used_at = $5 WHERE id = $1`,
			id, c.Label, c.Data, tx.timeArg(c.CreatedAt), tx.nullTimeArg(c.LastUsedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("update mfa credential %q: %w", id, err)
	}
	return nil
}

// DeleteMFACredential removes one credential; storage.ErrNotFound if absent.
func (s *Store) DeleteMFACredential(ctx context.Context, id string) error {
	if err := s.deleteByID(ctx, "mfa_credentials", id); err != nil {
		return fmt.Errorf("delete mfa credential %q: %w", id, err)
	}
	return nil
}

// DeleteUserMFACredentials removes every credential of the user.
func (s *Store) DeleteUserMFACredentials(ctx context.Context, userID string) (int64, error) {
	res, err := s.writer(ctx).ExecContext(ctx, `DELETE FROM mfa_credentials WHERE user_id = $1`, userID)
	if err != nil {
		return 0, fmt.Errorf("delete mfa credentials of user %q: %w", userID, err)
	}
	n, err := affected(res)
	if err != nil {
		return 0, fmt.Errorf("delete mfa credentials of user %q: %w", userID, err)
	}
	return n, nil
}
