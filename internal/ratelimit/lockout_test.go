package ratelimit_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/internal/ratelimit"
)

// lockStep is one Lockout call after moving the fake clock by advance.
type lockStep struct {
	advance time.Duration
	op      string // "fail", "check" or "succeed"
	want    time.Duration
}

func fails(n int, last time.Duration) []lockStep {
	s := make([]lockStep, n)
	for i := range s {
		s[i] = lockStep{op: "fail"}
	}
	s[n-1].want = last
	return s
}

func runLockSteps(t *testing.T, lo *ratelimit.Lockout, clk *clock.Fake, account string, steps []lockStep) {
	t.Helper()
	for i, s := range steps {
		clk.Advance(s.advance)
		var (
			got time.Duration
			err error
		)
		switch s.op {
		case "fail":
			got, err = lo.Fail(t.Context(), account)
		case "check":
			got, err = lo.Check(t.Context(), account)
		case "succeed":
			err = lo.Succeed(t.Context(), account)
		default:
			t.Fatalf("step %d: unknown op %q", i, s.op)
		}
		if err != nil {
			t.Fatalf("step %d (%s at t0+%s): %v", i, s.op, clk.Now().Sub(t0), err)
		}
		if got != s.want {
			t.Fatalf("step %d (%s at t0+%s) = %s, want %s", i, s.op, clk.Now().Sub(t0), got, s.want)
		}
	}
}

func TestLockoutSchedule(t *testing.T) {
	tests := []struct {
		name  string
		steps []lockStep
	}{
		{
			name: "exponential backoff up to the cap",
			steps: concatLock(
				fails(4, 0),
				[]lockStep{
					{op: "check", want: 0},
					{op: "fail", want: 30 * time.Second}, // 5th failure locks
					{op: "check", want: 30 * time.Second},
					{advance: 10 * time.Second, op: "check", want: 20 * time.Second},
					{advance: 20 * time.Second, op: "check", want: 0}, // never permanent
					{op: "fail", want: time.Minute},
					{advance: time.Minute, op: "fail", want: 2 * time.Minute},
					{advance: 2 * time.Minute, op: "fail", want: 4 * time.Minute},
					{advance: 4 * time.Minute, op: "fail", want: 8 * time.Minute},
					{advance: 8 * time.Minute, op: "fail", want: 15 * time.Minute}, // 16m capped
					{advance: 15 * time.Minute, op: "fail", want: 15 * time.Minute},
					{op: "check", want: 15 * time.Minute},
					{advance: 15 * time.Minute, op: "check", want: 0},
				},
			),
		},
		{
			name: "success forgets failures and unlocks",
			steps: concatLock(
				fails(5, 30*time.Second),
				[]lockStep{
					{op: "succeed"},
					{op: "check", want: 0},
				},
				fails(4, 0),
				[]lockStep{{op: "succeed"}},
				fails(4, 0),
				fails(1, 30*time.Second),
			),
		},
		{
			// A failure that passed Check just before the lock counts and
			// lengthens the lock but does not announce a second one.
			name: "failure while locked",
			steps: concatLock(
				fails(5, 30*time.Second),
				[]lockStep{
					{advance: 5 * time.Second, op: "fail", want: 0},
					{op: "check", want: time.Minute}, // 6th failure: 1m from now
					{advance: time.Minute, op: "check", want: 0},
					{op: "fail", want: 2 * time.Minute}, // 7th
				},
			),
		},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				clk := clock.NewFake(t0)
				lo, err := ratelimit.NewLockout(b.open(t, clk), ratelimit.DefaultLockoutPolicy(), ratelimit.Options{Clock: clk})
				if err != nil {
					t.Fatal(err)
				}
				runLockSteps(t, lo, clk, "alice", tc.steps)
			})
		}
	})
}

func concatLock(s ...[]lockStep) []lockStep {
	var out []lockStep
	for _, x := range s {
		out = append(out, x...)
	}
	return out
}

func TestLockoutAccountsAreIndependent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		clk := clock.NewFake(t0)
		p := ratelimit.LockoutPolicy{Threshold: 2, Base: time.Minute, Max: time.Hour, QuietPeriod: time.Hour}
		lo, err := ratelimit.NewLockout(b.open(t, clk), p, ratelimit.Options{Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		runLockSteps(t, lo, clk, "alice", fails(2, time.Minute))
		runLockSteps(t, lo, clk, "bob", []lockStep{{op: "check"}, {op: "fail"}})
		runLockSteps(t, lo, clk, "Alice", []lockStep{{op: "check"}})
		runLockSteps(t, lo, clk, "alice", []lockStep{{op: "check", want: time.Minute}})
	})
}

