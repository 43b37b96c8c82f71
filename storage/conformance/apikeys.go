package conformance

import (
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/storage"
)

// durTestAPIKeys checks the admin API key methods: round trips (zero
// times stay zero), order, errors, the updater under concurrency and the
// last-use touch that never moves backwards.
func durTestAPIKeys(t *testing.T, open func(t *testing.T) storage.Durable) {
	full := func(prefix string, minute int) storage.APIKey {
		return storage.APIKey{Prefix: prefix, Hash: "hash-" + prefix, Name: "ci " + prefix,
			Scopes: []string{"clients:read", "audit:read"}, CreatedBy: "cli", CreatedAt: durFixtureTime(minute),
			ExpiresAt: durFixtureTime(minute + 60), LastUsedAt: durFixtureTime(minute + 1),
			RevokedAt: durFixtureTime(minute + 2), ReplacedBy: "next-" + prefix}
	}
	norm := func(k storage.APIKey) storage.APIKey {
		k.CreatedAt, k.ExpiresAt, k.LastUsedAt, k.RevokedAt = durTime(k.CreatedAt), durTime(k.ExpiresAt), durTime(k.LastUsedAt), durTime(k.RevokedAt)
		return k
	}
	get := func(t *testing.T, s storage.Durable, prefix string) storage.APIKey {
		t.Helper()
		k, err := s.GetAPIKey(t.Context(), prefix)
		durWantErr(t, "get "+prefix, err, nil)
		return k
	}
	t.Run("FixtureComplete", func(t *testing.T) { durAllSet(t, full("x", 1)) })
	t.Run("RoundTrip", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		k := full("lk1", 10)
		durWantErr(t, "create", s.CreateAPIKey(ctx, k), nil)
		durEqual(t, "get", get(t, s, "lk1"), norm(k))
		min := storage.APIKey{Prefix: "lk0", Hash: "h0", Scopes: []string{}, CreatedAt: durFixtureTime(5)}
		durWantErr(t, "create minimal", s.CreateAPIKey(ctx, min), nil)
		durEqual(t, "get minimal", get(t, s, "lk0"), norm(min))
		list, err := s.ListAPIKeys(ctx)
		durWantErr(t, "list", err, nil)
		if len(list) != 2 || list[0].Prefix != "lk0" || list[1].Prefix != "lk1" {
			t.Fatalf("list = %v, want lk0, lk1 (oldest first)", list)
		}
	})
	t.Run("EmptyList", func(t *testing.T) {
		list, err := open(t).ListAPIKeys(t.Context())
		durWantErr(t, "list", err, nil)
		if list == nil || len(list) != 0 {
			t.Fatalf("list = %#v, want an empty list", list)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		durWantErr(t, "create", s.CreateAPIKey(ctx, full("lk1", 1)), nil)
		durWantErrNaming(t, "duplicate prefix", s.CreateAPIKey(ctx, full("lk1", 2)), storage.ErrConflict, "lk1")
		dupHash := full("lk2", 2)
		dupHash.Hash = "hash-lk1"
		durWantErrNaming(t, "duplicate hash", s.CreateAPIKey(ctx, dupHash), storage.ErrConflict, "lk2")
		_, err := s.GetAPIKey(ctx, "missing")
		durWantErrNaming(t, "get missing", err, storage.ErrNotFound, "missing")
		durWantErrNaming(t, "update missing", s.UpdateAPIKey(ctx, "missing", func(k storage.APIKey) (storage.APIKey, error) { return k, nil }), storage.ErrNotFound, "missing")
		durWantErrNaming(t, "touch missing", s.TouchAPIKey(ctx, "missing", durFixtureTime(3)), storage.ErrNotFound, "missing")
		boom := errors.New("boom")
		err = s.UpdateAPIKey(ctx, "lk1", func(k storage.APIKey) (storage.APIKey, error) {
			k.Name = "changed"
			return k, boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("updater error: %v, want it wrapped", err)
		}
		err = s.UpdateAPIKey(ctx, "lk1", func(k storage.APIKey) (storage.APIKey, error) {
			k.Hash = "other"
			return k, nil
		})
		if err == nil {
			t.Fatal("an updater that changes the hash: no error")
		}
		durEqual(t, "unchanged", get(t, s, "lk1"), norm(full("lk1", 1)))
	})
	t.Run("Update", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		k := storage.APIKey{Prefix: "lk1", Hash: "h1", Scopes: []string{"users:read"}, CreatedAt: durFixtureTime(1)}
		durWantErr(t, "create", s.CreateAPIKey(ctx, k), nil)
		err := s.UpdateAPIKey(ctx, "lk1", func(old storage.APIKey) (storage.APIKey, error) {
			durEqual(t, "updater sees", old, norm(k))
			old.RevokedAt, old.ExpiresAt, old.ReplacedBy = durFixtureTime(9), durFixtureTime(10), "lk2"
			return old, nil
		})
		durWantErr(t, "update", err, nil)
		want := k
		want.RevokedAt, want.ExpiresAt, want.ReplacedBy = durFixtureTime(9), durFixtureTime(10), "lk2"
		durEqual(t, "after update", get(t, s, "lk1"), norm(want))
	})
	t.Run("Touch", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		durWantErr(t, "create", s.CreateAPIKey(ctx, storage.APIKey{Prefix: "lk1", Hash: "h1", Scopes: []string{}, CreatedAt: durFixtureTime(1)}), nil)
		durWantErr(t, "touch", s.TouchAPIKey(ctx, "lk1", durFixtureTime(5)), nil)
		durEqual(t, "last used", get(t, s, "lk1").LastUsedAt, durTime(durFixtureTime(5)))
		durWantErr(t, "touch earlier", s.TouchAPIKey(ctx, "lk1", durFixtureTime(3)), nil)
		durEqual(t, "last used never moves back", get(t, s, "lk1").LastUsedAt, durTime(durFixtureTime(5)))
		durWantErr(t, "touch later", s.TouchAPIKey(ctx, "lk1", durFixtureTime(7).Add(time.Microsecond)), nil)
		durEqual(t, "last used", get(t, s, "lk1").LastUsedAt, durTime(durFixtureTime(7).Add(time.Microsecond)))
	})
	t.Run("ConcurrentUpdates", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		durWantErr(t, "create", s.CreateAPIKey(ctx, storage.APIKey{Prefix: "lk1", Hash: "h1", Scopes: []string{}, CreatedAt: durFixtureTime(1)}), nil)
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				errs[i] = s.UpdateAPIKey(ctx, "lk1", func(k storage.APIKey) (storage.APIKey, error) {
					k.Scopes = append(k.Scopes, "s"+strconv.Itoa(i))
					return k, nil
				})
			})
		}
		wg.Wait()
		for i, err := range errs {
			durWantErr(t, "update "+strconv.Itoa(i), err, nil)
		}
		if got := get(t, s, "lk1").Scopes; len(got) != n {
			t.Fatalf("scopes after %d concurrent appends = %v: lost updates", n, got)
		}
	})
}
