package conformance

import (
	"errors"
	"reflect"
	"strconv"
	"sync"
	"testing"

	"github.com/latchkeyid/latchkey/storage"
)

// durTestIdentities checks linked upstream identities: round trips,
// uniqueness of (connector, subject), errors, the updater under
// concurrency, unlinking, lookup of users by email and the cascade from
// users.
func durTestIdentities(t *testing.T, open func(t *testing.T) storage.Durable) {
	full := func(conn, sub, user string, minute int) storage.Identity {
		return storage.Identity{ConnectorID: conn, Subject: sub, UserID: user, Email: sub + "@example.com",
			ConnectorData: []byte(`{"refresh":"v1.k1.sealed"}` + "\x00\xff"), CreatedAt: durFixtureTime(minute), LastLoginAt: durFixtureTime(minute + 1)}
	}
	norm := func(i storage.Identity) storage.Identity {
		i.CreatedAt, i.LastLoginAt = durTime(i.CreatedAt), durTime(i.LastLoginAt)
		return i
	}
	same := func(t *testing.T, what string, got, want storage.Identity) {
		t.Helper()
		if want = norm(want); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\n got  %#v data %q\n want %#v data %q", what, got, got.ConnectorData, want, want.ConnectorData)
		}
	}
	t.Run("RoundTrip", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		durWantErr(t, "create user", s.CreateUser(ctx, durUser("iu1", "ident-user")), nil)
		a := full("op", "alice", "iu1", 10)
		durWantErr(t, "create", s.CreateIdentity(ctx, a), nil)
		got, err := s.GetIdentity(ctx, "op", "alice")
		durWantErr(t, "get", err, nil)
		same(t, "get", got, a)
		min := storage.Identity{ConnectorID: "gh", Subject: "12345", UserID: "iu1", CreatedAt: durFixtureTime(5)}
		durWantErr(t, "create minimal", s.CreateIdentity(ctx, min), nil)
		got, err = s.GetIdentity(ctx, "gh", "12345")
		durWantErr(t, "get minimal", err, nil)
		same(t, "get minimal", got, min)
		// The same subject at another connector is another identity.
		durWantErr(t, "create user 2", s.CreateUser(ctx, durUser("iu2", "ident-user-2")), nil)
		durWantErr(t, "same subject, other connector", s.CreateIdentity(ctx, full("gh", "alice", "iu2", 11)), nil)
		list, err := s.ListUserIdentities(ctx, "iu1")
		durWantErr(t, "list", err, nil)
		if len(list) != 2 || list[0].ConnectorID != "gh" || list[1].ConnectorID != "op" {
			t.Fatalf("list = %v, want gh, op (oldest first)", list)
		}
		none, err := s.ListUserIdentities(ctx, "nobody")
		durWantErr(t, "list of unknown user", err, nil)
		if none == nil || len(none) != 0 {
			t.Fatalf("list of unknown user = %#v, want an empty list", none)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		durWantErr(t, "create user", s.CreateUser(ctx, durUser("iu1", "ident-user")), nil)
		durWantErr(t, "create user 2", s.CreateUser(ctx, durUser("iu2", "ident-user-2")), nil)
		durWantErrNaming(t, "create for unknown user", s.CreateIdentity(ctx, full("op", "alice", "nobody", 1)), storage.ErrNotFound, "alice")
		durWantErr(t, "create", s.CreateIdentity(ctx, full("op", "alice", "iu1", 1)), nil)
		durWantErrNaming(t, "link the same upstream account to another user", s.CreateIdentity(ctx, full("op", "alice", "iu2", 2)), storage.ErrConflict, "alice")
		_, err := s.GetIdentity(ctx, "op", "missing")
		durWantErrNaming(t, "get missing", err, storage.ErrNotFound, "missing")
		durWantErrNaming(t, "update missing", s.UpdateIdentity(ctx, "op", "missing", func(i storage.Identity) (storage.Identity, error) { return i, nil }), storage.ErrNotFound, "missing")
		durWantErrNaming(t, "delete missing", s.DeleteIdentity(ctx, "op", "missing"), storage.ErrNotFound, "missing")
		boom := errors.New("boom")
		err = s.UpdateIdentity(ctx, "op", "alice", func(i storage.Identity) (storage.Identity, error) {
			i.ConnectorData = []byte("changed")
			return i, boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("updater error: %v, want it wrapped", err)
		}
		err = s.UpdateIdentity(ctx, "op", "alice", func(i storage.Identity) (storage.Identity, error) {
			i.UserID = "iu2"
			return i, nil
		})
		if err == nil {
			t.Fatal("an updater that moves the identity to another user was accepted")
		}
		got, err := s.GetIdentity(ctx, "op", "alice")
		durWantErr(t, "get", err, nil)
		same(t, "after failed updates", got, full("op", "alice", "iu1", 1))
	})
	t.Run("UpdateAndUnlink", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		durWantErr(t, "create user", s.CreateUser(ctx, durUser("iu1", "ident-user")), nil)
		durWantErr(t, "create", s.CreateIdentity(ctx, full("op", "alice", "iu1", 1)), nil)
		want := full("op", "alice", "iu1", 1)
		want.ConnectorData, want.Email, want.LastLoginAt = []byte("rotated"), "new@example.com", durFixtureTime(30)
		durWantErr(t, "update", s.UpdateIdentity(ctx, "op", "alice", func(i storage.Identity) (storage.Identity, error) {
			i.ConnectorData, i.Email, i.LastLoginAt = want.ConnectorData, want.Email, want.LastLoginAt
			return i, nil
		}), nil)
		got, err := s.GetIdentity(ctx, "op", "alice")
		durWantErr(t, "get", err, nil)
		same(t, "after update", got, want)
		durWantErr(t, "clear data", s.UpdateIdentity(ctx, "op", "alice", func(i storage.Identity) (storage.Identity, error) {
			i.ConnectorData = nil
			return i, nil
		}), nil)
		if got, _ = s.GetIdentity(ctx, "op", "alice"); got.ConnectorData != nil {
			t.Fatalf("cleared data = %q, want nil", got.ConnectorData)
		}
		durWantErr(t, "unlink", s.DeleteIdentity(ctx, "op", "alice"), nil)
		_, err = s.GetIdentity(ctx, "op", "alice")
		durWantErr(t, "get after unlink", err, storage.ErrNotFound)
		// After unlinking, the upstream account may be linked again.
		durWantErr(t, "relink", s.CreateIdentity(ctx, full("op", "alice", "iu1", 2)), nil)
	})
	t.Run("ConcurrentUpdates", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		durWantErr(t, "create user", s.CreateUser(ctx, durUser("iu1", "ident-user")), nil)
		start := full("op", "alice", "iu1", 1)
		start.ConnectorData = []byte("")
		durWantErr(t, "create", s.CreateIdentity(ctx, start), nil)
		var wg sync.WaitGroup
		for w := range durWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := s.UpdateIdentity(ctx, "op", "alice", func(i storage.Identity) (storage.Identity, error) {
					i.ConnectorData = append(append([]byte{}, i.ConnectorData...), []byte(strconv.Itoa(w%10))...)
					return i, nil
				})
				if err != nil {
					t.Errorf("worker %d: %v", w, err)
				}
			}()
		}
		wg.Wait()
		got, err := s.GetIdentity(ctx, "op", "alice")
		durWantErr(t, "get", err, nil)
		if len(got.ConnectorData) != durWorkers {
			t.Fatalf("data has %d bytes after %d appends: lost updates", len(got.ConnectorData), durWorkers)
		}
	})
	t.Run("UsersByEmail", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		u1, u2, u3 := durUser("iu1", "one"), durUser("iu2", "two"), durUser("iu3", "three")
		u1.Email, u2.Email, u3.Email = "same@example.com", "same@example.com", "other@example.com"
		u1.CreatedAt, u2.CreatedAt = durFixtureTime(2), durFixtureTime(1)
		for _, u := range []storage.User{u1, u2, u3} {
			durWantErr(t, "create user "+u.ID, s.CreateUser(ctx, u), nil)
		}
		got, err := s.ListUsersByEmail(ctx, "same@example.com")
		durWantErr(t, "list", err, nil)
		if len(got) != 2 || got[0].ID != "iu2" || got[1].ID != "iu1" {
			t.Fatalf("by email = %v, want iu2, iu1 (oldest first)", got)
		}
		for _, e := range []string{"SAME@example.com", "", "nobody@example.com"} {
			got, err := s.ListUsersByEmail(ctx, e)
			durWantErr(t, "list "+e, err, nil)
			if got == nil || len(got) != 0 {
				t.Fatalf("by email %q = %v, want an empty list", e, got)
			}
		}
	})
	t.Run("CascadeFromUser", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		durWantErr(t, "create user", s.CreateUser(ctx, durUser("iu1", "ident-user")), nil)
		durWantErr(t, "create", s.CreateIdentity(ctx, full("op", "alice", "iu1", 1)), nil)
		durWantErr(t, "delete user", s.DeleteUser(ctx, "iu1"), nil)
		_, err := s.GetIdentity(ctx, "op", "alice")
		durWantErr(t, "identity of a deleted user", err, storage.ErrNotFound)
	})
}