// TestLockoutQuietPeriod needs store expiry on the fake clock: the SQL
// stores. (TestLockoutQuietPeriodRealTime covers Redis.)
func TestLockoutQuietPeriod(t *testing.T) {
	tests := []struct {
		name  string
		steps []lockStep
	}{
		{
			name: "failures forgotten after an hour",
			steps: concatLock(
				fails(4, 0),
				[]lockStep{{advance: time.Hour, op: "check"}},
				fails(4, 0), // counting from 1 again
				fails(1, 30*time.Second),
			),
		},
		{
			name: "failures kept just under an hour",
			steps: concatLock(
				fails(4, 0),
				[]lockStep{{advance: time.Hour - time.Second, op: "fail", want: 30 * time.Second}},
			),
		},
		{
			name: "quiet period starts when the lock ends",
			steps: concatLock(
				fails(5, 30*time.Second),
				[]lockStep{{advance: 30*time.Second + time.Hour - time.Second, op: "fail", want: time.Minute}},
			),
		},
		{
			name: "lock and failures forgotten after lock plus quiet period",
			steps: concatLock(
				fails(5, 30*time.Second),
				[]lockStep{{advance: 30*time.Second + time.Hour, op: "fail", want: 0}},
				fails(3, 0),
				fails(1, 30*time.Second),
			),
		},
	}
	for _, b := range backends {
		if !b.storeClock {
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					clk := clock.NewFake(t0)
					lo, err := ratelimit.NewLockout(b.open(t, clk), ratelimit.DefaultLockoutPolicy(), ratelimit.Options{Clock: clk})
					if err != nil {
						t.Fatal(err)
					}
					runLockSteps(t, lo, clk, "alice", tc.steps)
				})
			}
		})
	}
}

// TestLockoutQuietPeriodRealTime checks on every store, Redis's real-time
// expiry included, that the counter is forgotten after the quiet period;
// the margins are generous.
func TestLockoutQuietPeriodRealTime(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		p := ratelimit.LockoutPolicy{Threshold: 3, Base: 10 * time.Second, Max: time.Minute, QuietPeriod: 300 * time.Millisecond}
		lo, err := ratelimit.NewLockout(b.open(t, clock.Real{}), p, ratelimit.Options{})
		if err != nil {
			t.Fatal(err)
		}
		fail := func(want time.Duration) {
			t.Helper()
			if got, err := lo.Fail(t.Context(), "alice"); err != nil || got != want {
				t.Fatalf("Fail = %s, %v; want %s", got, err, want)
			}
		}
		fail(0)
		fail(0)
		time.Sleep(time.Second)
		fail(0)
		fail(0)
		fail(10 * time.Second)
		if got, err := lo.Check(t.Context(), "alice"); err != nil || got <= 5*time.Second || got > 10*time.Second {
			t.Fatalf("Check = %s, %v; want in (5s, 10s]", got, err)
		}
	})
}

// TestLockoutConcurrent: 50 concurrent failures on one account start
// exactly one lock (one "user.locked" event) and all count.
func TestLockoutConcurrent(t *testing.T) {
	const callers = 50
	forEachBackend(t, func(t *testing.T, b backend) {
		clk := clock.NewFake(t0)
		lo, err := ratelimit.NewLockout(b.open(t, clk), ratelimit.DefaultLockoutPolicy(), ratelimit.Options{Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			locks []time.Duration
			errs  []error
			start = make(chan struct{})
		)
		for range callers {
			wg.Go(func() {
				<-start
				d, err := lo.Fail(t.Context(), "alice")
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
				} else if d != 0 {
					locks = append(locks, d)
				}
			})
		}
		close(start)
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("%d calls failed, first: %v", len(errs), errs[0])
		}
		if len(locks) != 1 || locks[0] != 30*time.Second {
			t.Fatalf("locks started: %v, want exactly one of 30s", locks)
		}
		// All 50 failures counted: the lock reached the cap.
		if got, err := lo.Check(t.Context(), "alice"); err != nil || got != 15*time.Minute {
			t.Fatalf("Check = %s, %v; want 15m", got, err)
		}
	})
}

