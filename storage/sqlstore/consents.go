package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/latchkeyid/latchkey/storage"
)

// GetConsent returns what userID granted clientID; storage.ErrNotFound if
// nothing.
func (s *Store) GetConsent(ctx context.Context, userID, clientID string) (storage.Consent, error) {
	var (
		c      = storage.Consent{UserID: userID, ClientID: clientID}
		scopes []byte
	)
	err := s.reader(ctx).QueryRowContext(ctx,
		`SELECT scopes_json, granted_at FROM consents WHERE user_id = $1 AND client_id = $2`, userID, clientID).
		Scan(&scopes, timeDest{&c.GrantedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return storage.Consent{}, fmt.Errorf("get consent of user %q for client %q: %w", userID, clientID, storage.ErrNotFound)
	}
	if err != nil {
		return storage.Consent{}, fmt.Errorf("get consent of user %q for client %q: %w", userID, clientID, err)
	}
	if err := decodeDoc(scopes, &c.Scopes); err != nil {
		return storage.Consent{}, fmt.Errorf("get consent of user %q for client %q: %w", userID, clientID, err)
	}
	return c, nil
}

// PutConsent creates or replaces a consent. The user and the client must
// exist (storage.ErrNotFound otherwise); deleting either deletes it.
func (s *Store) PutConsent(ctx context.Context, c storage.Consent) error {
	if c.GrantedAt.IsZero() {
		c.GrantedAt = s.now()
	}
	scopes, err := docArg(c.Scopes)
	if err != nil {
		return fmt.Errorf("put consent: %w", err)
	}
	err = s.inTx(ctx, func(ctx context.Context, tx *Store) error {
		var n int
		if err := tx.tx.QueryRowContext(ctx,
			`SELECT (SELECT count(*) FROM users WHERE id = $1) + (SELECT count(*) FROM clients WHERE id = $2)`,
			c.UserID, c.ClientID).Scan(&n); err != nil {
			return err
		}
		if n != 2 {
			return storage.ErrNotFound
		}
		_, err := tx.tx.ExecContext(ctx,
			`INSERT INTO consents (user_id, client_id, scopes_json, granted_at) VALUES ($1, $2, $3, $4)
			 ON CONFLICT (user_id, client_id) DO UPDATE SET scopes_json = excluded.scopes_json, granted_at = excluded.granted_at`,
			c.UserID, c.ClientID, scopes, tx.timeArg(c.GrantedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("put consent of user %q for client %q: %w", c.UserID, c.ClientID, err)
	}
	return nil
}

// DeleteConsent removes a consent; storage.ErrNotFound if there is none.
func (s *Store) DeleteConsent(ctx context.Context, userID, clientID string) error {
	res, err := s.writer(ctx).ExecContext(ctx, `DELETE FROM consents WHERE user_id = $1 AND client_id = $2`, userID, clientID)
	if err == nil {
		var n int64
		if n, err = affected(res); err == nil && n == 0 {
			err = storage.ErrNotFound
		}
	}
	if err != nil {
		return fmt.Errorf("delete consent of user %q for client %q: %w", userID, clientID, err)
	}
	return nil
}

// ListUserConsents returns the user's consents, oldest grant first.
func (s *Store) ListUserConsents(ctx context.Context, userID string) ([]storage.Consent, error) {
	rows, err := s.reader(ctx).QueryContext(ctx,
		`SELECT client_id, scopes_json, granted_at FROM consents WHERE user_id = $1 ORDER BY granted_at, client_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list consents of user %q: %w", userID, err)
	}
	defer rows.Close()
	out := []storage.Consent{}
	for rows.Next() {
		c := storage.Consent{UserID: userID}
		var scopes []byte
		if err := rows.Scan(&c.ClientID, &scopes, timeDest{&c.GrantedAt}); err != nil {
			return nil, fmt.Errorf("list consents of user %q: %w", userID, err)
		}
		if err := decodeDoc(scopes, &c.Scopes); err != nil {
			return nil, fmt.Errorf("list consents of user %q: %w", userID, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list consents of user %q: %w", userID, err)
	}
	return out, nil
}
