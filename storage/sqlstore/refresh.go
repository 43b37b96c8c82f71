package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/latchkeyid/latchkey/storage"
)

const refreshColumns = `hash, family_id, parent_hash, client_id, user_id, scopes_json, sid, auth_time, amr_json, claims,
	issued_at, family_created_at, rotated_at, successor_hash, revoked_at`

// maxRevokePasses bounds RevokeRefreshFamily's repeated UPDATE (see there).
const maxRevokePasses = 8

func scanRefresh(row interface{ Scan(...any) error }) (storage.RefreshToken, error) {
	var (
		t           storage.RefreshToken
		scopes, amr []byte
		claims      []byte
	)
	if err := row.Scan(&t.Hash, &t.FamilyID, &t.ParentHash, &t.ClientID, &t.UserID, &scopes, &t.SID, timeDest{&t.AuthTime},
		&amr, &claims, timeDest{&t.IssuedAt}, timeDest{&t.FamilyCreatedAt}, timeDest{&t.RotatedAt}, &t.SuccessorHash,
		timeDest{&t.RevokedAt}); err != nil {
		return storage.RefreshToken{}, err
	}
	if err := decodeDoc(scopes, &t.Scopes); err != nil {
		return storage.RefreshToken{}, err
	}
	if err := decodeDoc(amr, &t.AMR); err != nil {
		return storage.RefreshToken{}, err
	}
	t.Claims = rawValue(claims)
	return t, nil
}

// nullTimeArg is t as a query argument, NULL for the zero time.
func (s *Store) nullTimeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return s.timeArg(t)
}

func (s *Store) refreshArgs(t storage.RefreshToken) ([]any, error) {
	scopes, err := docArg(t.Scopes)
	if err != nil {
		return nil, err
	}
	amr, err := docArg(t.AMR)
	if err != nil {
		return nil, err
	}
	return []any{t.Hash, t.FamilyID, t.ParentHash, t.ClientID, t.UserID, scopes, t.SID, s.nullTimeArg(t.AuthTime),
		amr, rawArg(t.Claims), s.timeArg(t.IssuedAt), s.timeArg(t.FamilyCreatedAt), s.nullTimeArg(t.RotatedAt),
		t.SuccessorHash, s.nullTimeArg(t.RevokedAt)}, nil
}

// isForeignKeyViolation reports an insert that names a missing user or
// client, on either dialect.
func isForeignKeyViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23503" // foreign_key_violation
	}
	return false
}

