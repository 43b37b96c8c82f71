package session_test

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/session"
	"github.com/latchkeyid/latchkey/storage"
	"github.com/latchkeyid/latchkey/storage/redisstore"
	"github.com/latchkeyid/latchkey/storage/sqlstore"
)

// backend opens a session store on one ephemeral backend with a fake
// clock. Redis expires keys on its own clock: tests that move the clock
// past a TTL run on SQL only.
type backend struct {
	name string
	open func(t *testing.T, clk clock.Clock) storage.Ephemeral
}

var backends = []backend{
	{"sqlite", func(t *testing.T, clk clock.Clock) storage.Ephemeral {
		db, err := sqlstore.Open(context.Background(), sqlstore.Options{Dialect: sqlstore.DialectSQLite, DSN: filepath.Join(t.TempDir(), "s.db"), Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if err := db.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		return db.Ephemeral()
	}},
	{"redis", func(t *testing.T, _ clock.Clock) storage.Ephemeral {
		addrs, prefix := testenv.Redis(t)
		rs, err := redisstore.Open(context.Background(), redisstore.Options{Addrs: addrs, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rs.Close() })
		return rs
	}},
}

func forBackends(t *testing.T, fn func(t *testing.T, s *session.Store, clk *clock.Fake, sqlOnly func())) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
			s := session.NewStore(be.open(t, clk), session.Options{Clock: clk})
			fn(t, s, clk, func() {
				if be.name != "sqlite" {
					t.Skip("moves the clock past a TTL: SQL store only")
				}
			})
		})
	}
}

func mustGet(t *testing.T, s *session.Store, cookie string) session.Session {
	t.Helper()
	got, err := s.Get(t.Context(), cookie)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return got
}

func wantNoSession(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("%s: %v, want ErrNoSession", what, err)
	}
}

func sids(ss []session.Session) []string {
	out := []string{}
	for _, s := range ss {
		out = append(out, s.SID)
	}
	return out
}

func TestCreateGet(t *testing.T) {
	forBackends(t, func(t *testing.T, s *session.Store, clk *clock.Fake, _ func()) {
		ctx := t.Context()
		now := clk.Now().UTC()
		cookie, sess, err := s.Create(ctx, "u1", "local", []string{"pwd"})
		if err != nil {
			t.Fatal(err)
		}
		want := session.Session{SID: sess.SID, UserID: "u1", AuthTime: now, AMR: []string{"pwd"}, ConnectorID: "local",
			Factors: map[string]time.Time{"pwd": now}, Steps: []session.Step{{AMR: []string{"pwd"}, At: now}}, CreatedAt: now,
			IdleExpiry: now.Add(24 * time.Hour), AbsoluteExpiry: now.Add(7 * 24 * time.Hour)}
		if !reflect.DeepEqual(sess, want) {
			t.Errorf("Create = %+v, want %+v", sess, want)
		}
		if len(cookie) != 43 || len(sess.SID) != 43 || cookie == sess.SID {
			t.Errorf("cookie %d bytes, sid %d bytes (want 43 each, different)", len(cookie), len(sess.SID))
		}
		got := mustGet(t, s, cookie)
		if got.SID != sess.SID || !got.AuthTime.Equal(now) || got.UserID != "u1" {
			t.Errorf("Get = %+v", got)
		}
		for _, bad := range []string{"", "nope", sess.SID, string(make([]byte, 200))} {
			_, err := s.Get(ctx, bad)
			wantNoSession(t, "Get("+bad+")", err)
		}
		bySID, err := s.GetBySID(ctx, sess.SID)
		if err != nil || bySID.UserID != "u1" {
			t.Errorf("GetBySID = %+v, %v", bySID, err)
		}
	})
}

