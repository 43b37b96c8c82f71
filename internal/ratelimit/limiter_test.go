package ratelimit_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/internal/ratelimit"
	"github.com/latchkeyid/latchkey/storage"
)

// step is one Allow call after moving the fake clock by advance.
type step struct {
	advance time.Duration
	key     string // "" is "k"
	want    ratelimit.Decision
}

func allowed(remaining int) ratelimit.Decision {
	return ratelimit.Decision{Allowed: true, Remaining: remaining}
}

func refused(retry time.Duration) ratelimit.Decision {
	return ratelimit.Decision{RetryAfter: retry}
}

// repeat is n steps at the same instant with the given decisions.
func repeat(want ...ratelimit.Decision) []step {
	s := make([]step, len(want))
	for i, w := range want {
		s[i] = step{want: w}
	}
	return s
}

func TestAllowSchedule(t *testing.T) {
	tests := []struct {
		name  string
		rule  ratelimit.Rule
		start time.Duration // offset of the first call from t0
		steps []step
	}{
		{
			// 5th call: count 5 > 4; at window k+1 the event passes once
			// 5·(60−e)/60 + 1 <= 4, e = 24s: 36s + 24s = 84s.
			name: "burst, refusal, previous window weighs out",
			rule: ratelimit.Rule{Name: "t.burst", Limit: 4, Window: time.Minute},
			steps: concat(
				repeat(allowed(3), allowed(2), allowed(1), allowed(0), refused(84*time.Second)),
				[]step{
					{advance: 84 * time.Second, want: allowed(0)}, // 5·36/60 = 3 carried + 1
					{want: refused(24 * time.Second)},             // count 2: 3+2 > 4; count 3 passes at e=48s
					{advance: 24 * time.Second, want: allowed(0)}, // 5·12/60 = 1 carried + 3
					{advance: 72 * time.Second, want: allowed(3)}, // t0+180s: window k+3, previous (k+2) empty
				},
			),
		},
		{
			name: "remaining counts the weighted previous window",
			rule: ratelimit.Rule{Name: "t.weighted", Limit: 10, Window: time.Minute},
			steps: concat(
				repeat(allowed(9), allowed(8), allowed(7), allowed(6), allowed(5), allowed(4)),
				// t0+75s: e=15s, 6·45/60 = 4.5, carried 5.
				[]step{{advance: 75 * time.Second, want: allowed(4)}},
				repeat(allowed(3), allowed(2), allowed(1), allowed(0), refused(15*time.Second)),
				[]step{
					{advance: 15 * time.Second, want: allowed(0)}, // e=30s: 6·30/60 = 3, count 7
					{want: refused(20 * time.Second)},             // count 8; count 9 passes at e=50s: 6·10/60 = 1
					{advance: 20 * time.Second, want: allowed(0)},
				},
			),
		},
		{
			// A fixed window would allow 5 more at t0+60s, 10 in one
			// second; the previous window still weighs in fully.
			name:  "no double burst across a boundary",
			rule:  ratelimit.Rule{Name: "t.boundary", Limit: 5, Window: time.Minute},
			start: 59 * time.Second,
			steps: concat(
				repeat(allowed(4), allowed(3), allowed(2), allowed(1), allowed(0)),
				[]step{
					{advance: time.Second, want: refused(24 * time.Second)}, // count 2 passes when 5·(60−e)/60 <= 3
					{advance: 24 * time.Second, want: allowed(0)},
				},
			),
		},
		{
			// Refused calls count too: a client hammering stays out.
			name: "refused calls count",
			rule: ratelimit.Rule{Name: "t.hammer", Limit: 2, Window: time.Minute},
			steps: concat(
				repeat(allowed(1), allowed(0), refused(100*time.Second)),             // next window: 3·(60−e)/60 <= 1, e=40s
				[]step{{advance: 50 * time.Second, want: refused(55 * time.Second)}}, // count 4: e=45s
				[]step{{advance: 55 * time.Second, want: allowed(0)}},                // 4·15/60 = 1 carried + 1
			),
		},
		{
			name: "limit 1",
			rule: ratelimit.Rule{Name: "t.one", Limit: 1, Window: 10 * time.Second},
			steps: []step{
				{want: allowed(0)},
				{advance: 5 * time.Second, want: refused(15 * time.Second)},
				{advance: 15 * time.Second, want: allowed(0)},
			},
		},
		{
			name: "keys are independent",
			rule: ratelimit.Rule{Name: "t.keys", Limit: 1, Window: time.Minute},
			steps: []step{
				{key: "a", want: allowed(0)},
				{key: "b", want: allowed(0)},
				{key: "a", want: refused(2 * time.Minute)},
				{key: "A", want: allowed(0)},
				{key: "b", want: refused(2 * time.Minute)},
			},
		},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				clk := clock.NewFake(t0.Add(tc.start))
				lim := ratelimit.New(b.open(t, clk), ratelimit.Options{Clock: clk})
				for i, s := range tc.steps {
					clk.Advance(s.advance)
					key := s.key
					if key == "" {
						key = "k"
					}
					got, err := lim.Allow(t.Context(), tc.rule, key)
					if err != nil {
						t.Fatalf("step %d: Allow: %v", i, err)
					}
					if got != s.want {
						t.Fatalf("step %d (t0+%s, key %q): Allow = %+v, want %+v", i, clk.Now().Sub(t0), key, got, s.want)
					}
				}
			})
		}
	})
}

