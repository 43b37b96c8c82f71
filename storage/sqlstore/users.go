package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/latchkeyid/latchkey/storage"
)

const userColumns = `id, username, email, email_verified, name, groups_json, password_hash, disabled, created_at, updated_at`

func scanUser(row interface{ Scan(...any) error }) (storage.User, error) {
	var (
		u        storage.User
		username sql.NullString
		groups   []byte
	)
	if err := row.Scan(&u.ID, &username, &u.Email, &u.EmailVerified, &u.Name, &groups, &u.PasswordHash, &u.Disabled,
		timeDest{&u.CreatedAt}, timeDest{&u.UpdatedAt}); err != nil {
		return storage.User{}, err
	}
	u.Username = username.String
	if err := decodeDoc(groups, &u.Groups); err != nil {
		return storage.User{}, err
	}
	return u, nil
}

func (s *Store) userArgs(u storage.User) ([]any, error) {
	groups, err := docArg(u.Groups)
	if err != nil {
		return nil, err
	}
	// No username is NULL, which the unique constraint does not compare.
	username := sql.NullString{String: u.Username, Valid: u.Username != ""}
	return []any{u.ID, username, u.Email, u.EmailVerified, u.Name, groups, u.PasswordHash, u.Disabled,
		s.timeArg(u.CreatedAt), s.timeArg(u.UpdatedAt)}, nil
}

// CreateUser stores a new user; storage.ErrConflict if the id or the
// username exists.
func (s *Store) CreateUser(ctx context.Context, u storage.User) error {
	if u.ID == "" {
		return errors.New("create user: empty id")
	}
	s.stamp(&u.CreatedAt, &u.UpdatedAt)
	args, err := s.userArgs(u)
	if err != nil {
		return fmt.Errorf("create user %q: %w", u.ID, err)
	}
	res, err := s.writer(ctx).ExecContext(ctx,
		`INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING`, args...)
	if err != nil {
		return fmt.Errorf("create user %q: %w", u.ID, err)
	}
	if n, err := affected(res); err != nil || n == 0 {
		return fmt.Errorf("create user %q: id or username exists: %w", u.ID, orConflict(err))
	}
	return nil
}

// GetUser returns the user; storage.ErrNotFound if there is none.
func (s *Store) GetUser(ctx context.Context, id string) (storage.User, error) {
	u, err := s.getUser(ctx, s.reader(ctx), `id = $1`, id, "")
	if err != nil {
		return storage.User{}, fmt.Errorf("get user %q: %w", id, err)
	}
	return u, nil
}

// GetUserByUsername returns the user with that username (compared
// exactly); storage.ErrNotFound if there is none.
func (s *Store) GetUserByUsername(ctx context.Context, username string) (storage.User, error) {
	u, err := s.getUser(ctx, s.reader(ctx), `username = $1`, username, "")
	if err != nil {
		return storage.User{}, fmt.Errorf("get user by username %q: %w", username, err)
	}
	return u, nil
}

func (s *Store) getUser(ctx context.Context, q querier, where, arg, lock string) (storage.User, error) {
	u, err := scanUser(q.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE `+where+lock, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return storage.User{}, storage.ErrNotFound
	}
	return u, err
}

// ListUsers returns every user, ordered by username (users without one
// last), then id.
func (s *Store) ListUsers(ctx context.Context) ([]storage.User, error) {
	rows, err := s.reader(ctx).QueryContext(ctx,
		`SELECT `+userColumns+` FROM users ORDER BY username IS NULL, username, id`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []storage.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// UpdateUser applies fn to the user atomically. A new username that
// another user has is storage.ErrConflict, and nothing changes.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(storage.User) (storage.User, error)) error {
	err := s.inTx(ctx, func(ctx context.Context, tx *Store) error {
		old, err := tx.getUser(ctx, tx.tx, `id = $1`, id, tx.forUpdate())
		if err != nil {
			return err
		}
		u, err := fn(old)
		if err != nil {
			return err
		}
		if u.ID != id {
			return fmt.Errorf("the updater changed the id to %q", u.ID)
		}
		tx.touch(old.UpdatedAt, &u.UpdatedAt)
		args, err := tx.userArgs(u)
		if err != nil {
			return err
		}
		_, err = tx.tx.ExecContext(ctx,
			`UPDATE users SET username = $2, email = $3, email_verified = $4, name = $5, groups_json = $6,
			 password_hash = $7, disabled = $8, created_at = $9, updated_at = $10 WHERE id = $1`, args...)
		if isUniqueViolation(err) {
			return fmt.Errorf("username %q exists: %w", u.Username, storage.ErrConflict)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("update user %q: %w", id, err)
	}
	return nil
}

// DeleteUser removes the user; storage.ErrNotFound if there is none.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	if err := s.deleteByID(ctx, "users", id); err != nil {
		return fmt.Errorf("delete user %q: %w", id, err)
	}
	return nil
}