// insertRefresh inserts t: storage.ErrConflict if the hash exists,
// storage.ErrNotFound if the user or client does not.
func (s *Store) insertRefresh(ctx context.Context, q querier, t storage.RefreshToken) error {
	if t.Hash == "" || t.FamilyID == "" {
		return errors.New("empty hash or family id")
	}
	args, err := s.refreshArgs(t)
	if err != nil {
		return err
	}
	res, err := q.ExecContext(ctx, `INSERT INTO refresh_tokens (`+refreshColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) ON CONFLICT (hash) DO NOTHING`, args...)
	if isForeignKeyViolation(err) {
		return fmt.Errorf("user %q or client %q: %w", t.UserID, t.ClientID, storage.ErrNotFound)
	}
	if err != nil {
		return err
	}
	if n, err := affected(res); err != nil || n == 0 {
		return fmt.Errorf("hash exists: %w", orConflict(err))
	}
	return nil
}

// CreateRefreshToken stores t as given; storage.ErrConflict if its hash
// exists, storage.ErrNotFound if its user or client does not.
func (s *Store) CreateRefreshToken(ctx context.Context, t storage.RefreshToken) error {
	if err := s.insertRefresh(ctx, s.writer(ctx), t); err != nil {
		return fmt.Errorf("create refresh token %q: %w", t.Hash, err)
	}
	return nil
}

// GetRefreshToken returns the token with that hash; storage.ErrNotFound
// if there is none.
func (s *Store) GetRefreshToken(ctx context.Context, hash string) (storage.RefreshToken, error) {
	t, err := scanRefresh(s.reader(ctx).QueryRowContext(ctx,
		`SELECT `+refreshColumns+` FROM refresh_tokens WHERE hash = $1`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		err = storage.ErrNotFound
	}
	if err != nil {
		return storage.RefreshToken{}, fmt.Errorf("get refresh token %q: %w", hash, err)
	}
	return t, nil
}

// RotateRefreshToken is the rotation compare-and-swap. It is one
// conditional UPDATE ... RETURNING on the presented token's row, which
// PostgreSQL serialises on the row lock under READ COMMITTED (a loser
// re-reads the committed row, finds rotated_at set and updates nothing:
// no serialization error), and SQLite's single writer serialises anyway;
// the successor is inserted in the same transaction.
func (s *Store) RotateRefreshToken(ctx context.Context, hash string, at time.Time, successor storage.RefreshToken) error {
	err := s.inTx(ctx, func(ctx context.Context, tx *Store) error {
		var got string
		q := tx.writer(ctx)
		err := q.QueryRowContext(ctx,
			`UPDATE refresh_tokens SET rotated_at = $2, successor_hash = $3
			 WHERE hash = $1 AND rotated_at IS NULL AND revoked_at IS NULL RETURNING hash`,
			hash, tx.timeArg(at), successor.Hash).Scan(&got)
		if errors.Is(err, sql.ErrNoRows) {
			var one int
			err = q.QueryRowContext(ctx, `SELECT 1 FROM refresh_tokens WHERE hash = $1`, hash).Scan(&one)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				return storage.ErrNotFound
			case err != nil:
				return err
			}
			return fmt.Errorf("already rotated or revoked: %w", storage.ErrConflict)
		}
		if err != nil {
			return err
		}
		if err := tx.insertRefresh(ctx, q, successor); err != nil {
			return fmt.Errorf("insert successor %q: %w", successor.Hash, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("rotate refresh token %q: %w", hash, err)
	}
	return nil
}

// RevokeRefreshFamily revokes every token of the family not yet revoked.
//
// On PostgreSQL an UPDATE sees the rows committed when it started; a
// rotation that held the parent's row lock while the UPDATE waited for it
// commits a successor the UPDATE cannot see. The UPDATE is therefore
// repeated, each time with a fresh snapshot, until it finds nothing left:
// such a rotation has committed before the pass that revoked its parent
// ended, so the next pass sees its successor.
func (s *Store) RevokeRefreshFamily(ctx context.Context, familyID string, at time.Time) (int64, error) {
	var total int64
	for range maxRevokePasses {
		res, err := s.writer(ctx).ExecContext(ctx,
			`UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL`,
			familyID, s.timeArg(at))
		if err != nil {
			return total, fmt.Errorf("revoke refresh family %q: %w", familyID, err)
		}
		n, err := affected(res)
		if err != nil {
			return total, fmt.Errorf("revoke refresh family %q: %w", familyID, err)
		}
		if n == 0 {
			return total, nil
		}
		total += n
	}
	return total, nil
}

// RevokeRefreshTokensBySID revokes every token of the client issued under
// the session sid not yet revoked, repeating the UPDATE like
// RevokeRefreshFamily (a successor committed by a racing rotation carries
// the same sid, and the next pass sees it).
func (s *Store) RevokeRefreshTokensBySID(ctx context.Context, clientID, sid string, at time.Time) (int64, error) {
	if clientID == "" || sid == "" {
		return 0, nil
	}
	var total int64
	for range maxRevokePasses {
		res, err := s.writer(ctx).ExecContext(ctx,
			`UPDATE refresh_tokens SET revoked_at = $3 WHERE sid = $1 AND client_id = $2 AND revoked_at IS NULL`,
			sid, clientID, s.timeArg(at))
		if err != nil {
			return total, fmt.Errorf("revoke refresh tokens of client %q in session %q: %w", clientID, sid, err)
		}
		n, err := affected(res)
		if err != nil {
			return total, fmt.Errorf("revoke refresh tokens of client %q in session %q: %w", clientID, sid, err)
		}
		if n == 0 {
			return total, nil
		}
		total += n
	}
	return total, nil
}

// PruneRefreshTokens deletes the families that can no longer refresh, in
// one statement: family_created_at is the same on every row of a family,
// and the idle test looks at the family's newest issued_at.
func (s *Store) PruneRefreshTokens(ctx context.Context, familyCreatedBefore, lastIssuedBefore time.Time) (int64, error) {
	res, err := s.writer(ctx).ExecContext(ctx,
		`DELETE FROM refresh_tokens WHERE family_created_at < $1 OR family_id IN
		 (SELECT family_id FROM refresh_tokens GROUP BY family_id HAVING MAX(issued_at) < $2)`,
		s.timeArg(familyCreatedBefore), s.timeArg(lastIssuedBefore))
	if err != nil {
		return 0, fmt.Errorf("prune refresh tokens: %w", err)
	}
	n, err := affected(res)
	if err != nil {
		return 0, fmt.Errorf("prune refresh tokens: %w", err)
	}
	return n, nil
}
