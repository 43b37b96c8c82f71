package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/storage"
)

// casAttempts bounds Fail's compare-and-swap retries. Each lost race means
// another failure was recorded, so only a flood of concurrent failures on
// one account (which the per-account rate limit stops first) exhausts it.
const casAttempts = 100

// MaxLockDelay bounds LockoutPolicy.Max: a lock is a delay, never a ban.
const MaxLockDelay = 24 * time.Hour

// LockoutPolicy is when and for how long repeated failures lock an account.
type LockoutPolicy struct {
	// Threshold is the number of consecutive failures that locks the
	// account; 0 disables lockout.
	Threshold int
	// Base is the first lock's duration; each further failure doubles it.
	Base time.Duration
	// Max caps a lock's duration.
	Max time.Duration
	// QuietPeriod is how long the failure count is kept after the last
	// failure, or after the end of the lock it caused.
	QuietPeriod time.Duration
}

// DefaultLockoutPolicy locks after 5 failures for 30s, then 1m, 2m, 4m, 8m
// and 15m for every further failure, and forgets failures after an hour
// without any.
func DefaultLockoutPolicy() LockoutPolicy {
	return LockoutPolicy{Threshold: 5, Base: 30 * time.Second, Max: 15 * time.Minute, QuietPeriod: time.Hour}
}

// Validate reports every problem of p, naming its fields.
func (p LockoutPolicy) Validate() error {
	if p.Threshold < 0 {
		return fmt.Errorf("threshold %d: must not be negative", p.Threshold)
	}
	if p.Threshold == 0 {
		return nil
	}
	var errs []error
	if p.Base <= 0 {
		errs = append(errs, fmt.Errorf("baseDelay %s: must be positive", p.Base))
	}
	if p.Max < p.Base || p.Max > MaxLockDelay {
		errs = append(errs, fmt.Errorf("maxDelay %s: must be between baseDelay (%s) and %s", p.Max, p.Base, MaxLockDelay))
	}
	if p.QuietPeriod <= 0 {
		errs = append(errs, fmt.Errorf("quietPeriod %s: must be positive", p.QuietPeriod))
	}
	return errors.Join(errs...)
}

// Delay is the lock caused by the failures-th consecutive failure: 0 below
// Threshold, then Base·2^(failures−Threshold), at most Max.
func (p LockoutPolicy) Delay(failures int) time.Duration {
	if p.Threshold == 0 || failures < p.Threshold {
		return 0
	}
	d := p.Base
	for i := p.Threshold; i < failures && d < p.Max; i++ {
		d *= 2
	}
	return min(d, p.Max)
}

// Lockout locks accounts after repeated failed authentications. It is safe
// for concurrent use, and replicas sharing the store share the locks.
//
// The login flow calls Check before verifying a credential (and refuses
// without verifying while locked), then Fail or Succeed with the outcome.
type Lockout struct {
	store  storage.Ephemeral
	clock  clock.Clock
	policy LockoutPolicy
}

// NewLockout returns a Lockout keeping its state in store.
func NewLockout(store storage.Ephemeral, p LockoutPolicy, o Options) (*Lockout, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("lockout policy: %w", err)
	}
	return &Lockout{store: store, clock: o.clock(), policy: p}, nil
}

// lockState is the stored value: "<failures> <locked-until, Unix ns>",
// locked-until 0 when never locked.
type lockState struct {
	failures int
	until    int64
}

func (s lockState) encode() []byte {
	return []byte(strconv.Itoa(s.failures) + " " + strconv.FormatInt(s.until, 10))
}

func decodeLockState(b []byte) (lockState, error) {
	f, u, ok := strings.Cut(string(b), " ")
	failures, err1 := strconv.Atoi(f)
	until, err2 := strconv.ParseInt(u, 10, 64)
	if !ok || err1 != nil || err2 != nil || failures < 0 {
		return lockState{}, errors.New("stored lockout state is malformed")
	}
	return lockState{failures: failures, until: until}, nil
}

// Check returns how long account stays locked; 0 if it is not locked. An
// error (wrapping ErrUnavailable) means the state could not be read: treat
// the account as locked.
func (l *Lockout) Check(ctx context.Context, account string) (lockedFor time.Duration, err error) {
	if l.policy.Threshold == 0 {
		return 0, nil
	}
	if account == "" {
		return 0, errors.New("lockout check: empty account")
	}
	st, _, err := l.load(ctx, lockoutKey(hashKey(account)))
	if err != nil {
		return 0, fmt.Errorf("lockout check: %w", err)
	}
	return max(time.Duration(st.until-l.clock.Now().UnixNano()), 0), nil
}

// Fail records a failed authentication of account. It returns a positive
// duration exactly when this failure locked an unlocked account: the
// caller writes one "user.locked" event with it. A failure that arrives
// while the account is already locked (a request that passed Check just
// before the lock) still counts and may lengthen the lock, but returns 0:
// the lock was already announced.
func (l *Lockout) Fail(ctx context.Context, account string) (lockedFor time.Duration, err error) {
	if l.policy.Threshold == 0 {
		return 0, nil
	}
	if account == "" {
		return 0, errors.New("lockout fail: empty account")
	}
	key := lockoutKey(hashKey(account))
	for range casAttempts {
		old, raw, err := l.load(ctx, key)
		if err != nil {
			return 0, fmt.Errorf("lockout fail: %w", err)
		}
		now := l.clock.Now().UnixNano()
		wasLocked := old.until > now
		st := lockState{failures: old.failures + 1, until: old.until}
		var started time.Duration
		if d := l.policy.Delay(st.failures); d > 0 {
			st.until = max(st.until, now+d.Nanoseconds())
			if !wasLocked {
				started = d
			}
		}
		ttl := time.Duration(max(st.until, now)-now) + l.policy.QuietPeriod
		if raw == nil {
			err = l.store.Create(ctx, key, st.encode(), ttl)
		} else {
			err = l.store.CompareAndSwap(ctx, key, raw, st.encode(), ttl)
		}
		switch {
		case err == nil:
			return started, nil
		case errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrNotFound):
			continue // another failure or a Succeed won the race; reread
		default:
			return 0, fmt.Errorf("lockout fail: %w: %w", ErrUnavailable, err)
		}
	}
	return 0, fmt.Errorf("lockout fail: %w: %d concurrent updates of one account, giving up", ErrUnavailable, casAttempts)
}

// Succeed forgets account's failures (and unlocks it). The login flow
// calls it after a successful authentication; an admin unlock can too.
func (l *Lockout) Succeed(ctx context.Context, account string) error {
	if l.policy.Threshold == 0 {
		return nil
	}
	if account == "" {
		return errors.New("lockout succeed: empty account")
	}
	if err := l.store.Delete(ctx, lockoutKey(hashKey(account))); err != nil {
		return fmt.Errorf("lockout succeed: %w: %w", ErrUnavailable, err)
	}
	return nil
}

// load returns the state and its stored bytes; a missing state is the zero
// state with nil bytes.
func (l *Lockout) load(ctx context.Context, key string) (lockState, []byte, error) {
	raw, err := l.store.Get(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return lockState{}, nil, nil
	}
	if err != nil {
		return lockState{}, nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	st, err := decodeLockState(raw)
	if err != nil {
		return lockState{}, nil, err
	}
	return st, raw, nil
}