func TestLockoutStoreFailure(t *testing.T) {
	const account = "secret-account@example.com"
	for name, store := range brokenStores(t) {
		t.Run(name, func(t *testing.T) {
			lo, err := ratelimit.NewLockout(store, ratelimit.DefaultLockoutPolicy(), ratelimit.Options{})
			if err != nil {
				t.Fatal(err)
			}
			_, errCheck := lo.Check(t.Context(), account)
			_, errFail := lo.Fail(t.Context(), account)
			errSucceed := lo.Succeed(t.Context(), account)
			for _, c := range []struct {
				err  error
				want string
			}{
				{errCheck, "lockout check: rate limit store unavailable: "},
				{errFail, "lockout fail: rate limit store unavailable: "},
				{errSucceed, "lockout succeed: rate limit store unavailable: "},
			} {
				if !errors.Is(c.err, ratelimit.ErrUnavailable) || !strings.HasPrefix(c.err.Error(), c.want) {
					t.Fatalf("error %v, want prefix %q wrapping ErrUnavailable", c.err, c.want)
				}
				if strings.Contains(c.err.Error(), account) {
					t.Fatalf("error reveals the account: %v", c.err)
				}
			}
		})
	}
}

func TestLockoutDisabledTouchesNoStore(t *testing.T) {
	for name, store := range brokenStores(t) {
		t.Run(name, func(t *testing.T) {
			lo, err := ratelimit.NewLockout(store, ratelimit.LockoutPolicy{}, ratelimit.Options{})
			if err != nil {
				t.Fatal(err)
			}
			for range 10 {
				if d, err := lo.Fail(t.Context(), "alice"); d != 0 || err != nil {
					t.Fatalf("Fail = %s, %v; want 0, nil", d, err)
				}
			}
			if d, err := lo.Check(t.Context(), "alice"); d != 0 || err != nil {
				t.Fatalf("Check = %s, %v; want 0, nil", d, err)
			}
			if err := lo.Succeed(t.Context(), "alice"); err != nil {
				t.Fatalf("Succeed = %v", err)
			}
		})
	}
}

func TestLockoutEmptyAccount(t *testing.T) {
	lo, err := ratelimit.NewLockout(openSQLite(t, clock.NewFake(t0)), ratelimit.DefaultLockoutPolicy(), ratelimit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, e1 := lo.Check(t.Context(), "")
	_, e2 := lo.Fail(t.Context(), "")
	e3 := lo.Succeed(t.Context(), "")
	for i, c := range []struct {
		err  error
		want string
	}{{e1, "lockout check: empty account"}, {e2, "lockout fail: empty account"}, {e3, "lockout succeed: empty account"}} {
		if c.err == nil || c.err.Error() != c.want {
			t.Errorf("call %d: error %v, want %q", i, c.err, c.want)
		}
	}
}

func TestLockoutPolicyValidate(t *testing.T) {
	tests := []struct {
		name string
		p    ratelimit.LockoutPolicy
		want string
	}{
		{"default", ratelimit.DefaultLockoutPolicy(), ""},
		{"disabled", ratelimit.LockoutPolicy{}, ""},
		{"negative threshold", ratelimit.LockoutPolicy{Threshold: -1}, "threshold -1: must not be negative"},
		{"nothing but threshold", ratelimit.LockoutPolicy{Threshold: 3},
			"baseDelay 0s: must be positive\nquietPeriod 0s: must be positive"},
		{"max below base", ratelimit.LockoutPolicy{Threshold: 3, Base: time.Minute, Max: time.Second, QuietPeriod: time.Hour},
			"maxDelay 1s: must be between baseDelay (1m0s) and 24h0m0s"},
		{"max over a day", ratelimit.LockoutPolicy{Threshold: 3, Base: time.Minute, Max: 25 * time.Hour, QuietPeriod: time.Hour},
			"maxDelay 25h0m0s: must be between baseDelay (1m0s) and 24h0m0s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			if got := errString(err); got != tc.want {
				t.Fatalf("Validate() = %q, want %q", got, tc.want)
			}
			_, err = ratelimit.NewLockout(nil, tc.p, ratelimit.Options{})
			if tc.want != "" && errString(err) != "lockout policy: "+tc.want {
				t.Fatalf("NewLockout error = %q, want %q", errString(err), "lockout policy: "+tc.want)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestLockoutPolicyDelay(t *testing.T) {
	p := ratelimit.DefaultLockoutPolicy()
	want := map[int]time.Duration{
		0: 0, 1: 0, 4: 0,
		5: 30 * time.Second, 6: time.Minute, 7: 2 * time.Minute, 8: 4 * time.Minute,
		9: 8 * time.Minute, 10: 15 * time.Minute, 11: 15 * time.Minute, 1 << 30: 15 * time.Minute,
	}
	for n, w := range want {
		if got := p.Delay(n); got != w {
			t.Errorf("Delay(%d) = %s, want %s", n, got, w)
		}
	}
	if got := (ratelimit.LockoutPolicy{}).Delay(100); got != 0 {
		t.Errorf("disabled Delay(100) = %s, want 0", got)
	}
}
