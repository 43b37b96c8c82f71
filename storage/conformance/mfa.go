package conformance

import (
	"errors"
	"reflect"
	"strconv"
	"sync"
	"testing"

	"github.com/latchkeyid/latchkey/storage"
)

// durTestMFA checks the second-factor credential methods: round trips,
// order, errors, the atomic updater under concurrency (what TOTP replay
// protection relies on), per-user deletion and the cascade from users.
func durTestMFA(t *testing.T, open func(t *testing.T) storage.Durable) {
	full := func(id, user string, minute int) storage.MFACredential {
		return storage.MFACredential{ID: id, UserID: user, Type: "totp", Label: "phone " + id,
			Data: []byte(`{"sealed":"v1.k1.abc","last_step":0}` + "\x00\xff"), CreatedAt: durFixtureTime(minute), LastUsedAt: durFixtureTime(minute + 1)}
	}
	norm := func(c storage.MFACredential) storage.MFACredential {
		c.CreatedAt, c.LastUsedAt = durTime(c.CreatedAt), durTime(c.LastUsedAt)
		return c
	}
	same := func(t *testing.T, what string, got, want storage.MFACredential) {
		t.Helper()
		want = norm(want)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\n got  %+v data %q\n want %+v data %q", what, got, got.Data, want, want.Data)
		}
	}
	t.Run("RoundTrip", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		durWantErr(t, "create user", s.CreateUser(ctx, durUser("mu1", "mfa-user")), nil)
		c := full("c1", "mu1", 10)
		durWantErr(t, "create", s.CreateMFACredential(ctx, c), nil)
		got, err := s.GetMFACredential(ctx, "c1")
		durWantErr(t, "get", err, nil)
		same(t, "get", got, c)
		min := storage.MFACredential{ID: "c0", UserID: "mu1", Type: "recovery", Data: []byte{}, CreatedAt: durFixtureTime(5)}
		durWantErr(t, "create minimal", s.CreateMFACredential(ctx, min), nil)
		got, err = s.GetMFACredential(ctx, "c0")
		durWantErr(t, "get minimal", err, nil)
		same(t, "get minimal", got, min)
		list, err := s.ListMFACredentials(ctx, "mu1")
		durWantErr(t, "list", err, nil)
		if len(list) != 2 || list[0].ID != "c0" || list[1].ID != "c1" {
			t.Fatalf("list = %v, want c0, c1 (oldest first)", list)
		}
		none, err := s.ListMFACredentials(ctx, "nobody")
		durWantErr(t, "list of unknown user", err, nil)
		if none == nil || len(none) != 0 {
			t.Fatalf("list of unknown user = %#v, want an empty list", none)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		durWantErr(t, "create user", s.CreateUser(ctx, durUser("mu1", "mfa-user")), nil)
		durWantErrNaming(t, "create for unknown user", s.CreateMFACredential(ctx, full("c1", "nobody", 1)), storage.ErrNotFound, "c1")
		durWantErr(t, "create", s.CreateMFACredential(ctx, full("c1", "mu1", 1)), nil)
		durWantErrNaming(t, "create duplicate", s.CreateMFACredential(ctx, full("c1", "mu1", 2)), storage.ErrConflict, "c1")
		_, err := s.GetMFACredential(ctx, "missing")
		durWantErrNaming(t, "get missing", err, storage.ErrNotFound, "missing")
		durWantErrNaming(t, "update missing", s.UpdateMFACredential(ctx, "missing", func(c storage.MFACredential) (storage.MFACredential, error) { return c, nil }), storage.ErrNotFound, "missing")
		durWantErrNaming(t, "delete missing", s.DeleteMFACredential(ctx, "missing"), storage.ErrNotFound, "missing")
		boom := errors.New("boom")
		err = s.UpdateMFACredential(ctx, "c1", func(c storage.MFACredential) (storage.MFACredential, error) {
			c.Data = []byte("changed")
			return c, boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("updater error: %v, want it wrapped", err)
		}
		err = s.UpdateMFACredential(ctx, "c1", func(c storage.MFACredential) (storage.MFACredential, error) {
			c.UserID = "other"
			return c, nil
		})
		if err == nil {
			t.Fatal("an updater that changes the user: nil error")
		}
		got, _ := s.GetMFACredential(ctx, "c1")
		same(t, "after failed updates", got, full("c1", "mu1", 1))
	})
	t.Run("Update", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		durWantErr(t, "create user", s.CreateUser(ctx, durUser("mu1", "mfa-user")), nil)
		c := full("c1", "mu1", 1)
		c.LastUsedAt = c.LastUsedAt.AddDate(0, 0, 0)
		durWantErr(t, "create", s.CreateMFACredential(ctx, c), nil)
		want := c
		want.Label, want.Data, want.LastUsedAt = "laptop", []byte("next"), durFixtureTime(30)
		durWantErr(t, "update", s.UpdateMFACredential(ctx, "c1", func(old storage.MFACredential) (storage.MFACredential, error) {
			same(t, "updater sees", old, c)
			return want, nil
		}), nil)
		got, _ := s.GetMFACredential(ctx, "c1")
		same(t, "after update", got, want)
	})
	t.Run("ConcurrentUpdates", func(t *testing.T) {
		// Every updater appends to Data: no update may be lost.
		s := open(t)
		ctx := t.Context()
		durWantErr(t, "create user", s.CreateUser(ctx, durUser("mu1", "mfa-user")), nil)
		c := full("c1", "mu1", 1)
		c.Data = []byte{}
		durWantErr(t, "create", s.CreateMFACredential(ctx, c), nil)
		const n = 16
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.UpdateMFACredential(ctx, "c1", func(c storage.MFACredential) (storage.MFACredential, error) {
					c.Data = append(append([]byte{}, c.Data...), 'x')
					return c, nil
				}); err != nil {
					t.Errorf("update %d: %v", i, err)
				}
			}()
		}
		wg.Wait()
		got, _ := s.GetMFACredential(ctx, "c1")
		if len(got.Data) != n {
			t.Fatalf("after %d concurrent updates Data has %d bytes: lost updates", n, len(got.Data))
		}
	})
	t.Run("DeleteAndCascade", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		durWantErr(t, "create user 1", s.CreateUser(ctx, durUser("mu1", "mfa-user")), nil)
		durWantErr(t, "create user 2", s.CreateUser(ctx, durUser("mu2", "mfa-user2")), nil)
		for i := range 3 {
			id := "a" + strconv.Itoa(i)
			durWantErr(t, "create "+id, s.CreateMFACredential(ctx, full(id, "mu1", i)), nil)
		}
		durWantErr(t, "create b", s.CreateMFACredential(ctx, full("b", "mu2", 1)), nil)
		durWantErr(t, "delete a0", s.DeleteMFACredential(ctx, "a0"), nil)
		n, err := s.DeleteUserMFACredentials(ctx, "mu1")
		durWantErr(t, "delete user's", err, nil)
		if n != 2 {
			t.Fatalf("DeleteUserMFACredentials = %d, want 2", n)
		}
		if n, _ := s.DeleteUserMFACredentials(ctx, "mu1"); n != 0 {
			t.Fatalf("second DeleteUserMFACredentials = %d, want 0", n)
		}
		durWantErr(t, "delete user 2", s.DeleteUser(ctx, "mu2"), nil)
		_, err = s.GetMFACredential(ctx, "b")
		durWantErr(t, "credential of a deleted user", err, storage.ErrNotFound)
	})
}
