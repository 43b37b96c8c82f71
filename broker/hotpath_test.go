package broker_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/storage"
)

// TestBatchedTokenEvents: with BatchTokenEvents, every token.issued event
// of concurrent grants is written once WaitEvents returns, with its own
// request's fields, on SQLite and PostgreSQL.
func TestBatchedTokenEvents(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			f := newFixture(t, dialect, databases(t, dialect)(t), func(o *broker.Options) { o.BatchTokenEvents = true })
			f.addClient(storage.Client{ID: "svc", GrantTypes: []string{"client_credentials"}, Scope: "api"}, "svc-secret")
			const n = 64
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					m := meta
					m.RequestID = "req-" + string(rune('A'+i%26)) + string(rune('a'+i/26))
					if _, oerr := f.b.Token(context.Background(), form("grant_type", "client_credentials"), basic("svc", "svc-secret"), m); oerr != nil {
						errs <- oerr
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if err := f.b.WaitEvents(t.Context()); err != nil {
				t.Fatal(err)
			}
			es := f.events("token.issued")
			if len(es) != n {
				t.Fatalf("%d token.issued events, want %d", len(es), n)
			}
			seen := map[string]bool{}
			for _, e := range es {
				if e.ClientID != "svc" || e.Actor != "client:svc" || e.IP != meta.IP || e.Data["grant_type"] != "client_credentials" || e.Data["jti"] == "" {
					t.Fatalf("event %+v", e)
				}
				seen[e.RequestID] = true
			}
			if len(seen) != n {
				t.Fatalf("%d distinct request ids, want %d", len(seen), n)
			}
		})
	}
}

// TestClientCache: a cached client is reused for ClientCacheTTL, then read
// again, so a disabled (or deleted) client is refused within the TTL (at
// once for a code exchange); an unknown client is never cached.
func TestClientCache(t *testing.T) {
	f := newFixture(t, "sqlite", databases(t, "sqlite")(t), func(o *broker.Options) { o.ClientCacheTTL = time.Second })
	ctx := context.Background()
	grant := func() *oauth2Error {
		_, oerr := f.b.Token(ctx, form("grant_type", "client_credentials"), basic("svc", "svc-secret"), meta)
		if oerr == nil {
			return nil
		}
		return &oauth2Error{code: oerr.Code, status: oerr.Status}
	}
	if e := grant(); e == nil || e.code != "invalid_client" {
		t.Fatalf("unknown client: %+v", e)
	}
	f.addClient(storage.Client{ID: "svc", GrantTypes: []string{"client_credentials"}}, "svc-secret")
	if e := grant(); e != nil {
		t.Fatalf("client created after a miss: %+v (misses must not be cached)", e)
	}
	f.setClientDisabled("svc")
	f.clock.Advance(999 * time.Millisecond)
	if e := grant(); e != nil {
		t.Fatalf("within the TTL the cached client answers: %+v", e)
	}
	// A code exchange spends a single-use code, so it reads the client
	// from the store: refused at once.
	_, oerr := f.b.Token(ctx, form("grant_type", "authorization_code", "code", "c", "redirect_uri", redirectURI), basic("svc", "svc-secret"), meta)
	if oerr == nil || oerr.Code != "invalid_client" {
		t.Fatalf("code exchange of a disabled client within the TTL: %+v", oerr)
	}
	f.clock.Advance(time.Millisecond)
	if e := grant(); e == nil || e.code != "invalid_client" || e.status != 401 {
		t.Fatalf("disabled client after the TTL: %+v", e)
	}
	if err := f.db.DeleteClient(ctx, "svc"); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Second)
	if e := grant(); e == nil || e.code != "invalid_client" {
		t.Fatalf("deleted client: %+v", e)
	}
}

type oauth2Error struct {
	code   string
	status int
}
