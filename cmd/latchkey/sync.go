package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/internal/config"
	"github.com/latchkeyid/latchkey/internal/secretbox"
	"github.com/latchkeyid/latchkey/storage"
)

// syncConfig makes storage match the config file's clients and connectors,
// in one transaction with an audit event per change: records in the file
// are created or replaced and marked config-managed (read-only through the
// API and CLI); config-managed records no longer in the file are deleted.
// Records created at run time are left alone, unless the file now names
// the same id, in which case the file takes it over.
func syncConfig(ctx context.Context, db storage.Durable, cfg *config.Config, ring *secretbox.Keyring, now time.Time) error {
	err := db.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
		want := map[string]bool{}
		for _, cc := range cfg.Clients {
			c := cc.ToStorage(now)
			want[c.ID] = true
			if err := upsertClient(ctx, tx, c); err != nil {
				return err
			}
		}
		clients, err := tx.ListClients(ctx)
		if err != nil {
			return fmt.Errorf("list clients: %w", err)
		}
		for _, c := range clients {
			if c.ConfigManaged && !want[c.ID] && c.ID != AdminClientID && c.ID != broker.AccountClientID { // the built-in clients stay
				if err := tx.DeleteClient(ctx, c.ID); err != nil {
					return fmt.Errorf("delete client %q: %w", c.ID, err)
				}
				if err := appendConfigEvent(ctx, tx, "client.deleted", now, map[string]any{"client_id": c.ID}); err != nil {
					return err
				}
			}
		}

		want = map[string]bool{}
		for _, cc := range cfg.Connectors {
			c := cc.ToStorage(now)
			want[c.ID] = true
			if err := upsertConnector(ctx, tx, ring, c); err != nil {
				return err
			}
		}
		conns, err := tx.ListConnectors(ctx)
		if err != nil {
			return fmt.Errorf("list connectors: %w", err)
		}
		for _, c := range conns {
			if c.ConfigManaged && !want[c.ID] {
				if err := tx.DeleteConnector(ctx, c.ID); err != nil {
					return fmt.Errorf("delete connector %q: %w", c.ID, err)
				}
				if err := appendConfigEvent(ctx, tx, "connector.deleted", now, map[string]any{"connector_id": c.ID}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("apply config clients and connectors: %w", err)
	}
	return nil
}

func upsertClient(ctx context.Context, tx storage.Durable, c storage.Client) error {
	old, err := tx.GetClient(ctx, c.ID)
	if errors.Is(err, storage.ErrNotFound) {
		if err := tx.CreateClient(ctx, c); err != nil {
			return fmt.Errorf("create client %q: %w", c.ID, err)
		}
		return appendConfigEvent(ctx, tx, "client.created", c.CreatedAt, map[string]any{"client_id": c.ID})
	}
	if err != nil {
		return fmt.Errorf("load client %q: %w", c.ID, err)
	}
	c.CreatedAt = old.CreatedAt
	if sameExceptUpdated(old, c, func(x *storage.Client) { x.UpdatedAt = time.Time{} }) {
		return nil
	}
	if err := tx.UpdateClient(ctx, c.ID, func(storage.Client) (storage.Client, error) { return c, nil }); err != nil {
		return fmt.Errorf("update client %q: %w", c.ID, err)
	}
	return appendConfigEvent(ctx, tx, "client.updated", c.UpdatedAt, map[string]any{"client_id": c.ID})
}

// upsertConnector stores c (plaintext config from the file) with its
// secrets sealed; an unchanged connector (compared in clear) is left
// alone, so its version does not move.
func upsertConnector(ctx context.Context, tx storage.Durable, ring *secretbox.Keyring, c storage.Connector) error {
	plain := c
	c, err := sealConnectorSecrets(ring, c)
	if err != nil {
		return err
	}
	old, err := tx.GetConnector(ctx, c.ID)
	if errors.Is(err, storage.ErrNotFound) {
		if err := tx.CreateConnector(ctx, c); err != nil {
			return fmt.Errorf("create connector %q: %w", c.ID, err)
		}
		return appendConfigEvent(ctx, tx, "connector.created", c.CreatedAt, map[string]any{"connector_id": c.ID})
	}
	if err != nil {
		return fmt.Errorf("load connector %q: %w", c.ID, err)
	}
	c.CreatedAt, plain.CreatedAt = old.CreatedAt, old.CreatedAt
	if oldPlain, err := unsealConnectorSecrets(ring, old); err == nil {
		old.Config = oldPlain
	}
	if sameExceptUpdated(old, plain, func(x *storage.Connector) { x.UpdatedAt = time.Time{} }) {
		return nil
	}
	if err := tx.UpdateConnector(ctx, c.ID, func(storage.Connector) (storage.Connector, error) { return c, nil }); err != nil {
		return fmt.Errorf("update connector %q: %w", c.ID, err)
	}
	return appendConfigEvent(ctx, tx, "connector.updated", c.UpdatedAt, map[string]any{"connector_id": c.ID})
}

// sameExceptUpdated compares two records as JSON after clearing the
// fields that change on every write.
func sameExceptUpdated[T any](a, b T, clear func(*T)) bool {
	clear(&a)
	clear(&b)
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}

func appendConfigEvent(ctx context.Context, tx storage.Durable, typ string, at time.Time, data map[string]any) error {
	e := storage.Event{Type: typ, Time: at, Actor: "config", Data: data}
	if id, ok := data["client_id"].(string); ok {
		e.ClientID = id
	}
	if id, ok := data["connector_id"].(string); ok {
		e.ConnectorID = id
	}
	if err := tx.AppendEvent(ctx, e); err != nil {
		return fmt.Errorf("audit %s: %w", typ, err)
	}
	return nil
}