func concat(s ...[]step) []step {
	var out []step
	for _, x := range s {
		out = append(out, x...)
	}
	return out
}

func TestAllowRulesAreIndependent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		clk := clock.NewFake(t0)
		lim := ratelimit.New(b.open(t, clk), ratelimit.Options{Clock: clk})
		r1 := ratelimit.Rule{Name: "t.one", Limit: 1, Window: time.Minute}
		r2 := ratelimit.Rule{Name: "t.two", Limit: 1, Window: time.Minute}
		for i, c := range []struct {
			rule ratelimit.Rule
			want ratelimit.Decision
		}{
			{r1, allowed(0)},
			{r2, allowed(0)},
			{r1, refused(2 * time.Minute)},
			{r2, refused(2 * time.Minute)},
		} {
			got, err := lim.Allow(t.Context(), c.rule, "same-key")
			if err != nil || got != c.want {
				t.Fatalf("call %d (%s): Allow = %+v, %v; want %+v, nil", i, c.rule.Name, got, err, c.want)
			}
		}
	})
}

// TestAllowConcurrent: of 50 concurrent calls on one key with limit 20,
// exactly 20 pass, each seeing a different Remaining.
func TestAllowConcurrent(t *testing.T) {
	const callers, limit = 50, 20
	forEachBackend(t, func(t *testing.T, b backend) {
		clk := clock.NewFake(t0.Add(10 * time.Second))
		lim := ratelimit.New(b.open(t, clk), ratelimit.Options{Clock: clk})
		rule := ratelimit.Rule{Name: "t.concurrent", Limit: limit, Window: time.Minute}
		var (
			wg        sync.WaitGroup
			mu        sync.Mutex
			remaining = map[int]int{}
			refusals  = map[time.Duration]int{}
			errs      []error
			start     = make(chan struct{})
		)
		for range callers {
			wg.Go(func() {
				<-start
				d, err := lim.Allow(t.Context(), rule, "10.1.2.3")
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					errs = append(errs, err)
				case d.Allowed:
					remaining[d.Remaining]++
				default:
					refusals[d.RetryAfter]++
				}
			})
		}
		close(start)
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("%d calls failed, first: %v", len(errs), errs[0])
		}
		if len(remaining) != limit {
			t.Fatalf("%d distinct allowed calls (%v), want exactly %d", len(remaining), remaining, limit)
		}
		for r := range limit {
			if remaining[r] != 1 {
				t.Fatalf("Remaining %d seen %d times, want once (all: %v)", r, remaining[r], remaining)
			}
		}
		n := 0
		for _, c := range refusals {
			n += c
		}
		if n != callers-limit {
			t.Fatalf("%d refused, want %d", n, callers-limit)
		}
	})
}

