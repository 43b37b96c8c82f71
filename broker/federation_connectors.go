package broker

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/storage"
)

// Upstream is one open connector with what the broker needs to know about
// it besides its capabilities.
type Upstream struct {
	Connector providers.Connector
	Type      string
	// TrustEmail: a verified email from this connector may link to an
	// existing user with that verified email (the connector config's
	// trustEmail).
	TrustEmail bool
}

// ConnectorLister lists the stored connectors (storage.Durable does).
type ConnectorLister interface {
	ListConnectors(ctx context.Context) ([]storage.Connector, error)
}

// Connectors is the live set of open upstream connectors of this
// replica. Sync opens what is new or changed in storage and closes what
// is gone; Watch calls Sync every interval, so a change made on any
// replica (CLI, config file, API) is picked up everywhere within it.
type Connectors struct {
	registry providers.Registry
	deps     providers.Deps
	prepare  func(storage.Connector) (json.RawMessage, error)
	log      *slog.Logger

	mu    sync.RWMutex
	open  map[string]openConnector
	order []string
}

type openConnector struct {
	up      Upstream
	version string // what the connector was opened from
}

// NewConnectors returns an empty set. prepare returns the config to open
// a stored connector with (cmd unseals the secrets in it); nil uses the
// stored config as is.
func NewConnectors(registry providers.Registry, deps providers.Deps, prepare func(storage.Connector) (json.RawMessage, error), log *slog.Logger) *Connectors {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if deps.Logger == nil {
		deps.Logger = log
	}
	return &Connectors{registry: registry, deps: deps, prepare: prepare, log: log, open: map[string]openConnector{}}
}

// version identifies a stored connector's content: a change to any field
// re-opens it.
func connectorVersion(c storage.Connector) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%d\x00", c.ID, c.Type, c.Name, c.UpdatedAt.UnixNano())
	h.Write(c.Config)
	return fmt.Sprintf("%x", h.Sum(nil))
}

// Sync makes the open set match the stored connectors. A connector that
// fails to open is logged and left out (the others keep working); the
// error lists the ones that failed.
func (c *Connectors) Sync(ctx context.Context, stored []storage.Connector) error {
	c.mu.RLock()
	current := c.open
	c.mu.RUnlock()
	next := make(map[string]openConnector, len(stored))
	order := make([]string, 0, len(stored))
	var failed []string
	for _, sc := range stored {
		if sc.ID == LocalConnectorID {
			continue
		}
		v := connectorVersion(sc)
		if old, ok := current[sc.ID]; ok && old.version == v {
			next[sc.ID] = old
			order = append(order, sc.ID)
			continue
		}
		up, err := c.openOne(ctx, sc)
		if err != nil {
			c.log.ErrorContext(ctx, "open connector", slog.String("connector_id", sc.ID), slog.String("type", sc.Type), slog.Any("error", err))
			failed = append(failed, sc.ID)
			continue
		}
		if _, ok := current[sc.ID]; ok {
			c.log.InfoContext(ctx, "connector re-opened", slog.String("connector_id", sc.ID))
		}
		next[sc.ID] = openConnector{up: up, version: v}
		order = append(order, sc.ID)
	}
	c.mu.Lock()
	c.open, c.order = next, order
	c.mu.Unlock()
	if len(failed) > 0 {
		return fmt.Errorf("connectors not opened: %v", failed)
	}
	return nil
}

func (c *Connectors) openOne(ctx context.Context, sc storage.Connector) (Upstream, error) {
	typ, ok := c.registry[sc.Type]
	if !ok {
		return Upstream{}, fmt.Errorf("unknown connector type %q", sc.Type)
	}
	cfg := sc.Config
	if c.prepare != nil {
		var err error
		if cfg, err = c.prepare(sc); err != nil {
			return Upstream{}, err
		}
	}
	if probs := typ.Validate(cfg); len(probs) > 0 {
		return Upstream{}, fmt.Errorf("invalid config: %v", probs)
	}
	name := sc.Name
	if name == "" {
		name = sc.ID
	}
	conn, err := typ.Open(ctx, providers.Info{ID: sc.ID, Name: name}, cfg, c.deps)
	if err != nil {
		return Upstream{}, err
	}
	var flags struct {
		TrustEmail bool `json:"trustEmail"`
	}
	_ = json.Unmarshal(cfg, &flags)
	return Upstream{Connector: conn, Type: sc.Type, TrustEmail: flags.TrustEmail}, nil
}

// Watch calls Sync with the stored connectors every interval until ctx
// ends.
func (c *Connectors) Watch(ctx context.Context, store ConnectorLister, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		list, err := store.ListConnectors(ctx)
		if err != nil {
			c.log.WarnContext(ctx, "list connectors", slog.Any("error", err))
			continue
		}
		_ = c.Sync(ctx, list)
	}
}

// Get returns the open connector with id.
func (c *Connectors) Get(id string) (Upstream, bool) {
	if c == nil {
		return Upstream{}, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	o, ok := c.open[id]
	return o.up, ok
}

// List returns the open connectors in storage order.
func (c *Connectors) List() []Upstream {
	if c == nil {
		return nil
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]Upstream, 0, len(c.order))
	for _, id := range c.order {
		out = append(out, c.open[id].up)
	}
	return out
}

// IDs returns the ids of the open connectors.
func (c *Connectors) IDs() []string {
	if c == nil {
		return nil
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Clone(c.order)
}
