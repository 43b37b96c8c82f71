package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/latchkeyid/latchkey/storage"
)

const identityColumns = `connector_id, subject, user_id, email, connector_data, created_at, last_login_at`

func scanIdentity(row interface{ Scan(...any) error }) (storage.Identity, error) {
	var i storage.Identity
	if err := row.Scan(&i.ConnectorID, &i.Subject, &i.UserID, &i.Email, &i.ConnectorData,
		timeDest{&i.CreatedAt}, timeDest{&i.LastLoginAt}); err != nil {
		return storage.Identity{}, err
	}
	if len(i.ConnectorData) == 0 {
		i.ConnectorData = nil
	}
	return i, nil
}

// dataArg stores nil data as NULL.
func dataArg(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// CreateIdentity links an identity; storage.ErrConflict if (connector,
// subject) is linked already, storage.ErrNotFound if the user does not
// exist.
func (s *Store) CreateIdentity(ctx context.Context, id storage.Identity) error {
	if id.ConnectorID == "" || id.Subject == "" || id.UserID == "" {
		return errors.New("create identity: empty connector id, subject or user id")
	}
	if id.CreatedAt.IsZero() {
		id.CreatedAt = s.now()
	}
	err := s.inTx(ctx, func(ctx context.Context, tx *Store) error {
		var n int
		if err := tx.tx.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE id = $1`, id.UserID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("user %q: %w", id.UserID, storage.ErrNotFound)
		}
		res, err := tx.tx.ExecContext(ctx,
			`INSERT INTO identities (`+identityColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
			id.ConnectorID, id.Subject, id.UserID, id.Email, dataArg(id.ConnectorData), tx.timeArg(id.CreatedAt), tx.nullTimeArg(id.LastLoginAt))
		if err != nil {
			return err
		}
		if n, err := affected(res); err != nil || n == 0 {
			return fmt.Errorf("already linked: %w", orConflict(err))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create identity %q/%q: %w", id.ConnectorID, id.Subject, err)
	}
	return nil
}

func (s *Store) getIdentity(ctx context.Context, q querier, connectorID, subject, lock string) (storage.Identity, error) {
	i, err := scanIdentity(q.QueryRowContext(ctx,
		`SELECT `+identityColumns+` FROM identities WHERE connector_id = $1 AND subject = $2`+lock, connectorID, subject))
	if errors.Is(err, sql.ErrNoRows) {
		return storage.Identity{}, storage.ErrNotFound
	}
	return i, err
}

// GetIdentity returns the identity; storage.ErrNotFound if not linked.
func (s *Store) GetIdentity(ctx context.Context, connectorID, subject string) (storage.Identity, error) {
	i, err := s.getIdentity(ctx, s.reader(ctx), connectorID, subject, "")
	if err != nil {
		return storage.Identity{}, fmt.Errorf("get identity %q/%q: %w", connectorID, subject, err)
	}
	return i, nil
}

// ListUserIdentities returns the user's identities, oldest first.
func (s *Store) ListUserIdentities(ctx context.Context, userID string) ([]storage.Identity, error) {
	rows, err := s.reader(ctx).QueryContext(ctx,
		`SELECT `+identityColumns+` FROM identities WHERE user_id = $1 ORDER BY created_at, connector_id, subject`, userID)
	if err != nil {
		return nil, fmt.Errorf("list identities of user %q: %w", userID, err)
	}
	defer rows.Close()
	out := []storage.Identity{}
	for rows.Next() {
		i, err := scanIdentity(rows)
		if err != nil {
			return nil, fmt.Errorf("list identities of user %q: %w", userID, err)
		}
		out = append(out, i)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list identities of user %q: %w", userID, err)
	}
	return out, nil
}

// UpdateIdentity applies fn with the row locked.
func (s *Store) UpdateIdentity(ctx context.Context, connectorID, subject string, fn func(storage.Identity) (storage.Identity, error)) error {
	err := s.inTx(ctx, func(ctx context.Context, tx *Store) error {
		old, err := tx.getIdentity(ctx, tx.tx, connectorID, subject, tx.forUpdate())
		if err != nil {
			return err
		}
		i, err := fn(old)
		if err != nil {
			return err
		}
		if i.ConnectorID != old.ConnectorID || i.Subject != old.Subject || i.UserID != old.UserID {
			return errors.New("the updater changed the connector, subject or user")
		}
		_, err = tx.tx.ExecContext(ctx,
			`UPDATE identities SET email = $3, connector_data = $4, created_at = $5, last_login_at = $6 WHERE connector_id = $1 AND subject = $2`,
			connectorID, subject, i.Email, dataArg(i.ConnectorData), tx.timeArg(i.CreatedAt), tx.nullTimeArg(i.LastLoginAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("update identity %q/%q: %w", connectorID, subject, err)
	}
	return nil
}

// DeleteIdentity unlinks one identity; storage.ErrNotFound if absent.
func (s *Store) DeleteIdentity(ctx context.Context, connectorID, subject string) error {
	res, err := s.writer(ctx).ExecContext(ctx, `DELETE FROM identities WHERE connector_id = $1 AND subject = $2`, connectorID, subject)
	if err == nil {
		var n int64
		if n, err = affected(res); err == nil && n == 0 {
			err = storage.ErrNotFound
		}
	}
	if err != nil {
		return fmt.Errorf("delete identity %q/%q: %w", connectorID, subject, err)
	}
	return nil
}

// ListUsersByEmail returns the users with exactly that email, oldest first.
func (s *Store) ListUsersByEmail(ctx context.Context, email string) ([]storage.User, error) {
	out := []storage.User{}
	if email == "" {
		return out, nil
	}
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT `+userColumns+` FROM users WHERE email = $1 ORDER BY created_at, id`, email)
	if err != nil {
		return nil, fmt.Errorf("list users by email: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list users by email: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users by email: %w", err)
	}
	return out, nil
}