// TestAllowRealTime runs a 1s window on the real clock: the store's own
// expiry (real time in Redis) and the limiter agree. Durations are checked
// against bounds only, with generous margins.
func TestAllowRealTime(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		lim := ratelimit.New(b.open(t, clock.Real{}), ratelimit.Options{})
		rule := ratelimit.Rule{Name: "t.realtime", Limit: 2, Window: time.Second}
		var got []ratelimit.Decision
		for range 3 {
			d, err := lim.Allow(t.Context(), rule, "k")
			if err != nil {
				t.Fatalf("Allow: %v", err)
			}
			got = append(got, d)
		}
		// Three calls within a few milliseconds: two pass, whatever the
		// phase of the window.
		if !got[0].Allowed || !got[1].Allowed || got[2].Allowed {
			t.Fatalf("decisions %+v, want allowed, allowed, refused", got)
		}
		if ra := got[2].RetryAfter; ra <= 0 || ra > 2*time.Second {
			t.Fatalf("RetryAfter %s, want in (0, 2s]", ra)
		}
		time.Sleep(got[2].RetryAfter + 200*time.Millisecond)
		d, err := lim.Allow(t.Context(), rule, "k")
		if err != nil || !d.Allowed {
			t.Fatalf("after RetryAfter: Allow = %+v, %v; want allowed", d, err)
		}
	})
}

// TestAllowStoredKeys: the stored keys are namespaced, carry a hash of the
// caller's key rather than the key, and live until the end of the next
// window.
func TestAllowStoredKeys(t *testing.T) {
	const account = "alice@example.com"
	w := 5 * time.Minute
	rule := ratelimit.Rule{Name: ratelimit.NameLoginAccount, Limit: 10, Window: w}
	sum := sha256.Sum256([]byte(account))
	idx := t0.UnixNano() / w.Nanoseconds()
	want := "rl:login.account:" + hex.EncodeToString(sum[:16]) + ":" + strconv.FormatInt(idx, 10)
	forEachBackend(t, func(t *testing.T, b backend) {
		clk := clock.NewFake(t0.Add(time.Minute)) // e = 1m
		store := b.open(t, clk)
		lim := ratelimit.New(store, ratelimit.Options{Clock: clk})
		for range 3 {
			if _, err := lim.Allow(t.Context(), rule, account); err != nil {
				t.Fatalf("Allow: %v", err)
			}
		}
		v, err := store.Get(t.Context(), want)
		if err != nil || string(v) != "3" {
			t.Fatalf("Get(%q) = %q, %v; want \"3\"", want, v, err)
		}
		ttl, err := store.TTL(t.Context(), want)
		if err != nil {
			t.Fatalf("TTL: %v", err)
		}
		// Until the end of window k+1: 2·5m − 1m.
		if b.storeClock {
			if ttl != 9*time.Minute {
				t.Fatalf("TTL = %s, want 9m", ttl)
			}
		} else if ttl <= 8*time.Minute || ttl > 9*time.Minute {
			t.Fatalf("TTL = %s, want in (8m, 9m]", ttl)
		}
	})
}

func TestAllowDisabledRuleTouchesNoStore(t *testing.T) {
	for name, store := range brokenStores(t) {
		t.Run(name, func(t *testing.T) {
			lim := ratelimit.New(store, ratelimit.Options{})
			d, err := lim.Allow(t.Context(), ratelimit.Rule{Name: "t.off", Limit: 0}, "k")
			if want := (ratelimit.Decision{Allowed: true, Remaining: -1}); err != nil || d != want {
				t.Fatalf("Allow = %+v, %v; want %+v, nil", d, err, want)
			}
		})
	}
}

func TestAllowStoreFailure(t *testing.T) {
	const key = "secret-account@example.com"
	for name, store := range brokenStores(t) {
		t.Run(name, func(t *testing.T) {
			var logs bytes.Buffer
			lim := ratelimit.New(store, ratelimit.Options{
				Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			})

			open := ratelimit.Rule{Name: ratelimit.NameTokenClient, Limit: 600, Window: time.Minute, FailOpen: true}
			d, err := lim.Allow(t.Context(), open, key)
			if want := (ratelimit.Decision{Allowed: true, Remaining: -1, FailedOpen: true}); err != nil || d != want {
				t.Fatalf("fail-open rule: Allow = %+v, %v; want %+v, nil", d, err, want)
			}
			if line := logs.String(); !strings.Contains(line, `level=WARN msg="rate limit store failed; allowing because the rule fails open" rule=token.client error="count: `) {
				t.Fatalf("log = %q, want the fail-open warning", line)
			}
			if strings.Contains(logs.String(), key) {
				t.Fatalf("log reveals the key: %q", logs.String())
			}

			closed := ratelimit.Rule{Name: ratelimit.NameLoginAccount, Limit: 10, Window: time.Minute}
			d, err = lim.Allow(t.Context(), closed, key)
			if !errors.Is(err, ratelimit.ErrUnavailable) {
				t.Fatalf("fail-closed rule: err = %v, want ErrUnavailable", err)
			}
			if pre := "rate limit login.account: rate limit store unavailable: count: "; !strings.HasPrefix(err.Error(), pre) {
				t.Fatalf("err = %q, want prefix %q", err, pre)
			}
			if strings.Contains(err.Error(), key) {
				t.Fatalf("error reveals the key: %q", err)
			}
			if d != (ratelimit.Decision{}) {
				t.Fatalf("fail-closed rule: Decision = %+v, want zero (not allowed)", d)
			}
		})
	}
}