// TestRenewRotates: the cookie value changes on every sign-in and the old
// one stops working (session fixation); the same user keeps the sid.
func TestRenewRotates(t *testing.T) {
	forBackends(t, func(t *testing.T, s *session.Store, clk *clock.Fake, _ func()) {
		ctx := t.Context()
		c1, first, err := s.Create(ctx, "u1", "local", []string{"pwd"})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.AddClient(ctx, c1, "app"); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
		c2, second, err := s.Renew(ctx, c1, "u1", "local", []string{"pwd", "otp"})
		if err != nil {
			t.Fatal(err)
		}
		if c2 == c1 || second.SID != first.SID || !reflect.DeepEqual(second.Clients, []string{"app"}) ||
			!second.AuthTime.Equal(clk.Now().UTC()) || !second.Factors["pwd"].Equal(clk.Now().UTC()) || !second.Factors["otp"].Equal(clk.Now().UTC()) {
			t.Errorf("Renew: cookie changed %v, session %+v (first %+v)", c2 != c1, second, first)
		}
		_, err = s.Get(ctx, c1)
		wantNoSession(t, "old cookie after Renew", err)
		mustGet(t, s, c2)

		// Rotate: new value, nothing else changes.
		c3, third, err := s.Rotate(ctx, c2)
		if err != nil {
			t.Fatal(err)
		}
		if c3 == c2 || third.SID != first.SID || !third.AuthTime.Equal(second.AuthTime) {
			t.Errorf("Rotate: %+v", third)
		}
		_, err = s.Get(ctx, c2)
		wantNoSession(t, "old cookie after Rotate", err)

		// A planted value that names nothing, or another user's session:
		// a new session; the other user's session is left alone.
		planted := "planted-by-an-attacker-0123456789abcdefghij"
		c4, fresh, err := s.Renew(ctx, planted, "u1", "local", []string{"pwd"})
		if err != nil {
			t.Fatal(err)
		}
		if c4 == planted || fresh.SID == first.SID {
			t.Errorf("Renew of a planted value: cookie %q sid %q", c4, fresh.SID)
		}
		_, err = s.Get(ctx, planted)
		wantNoSession(t, "planted value", err)
		c5, other, err := s.Renew(ctx, c3, "u2", "local", []string{"pwd"})
		if err != nil {
			t.Fatal(err)
		}
		if c5 == c3 || other.SID == first.SID || other.UserID != "u2" {
			t.Errorf("Renew as another user: %+v", other)
		}
		if got := mustGet(t, s, c3); got.UserID != "u1" {
			t.Errorf("u1's session after u2 signed in: %+v", got)
		}
	})
}

func TestEndAndList(t *testing.T) {
	forBackends(t, func(t *testing.T, s *session.Store, clk *clock.Fake, _ func()) {
		ctx := t.Context()
		var cookies []string
		var all []session.Session
		for range 3 {
			c, sess, err := s.Create(ctx, "u1", "local", []string{"pwd"})
			if err != nil {
				t.Fatal(err)
			}
			cookies, all = append(cookies, c), append(all, sess)
			clk.Advance(time.Second)
		}
		_, bob, err := s.Create(ctx, "u2", "local", []string{"pwd"})
		if err != nil {
			t.Fatal(err)
		}
		list, err := s.ListByUser(ctx, "u1")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := sids(list), sids(all); !reflect.DeepEqual(got, want) {
			t.Fatalf("ListByUser = %v, want %v", got, want)
		}
		// Renewing keeps the sid in the list.
		if cookies[0], _, err = s.Renew(ctx, cookies[0], "u1", "local", []string{"pwd"}); err != nil {
			t.Fatal(err)
		}

		ended, err := s.End(ctx, all[1].SID)
		if err != nil || ended.SID != all[1].SID || ended.UserID != "u1" {
			t.Fatalf("End = %+v, %v", ended, err)
		}
		_, err = s.End(ctx, all[1].SID)
		wantNoSession(t, "End again", err)
		_, err = s.Get(ctx, cookies[1])
		wantNoSession(t, "Get after End", err)
		_, err = s.GetBySID(ctx, all[1].SID)
		wantNoSession(t, "GetBySID after End", err)
		err = s.AddClient(ctx, cookies[1], "app")
		wantNoSession(t, "AddClient after End", err)
		list, err = s.ListByUser(ctx, "u1")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := sids(list), []string{all[0].SID, all[2].SID}; !reflect.DeepEqual(got, want) {
			t.Errorf("ListByUser after End = %v, want %v", got, want)
		}
		if list, _ := s.ListByUser(ctx, "u2"); !reflect.DeepEqual(sids(list), []string{bob.SID}) {
			t.Errorf("u2's sessions = %v", sids(list))
		}
		if list, _ := s.ListByUser(ctx, "nobody"); len(list) != 0 {
			t.Errorf("unknown user's sessions = %v", sids(list))
		}
	})
}

// TestEndOnce: of concurrent Ends of one session exactly one gets it.
func TestEndOnce(t *testing.T) {
	forBackends(t, func(t *testing.T, s *session.Store, _ *clock.Fake, _ func()) {
		_, sess, err := s.Create(t.Context(), "u1", "local", nil)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for range 10 {
			wg.Go(func() {
				_, err := s.End(context.WithoutCancel(t.Context()), sess.SID)
				if err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				} else if !errors.Is(err, session.ErrNoSession) {
					t.Errorf("End: %v", err)
				}
			})
		}
		wg.Wait()
		if wins != 1 {
			t.Errorf("%d Ends got the session, want 1", wins)
		}
	})
}

// TestConcurrentIndex: sessions created at once all land in the index.
func TestConcurrentIndex(t *testing.T) {
	forBackends(t, func(t *testing.T, s *session.Store, _ *clock.Fake, _ func()) {
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if _, _, err := s.Create(context.WithoutCancel(t.Context()), "u1", "local", nil); err != nil {
					t.Errorf("Create: %v", err)
				}
			})
		}
		wg.Wait()
		list, err := s.ListByUser(t.Context(), "u1")
		if err != nil || len(list) != 8 {
			t.Errorf("ListByUser: %d sessions, %v; want 8", len(list), err)
		}
	})
}

