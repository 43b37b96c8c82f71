package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
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
		if err := tx.lockForRotation(ctx, q, hash); err != nil {
			return err
		}
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

// RevokeRefreshFamily revokes every token of the family not yet revoked,
// a successor committed by a racing rotation included (revokePasses).
func (s *Store) RevokeRefreshFamily(ctx context.Context, familyID string, at time.Time) (int64, error) {
	n, err := s.revokePasses(ctx, lockKey("rt-family:", familyID),
		`UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL`,
		familyID, s.timeArg(at))
	if err != nil {
		return n, fmt.Errorf("revoke refresh family %q: %w", familyID, err)
	}
	return n, nil
}

// revokePasses runs a revoking UPDATE until a pass finds nothing left
// (at most maxRevokePasses). On PostgreSQL it first takes the exclusive
// advisory lock key in a transaction: a rotation holds that lock shared
// from before it locks its parent row until it commits (lockForRotation),
// so once the lock is granted no rotation of these tokens is in flight,
// the UPDATE sees every successor, and a rotation waiting for the lock
// finds its parent revoked. Without it a tight loop of rotations could win
// every parent row lock and outlast the passes.
func (s *Store) revokePasses(ctx context.Context, key int64, update string, args ...any) (int64, error) {
	var total int64
	err := s.inTx(ctx, func(ctx context.Context, tx *Store) error {
		q := tx.writer(ctx)
		if tx.c.dialect == DialectPostgres {
			if _, err := q.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, key); err != nil {
				return fmt.Errorf("lock against rotations: %w", err)
			}
		}
		for range maxRevokePasses {
			res, err := q.ExecContext(ctx, update, args...)
			if err != nil {
				return err
			}
			n, err := affected(res)
			if err != nil {
				return err
			}
			if n == 0 {
				return nil
			}
			total += n
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return total, nil
}

// lockForRotation takes, on PostgreSQL, the shared advisory locks of the
// token's family, of its client's session and of its client and user
// (revokePasses takes them exclusive) before the rotation locks the
// parent row. family_id, sid, client_id and user_id never change, so
// reading them unlocked is safe; an unknown hash takes no lock and the
// rotation reports it.
func (s *Store) lockForRotation(ctx context.Context, q querier, hash string) error {
	if s.c.dialect != DialectPostgres {
		return nil
	}
	var family, sid, client, user string
	err := q.QueryRowContext(ctx, `SELECT family_id, sid, client_id, user_id FROM refresh_tokens WHERE hash = $1`, hash).Scan(&family, &sid, &client, &user)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := q.ExecContext(ctx, `SELECT pg_advisory_xact_lock_shared($1), pg_advisory_xact_lock_shared($2), pg_advisory_xact_lock_shared($3)`,
		lockKey("rt-family:", family), lockKey("rt-sid:", client+"\x00"+sid), lockKey("rt-user_id:", client+"\x00"+user)); err != nil {
		return fmt.Errorf("lock against revocations: %w", err)
	}
	return nil
}

// lockKey is the advisory lock key of a name in a kind: 64 bits of its
// FNV-1a hash (a collision only makes two unrelated operations wait for
// each other).
func lockKey(kind, name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(kind))
	h.Write([]byte(name))
	return int64(h.Sum64())
}

// RevokeRefreshTokensBySID revokes every token of the client issued under
// the session sid not yet revoked, like RevokeRefreshFamily (a successor
// committed by a racing rotation carries the same sid and client).
func (s *Store) RevokeRefreshTokensBySID(ctx context.Context, clientID, sid string, at time.Time) (int64, error) {
	n, err := s.revokeClientTokens(ctx, "sid", clientID, sid, at)
	if err != nil {
		return n, fmt.Errorf("revoke refresh tokens of client %q in session %q: %w", clientID, sid, err)
	}
	return n, nil
}

// RevokeUserRefreshTokens revokes every token of the client issued to the
// user not yet revoked, like RevokeRefreshTokensBySID (a consent revoked
// on the account page).
func (s *Store) RevokeUserRefreshTokens(ctx context.Context, clientID, userID string, at time.Time) (int64, error) {
	n, err := s.revokeClientTokens(ctx, "user_id", clientID, userID, at)
	if err != nil {
		return n, fmt.Errorf("revoke refresh tokens of client %q for user %q: %w", clientID, userID, err)
	}
	return n, nil
}

// revokeClientTokens revokes the client's tokens not yet revoked whose
// column ("sid" or "user_id", never input) is value; nothing when either
// is empty.
func (s *Store) revokeClientTokens(ctx context.Context, column, clientID, value string, at time.Time) (int64, error) {
	if clientID == "" || value == "" {
		return 0, nil
	}
	return s.revokePasses(ctx, lockKey("rt-"+column+":", clientID+"\x00"+value),
		`UPDATE refresh_tokens SET revoked_at = $3 WHERE `+column+` = $1 AND client_id = $2 AND revoked_at IS NULL`,
		value, clientID, s.timeArg(at))
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