// A cancelled request is not an outage: even a fail-open rule reports it.
func TestAllowCancelledContext(t *testing.T) {
	clk := clock.NewFake(t0)
	lim := ratelimit.New(openSQLite(t, clk), ratelimit.Options{Clock: clk})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	rule := ratelimit.Rule{Name: ratelimit.NameTokenClient, Limit: 600, Window: time.Minute, FailOpen: true}
	d, err := lim.Allow(ctx, rule, "client")
	if !errors.Is(err, context.Canceled) || errors.Is(err, ratelimit.ErrUnavailable) || d.Allowed {
		t.Fatalf("Allow = %+v, %v; want not allowed, context.Canceled without ErrUnavailable", d, err)
	}
}

func TestAllowInvalid(t *testing.T) {
	lim := ratelimit.New(openSQLite(t, clock.NewFake(t0)), ratelimit.Options{})
	tests := []struct {
		name    string
		rule    ratelimit.Rule
		key     string
		wantErr string
	}{
		{"empty key", ratelimit.Rule{Name: "x", Limit: 1, Window: time.Second}, "", "rate limit x: empty key"},
		{"no name", ratelimit.Rule{Limit: 1, Window: time.Second}, "k",
			`rate limit: invalid rule: name "": want lower-case letters, digits, '.', '_' or '-'`},
		{"name with colon", ratelimit.Rule{Name: "a:b", Limit: 1, Window: time.Second}, "k",
			`rate limit: invalid rule: name "a:b": want lower-case letters, digits, '.', '_' or '-'`},
		{"negative limit", ratelimit.Rule{Name: "x", Limit: -1, Window: time.Second}, "k",
			"rate limit: invalid rule: limit -1: must not be negative"},
		{"no window", ratelimit.Rule{Name: "x", Limit: 1}, "k",
			"rate limit: invalid rule: window 0s: must be between 1ms and 744h0m0s"},
		{"window too long", ratelimit.Rule{Name: "x", Limit: 1, Window: 745 * time.Hour}, "k",
			"rate limit: invalid rule: window 745h0m0s: must be between 1ms and 744h0m0s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := lim.Allow(t.Context(), tc.rule, tc.key)
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("Allow error = %v, want %q", err, tc.wantErr)
			}
			if d.Allowed {
				t.Fatalf("Allow allowed an invalid call")
			}
		})
	}
}

func TestDefaultRules(t *testing.T) {
	rs := ratelimit.DefaultRules()
	if err := rs.Validate(); err != nil {
		t.Fatalf("DefaultRules().Validate() = %v", err)
	}
	want := ratelimit.Rules{
		LoginIP:             ratelimit.Rule{Name: "login.ip", Limit: 20, Window: time.Minute},
		LoginAccount:        ratelimit.Rule{Name: "login.account", Limit: 10, Window: 5 * time.Minute},
		FactorAccount:       ratelimit.Rule{Name: "factor.account", Limit: 5, Window: 5 * time.Minute},
		TokenClient:         ratelimit.Rule{Name: "token.client", Limit: 600, Window: time.Minute, FailOpen: true},
		RecoveryAccount:     ratelimit.Rule{Name: "recovery.account", Limit: 5, Window: time.Hour},
		RegistrationIP:      ratelimit.Rule{Name: "registration.ip", Limit: 10, Window: time.Hour},
		EnrollmentAccount:   ratelimit.Rule{Name: "enrollment.account", Limit: 10, Window: 15 * time.Minute},
		OTPSendAccount:      ratelimit.Rule{Name: "otp.send.account", Limit: 5, Window: 15 * time.Minute},
		RecoveryIP:          ratelimit.Rule{Name: "recovery.ip", Limit: 20, Window: time.Hour},
		RegistrationAddress: ratelimit.Rule{Name: ratelimit.NameRegistrationAddress, Limit: 3, Window: time.Hour},
	}
	if rs != want {
		t.Fatalf("DefaultRules() = %+v\nwant %+v", rs, want)
	}
}

