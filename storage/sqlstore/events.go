package sqlstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/latchkeyid/latchkey/storage"
)

const eventColumns = `id, type, time, actor, user_id, client_id, connector_id, ip, user_agent, request_id, data`

// AppendEvent writes an audit event, filling an empty ID (16 random bytes,
// hex) and a zero Time (the clock). storage.ErrConflict if the ID exists.
func (s *Store) AppendEvent(ctx context.Context, e storage.Event) error {
	if e.ID == "" {
		e.ID = newEventID()
	}
	if e.Time.IsZero() {
		e.Time = s.c.clock.Now()
	}
	data, err := mapArg(e.Data)
	if err != nil {
		return fmt.Errorf("append event %s %q: %w", e.Type, e.ID, err)
	}
	var n int64
	err = s.write(ctx, func(ctx context.Context, q querier) error {
		res, err := q.ExecContext(ctx,
			`INSERT INTO audit_events (`+eventColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING`,
			e.ID, e.Type, s.timeArg(e.Time), e.Actor, e.UserID, e.ClientID, e.ConnectorID, e.IP, e.UserAgent, e.RequestID, data)
		if err != nil {
			return err
		}
		n, err = affected(res)
		return err
	})
	if err == nil && n == 0 {
		err = storage.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("append event %s %q: %w", e.Type, e.ID, err)
	}
	return nil
}

// ListEvents returns the events f selects, oldest first (events with the
// same time in the order they were appended). Since is inclusive; Limit
// keeps the oldest Limit events.
func (s *Store) ListEvents(ctx context.Context, f storage.EventFilter) ([]storage.Event, error) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, arg any) {
		args = append(args, arg)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if !f.Since.IsZero() {
		add(`time >= ?`, s.timeArg(f.Since))
	}
	if f.Type != "" {
		add(`type = ?`, f.Type)
	}
	if f.UserID != "" {
		add(`user_id = ?`, f.UserID)
	}
	if f.After != "" {
		// The listing order is (time, seq): continue after the cursor's
		// place in it. An unknown id makes the subquery empty: nothing.
		add(`(time, seq) > (SELECT a.time, a.seq FROM audit_events a WHERE a.id = ?)`, f.After)
	}
	q := `SELECT ` + eventColumns + ` FROM audit_events`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY time, seq`
	if f.Limit > 0 {
		args = append(args, f.Limit)
		q += ` LIMIT $` + strconv.Itoa(len(args))
	}
	rows, err := s.reader(ctx).QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	defer rows.Close()
	var out []storage.Event
	for rows.Next() {
		var (
			e    storage.Event
			data []byte
		)
		if err := rows.Scan(&e.ID, &e.Type, timeDest{&e.Time}, &e.Actor, &e.UserID, &e.ClientID, &e.ConnectorID,
			&e.IP, &e.UserAgent, &e.RequestID, &data); err != nil {
			return nil, fmt.Errorf("list events: %w", err)
		}
		if err := decodeDoc(data, &e.Data); err != nil {
			return nil, fmt.Errorf("list events: event %q: %w", e.ID, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return out, nil
}
