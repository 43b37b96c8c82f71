package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/latchkeyid/latchkey/storage"
)

const connectorColumns = `id, type, name, config, config_managed, created_at, updated_at, disabled`

func scanConnector(row interface{ Scan(...any) error }) (storage.Connector, error) {
	var (
		c      storage.Connector
		config []byte
	)
	if err := row.Scan(&c.ID, &c.Type, &c.Name, &config, &c.ConfigManaged, timeDest{&c.CreatedAt}, timeDest{&c.UpdatedAt}, &c.Disabled); err != nil {
		return storage.Connector{}, err
	}
	c.Config = rawValue(config)
	return c, nil
}

func (s *Store) connectorArgs(c storage.Connector) []any {
	return []any{c.ID, c.Type, c.Name, rawArg(c.Config), c.ConfigManaged, s.timeArg(c.CreatedAt), s.timeArg(c.UpdatedAt), c.Disabled}
}

// CreateConnector stores a new connector; storage.ErrConflict if the id
// exists.
func (s *Store) CreateConnector(ctx context.Context, c storage.Connector) error {
	if c.ID == "" {
		return errors.New("create connector: empty id")
	}
	s.stamp(&c.CreatedAt, &c.UpdatedAt)
	res, err := s.writer(ctx).ExecContext(ctx,
		`INSERT INTO connectors (`+connectorColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
		s.connectorArgs(c)...)
	if err != nil {
		return fmt.Errorf("create connector %q: %w", c.ID, err)
	}
	if n, err := affected(res); err != nil || n == 0 {
		return fmt.Errorf("create connector %q: %w", c.ID, orConflict(err))
	}
	return nil
}

// GetConnector returns the connector; storage.ErrNotFound if there is none.
func (s *Store) GetConnector(ctx context.Context, id string) (storage.Connector, error) {
	c, err := s.getConnector(ctx, s.reader(ctx), id, "")
	if err != nil {
		return storage.Connector{}, fmt.Errorf("get connector %q: %w", id, err)
	}
	return c, nil
}

func (s *Store) getConnector(ctx context.Context, q querier, id, lock string) (storage.Connector, error) {
	c, err := scanConnector(q.QueryRowContext(ctx, `SELECT `+connectorColumns+` FROM connectors WHERE id = $1`+lock, id))
	if errors.Is(err, sql.ErrNoRows) {
		return storage.Connector{}, storage.ErrNotFound
	}
	return c, err
}

// ListConnectors returns every connector, ordered by id.
func (s *Store) ListConnectors(ctx context.Context) ([]storage.Connector, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT `+connectorColumns+` FROM connectors ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list connectors: %w", err)
	}
	defer rows.Close()
	var out []storage.Connector
	for rows.Next() {
		c, err := scanConnector(rows)
		if err != nil {
			return nil, fmt.Errorf("list connectors: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list connectors: %w", err)
	}
	return out, nil
}

// UpdateConnector applies fn to the connector atomically.
func (s *Store) UpdateConnector(ctx context.Context, id string, fn func(storage.Connector) (storage.Connector, error)) error {
	err := s.inTx(ctx, func(ctx context.Context, tx *Store) error {
		old, err := tx.getConnector(ctx, tx.tx, id, tx.forUpdate())
		if err != nil {
			return err
		}
		c, err := fn(old)
		if err != nil {
			return err
		}
		if c.ID != id {
			return fmt.Errorf("the updater changed the id to %q", c.ID)
		}
		tx.touch(old.UpdatedAt, &c.UpdatedAt)
		_, err = tx.tx.ExecContext(ctx,
			`UPDATE connectors SET type = $2, name = $3, config = $4, config_managed = $5, created_at = $6, updated_at = $7, disabled = $8 WHERE id = $1`,
			tx.connectorArgs(c)...)
		return err
	})
	if err != nil {
		return fmt.Errorf("update connector %q: %w", id, err)
	}
	return nil
}

// DeleteConnector removes the connector; storage.ErrNotFound if there is
// none.
func (s *Store) DeleteConnector(ctx context.Context, id string) error {
	if err := s.deleteByID(ctx, "connectors", id); err != nil {
		return fmt.Errorf("delete connector %q: %w", id, err)
	}
	return nil
}