func TestRulesValidate(t *testing.T) {
	rs := ratelimit.DefaultRules()
	rs.LoginIP.Limit = -5
	rs.TokenClient.Window = 0
	rs.EnrollmentAccount.Name = "login.account"
	rs.RecoveryAccount = ratelimit.Rule{Name: "recovery.account"} // disabled: no window needed
	want := "loginPerIP: limit -5: must not be negative\n" +
		"tokenPerClient: window 0s: must be between 1ms and 744h0m0s\n" +
		`enrollmentPerAccount: name "login.account" is also loginPerAccount's`
	if err := rs.Validate(); err == nil || err.Error() != want {
		t.Fatalf("Validate() = %v\nwant %s", err, want)
	}
}

func TestIPKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"198.51.100.7", "198.51.100.7"},
		{"::ffff:198.51.100.7", "198.51.100.7"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::1", "::/64"},
	}
	for _, tc := range tests {
		if got := ratelimit.IPKey(netip.MustParseAddr(tc.in)); got != tc.want {
			t.Errorf("IPKey(%s) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := ratelimit.IPKey(netip.Addr{}); got != "" {
		t.Errorf("IPKey(zero) = %q, want \"\"", got)
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	tests := []struct {
		d    ratelimit.Decision
		want int
	}{
		{ratelimit.Decision{Allowed: true}, 0},
		{ratelimit.Decision{RetryAfter: 0}, 1},
		{ratelimit.Decision{RetryAfter: time.Millisecond}, 1},
		{ratelimit.Decision{RetryAfter: time.Second}, 1},
		{ratelimit.Decision{RetryAfter: time.Second + time.Nanosecond}, 2},
		{ratelimit.Decision{RetryAfter: 84 * time.Second}, 84},
	}
	for _, tc := range tests {
		if got := tc.d.RetryAfterSeconds(); got != tc.want {
			t.Errorf("%+v.RetryAfterSeconds() = %d, want %d", tc.d, got, tc.want)
		}
	}
}

// getCounter counts the Gets that reach the store.
type getCounter struct {
	storage.Ephemeral
	mu   sync.Mutex
	gets int
}

func (g *getCounter) Get(ctx context.Context, key string) ([]byte, error) {
	g.mu.Lock()
	g.gets++
	g.mu.Unlock()
	return g.Ephemeral.Get(ctx, key)
}

// TestPreviousWindowReadOnceSettled: the previous window's count is read
// from the store on every call until the current window has run for its
// settle time (a quarter of the window, at most 2 s); after that once, and
// the decisions are the same as with a read every time.
func TestPreviousWindowReadOnceSettled(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	store := &getCounter{Ephemeral: openSQLite(t, clk)}
	l := ratelimit.New(store, ratelimit.Options{Clock: clk})
	rule := ratelimit.Rule{Name: "t.settle", Limit: 10, Window: 10 * time.Second}
	allow := func(want ratelimit.Decision) {
		t.Helper()
		d, err := l.Allow(t.Context(), rule, "k")
		if err != nil || d != want {
			t.Fatalf("Allow = %+v, %v; want %+v", d, err, want)
		}
	}
	for i := range 4 {
		allow(allowed(9 - i)) // window k, e = 0: count 1..4
	}
	clk.Advance(10*time.Second + time.Second) // window k+1, e = 1s < 2s settle
	allow(allowed(10 - 1 - 4))                // 4·9/10 = 3.6, carried 4
	allow(allowed(10 - 2 - 4))
	if store.gets != 6 {
		t.Fatalf("gets before settling = %d, want 6 (one per call)", store.gets)
	}
	clk.Advance(2 * time.Second) // e = 3s: 4·7/10 = 2.8, carried 3
	allow(allowed(10 - 3 - 3))
	allow(allowed(10 - 4 - 3))
	clk.Advance(4 * time.Second) // e = 7s: 4·3/10 = 1.2, carried 2
	allow(allowed(10 - 5 - 2))
	if store.gets != 7 {
		t.Fatalf("gets after settling = %d, want 7 (one more, then none)", store.gets)
	}
}
