package sqlstore

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// normTime is t as stored: UTC, microseconds (PostgreSQL's precision).
func normTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// timeArg is t as a query argument: timestamptz on PostgreSQL, fixed-width
// UTC text on SQLite (so that text order is time order).
func (s *Store) timeArg(t time.Time) any {
	t = normTime(t)
	if s.c.dialect == DialectSQLite {
		return t.Format(sqliteTimeLayout)
	}
	return t
}

// timeDest scans a time column of either dialect into *t, in UTC.
type timeDest struct{ t *time.Time }

func (d timeDest) Scan(src any) error {
	switch v := src.(type) {
	case time.Time:
		*d.t = v.UTC()
	case string:
		return d.parse(v)
	case []byte:
		return d.parse(string(v))
	case nil:
		*d.t = time.Time{}
	default:
		return fmt.Errorf("scan time: unexpected %T", src)
	}
	return nil
}

func (d timeDest) parse(s string) error {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("scan time: %w", err)
	}
	*d.t = t.UTC()
	return nil
}

// rawArg is raw JSON as an argument: NULL when empty.
func rawArg(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

// rawValue is a scanned raw JSON column: nil for NULL, else a copy.
func rawValue(b []byte) json.RawMessage {
	if b == nil {
		return nil
	}
	return json.RawMessage(append([]byte{}, b...))
}

// docArg marshals a document the store owns.
func docArg(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode: %w", err)
	}
	return string(b), nil
}

// mapArg marshals a map, NULL for a nil one.
func mapArg(m map[string]any) (any, error) {
	if m == nil {
		return nil, nil
	}
	return docArg(m)
}

func decodeDoc(b []byte, v any) error {
	if b == nil {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode stored document: %w", err)
	}
	return nil
}

// isUniqueViolation reports a duplicate primary key or unique column on
// either dialect.
func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505" // unique_violation
	}
	return false
}

// affected is the row count of an INSERT/UPDATE/DELETE.
func affected(res sql.Result) (int64, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("rows affected: %w", err)
	}
	return n, nil
}

// newEventID is 16 random bytes in hex.
func newEventID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error
	return hex.EncodeToString(b)
}
