package broker

import (
	"context"
	"sync"
	"time"

	"github.com/latchkeyid/latchkey/storage"
)

// DefaultClientCacheTTL is the client cache lifetime `serve` uses: a
// client deleted, disabled or given a new secret (by the CLI, the admin
// API or another replica) is honoured by every replica within this time.
const DefaultClientCacheTTL = time.Second

// maxCachedClients bounds the cache; when full it is emptied (clients are
// few, and a flood of unknown ids is never cached).
const maxCachedClients = 4096

// clientCache keeps clients read from the store for a short time, so a
// client that calls the token or introspection endpoint thousands of times
// a second is read and decoded about once per TTL instead of on every
// request. Only found clients are kept. A zero ttl turns it off.
type clientCache struct {
	ttl     time.Duration
	mu      sync.Mutex
	entries map[string]clientEntry
}

type clientEntry struct {
	client storage.Client
	loaded time.Time
}

// getClient returns the client from the cache when it was loaded less than
// the cache's TTL ago, else from the store.
func (b *Broker) getClient(ctx context.Context, id string) (storage.Client, error) {
	c := b.clients
	if c.ttl <= 0 {
		return b.store.GetClient(ctx, id)
	}
	now := b.clock.Now()
	c.mu.Lock()
	e, ok := c.entries[id]
	c.mu.Unlock()
	if ok && now.Sub(e.loaded) < c.ttl && !now.Before(e.loaded) {
		return e.client, nil
	}
	client, err := b.store.GetClient(ctx, id)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		delete(c.entries, id)
		return client, err
	}
	if len(c.entries) >= maxCachedClients {
		clear(c.entries)
	}
	c.entries[id] = clientEntry{client: client, loaded: now}
	return client, nil
}