func TestAddClient(t *testing.T) {
	forBackends(t, func(t *testing.T, s *session.Store, _ *clock.Fake, _ func()) {
		ctx := t.Context()
		c, _, err := s.Create(ctx, "u1", "local", nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"a", "b", "a"} {
			if err := s.AddClient(ctx, c, id); err != nil {
				t.Fatal(err)
			}
		}
		if got := mustGet(t, s, c).Clients; !reflect.DeepEqual(got, []string{"a", "b"}) {
			t.Errorf("Clients = %v", got)
		}
	})
}

func TestTimeouts(t *testing.T) {
	forBackends(t, func(t *testing.T, s *session.Store, clk *clock.Fake, sqlOnly func()) {
		sqlOnly()
		ctx := t.Context()
		c, sess, err := s.Create(ctx, "u1", "local", nil)
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(24*time.Hour - time.Second)
		mustGet(t, s, c) // extends the idle expiry
		clk.Advance(24*time.Hour - time.Second)
		mustGet(t, s, c)
		clk.Advance(24 * time.Hour)
		_, err = s.Get(ctx, c)
		wantNoSession(t, "idle for 24h", err)
		if list, _ := s.ListByUser(ctx, "u1"); len(list) != 0 {
			t.Errorf("expired session listed: %v", sids(list))
		}
		_, err = s.GetBySID(ctx, sess.SID)
		wantNoSession(t, "GetBySID of an expired session", err)
	})
}

func TestAddStep(t *testing.T) {
	forBackends(t, func(t *testing.T, s *session.Store, clk *clock.Fake, _ func()) {
		ctx := t.Context()
		t0 := clk.Now().UTC()
		cookie, sess, err := s.Create(ctx, "u1", "local", []string{"pwd"})
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
		t1 := clk.Now().UTC()
		if _, _, err := s.AddStep(ctx, cookie, "u2", session.Step{Factor: "totp", AMR: []string{"otp"}, At: t1}); !errors.Is(err, session.ErrNoSession) {
			t.Fatalf("AddStep for another user: %v, want ErrNoSession", err)
		}
		next, got, err := s.AddStep(ctx, cookie, "u1", session.Step{Factor: "totp", AMR: []string{"otp"}, At: t1})
		if err != nil {
			t.Fatal(err)
		}
		if next == cookie || got.SID != sess.SID {
			t.Fatalf("AddStep: cookie not rotated or sid changed")
		}
		want := []session.Step{{AMR: []string{"pwd"}, At: t0}, {Factor: "totp", AMR: []string{"otp"}, At: t1}}
		if !reflect.DeepEqual(got.Steps, want) {
			t.Fatalf("steps = %+v, want %+v", got.Steps, want)
		}
		if _, err := s.Get(ctx, cookie); !errors.Is(err, session.ErrNoSession) {
			t.Fatalf("old cookie after step-up: %v, want ErrNoSession", err)
		}
		// A new password sign-in replaces the primary step and keeps the factor.
		clk.Advance(time.Minute)
		t2 := clk.Now().UTC()
		_, renewed, err := s.Renew(ctx, next, "u1", "local", []string{"pwd"})
		if err != nil {
			t.Fatal(err)
		}
		want = []session.Step{{AMR: []string{"pwd"}, At: t2}, {Factor: "totp", AMR: []string{"otp"}, At: t1}}
		if !reflect.DeepEqual(renewed.Steps, want) {
			t.Fatalf("steps after Renew = %+v, want %+v", renewed.Steps, want)
		}
	})
}

// TestRenewOnRecordsTheDevice: a sign-in records its browser; a renewal
// without one keeps it, a new sign-in replaces it; ListByUser returns it.
func TestRenewOnRecordsTheDevice(t *testing.T) {
	forBackends(t, func(t *testing.T, s *session.Store, _ *clock.Fake, _ func()) {
		ctx := t.Context()
		laptop := session.Device{IP: "203.0.113.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"}
		c1, first, err := s.RenewOn(ctx, "", "u1", "local", []string{"pwd"}, laptop)
		if err != nil || first.Device != laptop || mustGet(t, s, c1).Device != laptop {
			t.Fatalf("RenewOn new: %v %+v", err, first.Device)
		}
		c2, kept, err := s.RenewOn(ctx, c1, "u1", "local", []string{"pwd", "otp"}, session.Device{})
		if err != nil || kept.SID != first.SID || kept.Device != laptop {
			t.Fatalf("RenewOn without a device: %v %+v", err, kept)
		}
		phone := session.Device{IP: "198.51.100.2", UserAgent: "Mozilla/5.0 (iPhone) Safari/605.1"}
		_, moved, err := s.RenewOn(ctx, c2, "u1", "local", []string{"pwd"}, phone)
		if err != nil || moved.SID != first.SID || moved.Device != phone {
			t.Fatalf("RenewOn with another device: %v %+v", err, moved)
		}
		list, err := s.ListByUser(ctx, "u1")
		if err != nil || len(list) != 1 || list[0].Device != phone {
			t.Fatalf("ListByUser: %v %+v", err, list)
		}
	})
}
