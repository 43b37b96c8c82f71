package broker

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/latchkeyid/latchkey/broker/oauth2"
	"github.com/latchkeyid/latchkey/internal/ratelimit"
	"github.com/latchkeyid/latchkey/storage"
)

// Limits are the rate limits and the lockout the broker enforces. A nil
// Limiter or Lockout turns that part off (tests, tools).
type Limits struct {
	Limiter *ratelimit.Limiter
	Lockout *ratelimit.Lockout
	Rules   ratelimit.Rules
}

// RateLimitedError: too many attempts; try again after RetryAfter.
type RateLimitedError struct {
	RetryAfter time.Duration
	// Locked: the account (as typed) is locked after repeated failures.
	Locked bool
}

func (e *RateLimitedError) Error() string {
	if e.Locked {
		return fmt.Sprintf("too many failed sign-ins; try again in %s", roundUp(e.RetryAfter))
	}
	return fmt.Sprintf("too many attempts; try again in %s", roundUp(e.RetryAfter))
}

// RetryAfterSeconds is the Retry-After header value (at least 1).
func (e *RateLimitedError) RetryAfterSeconds() int {
	s := int((e.RetryAfter + time.Second - 1) / time.Second)
	return max(s, 1)
}

func roundUp(d time.Duration) time.Duration {
	if d < time.Second {
		return time.Second
	}
	return d.Round(time.Second)
}

// accountKey is the name a limit or lockout counts under: the typed
// username, trimmed and lower-cased, whether or not the account exists (so
// limits reveal nothing about which accounts exist).
func accountKey(username string) string {
	return strings.ToLower(strings.TrimSpace(username))
}

// checkLoginLimits runs before any password hash: per IP, per account,
// and the account lockout. A store failure is returned as is (the caller
// answers 503 through the outage path).
func (b *Broker) checkLoginLimits(ctx context.Context, username, ip string) error {
	l := b.limits
	if l.Limiter != nil {
		if addr, err := netip.ParseAddr(ip); err == nil {
			d, err := l.Limiter.Allow(ctx, l.Rules.LoginIP, ratelimit.IPKey(addr))
			if err != nil {
				return fmt.Errorf("login limit per IP: %w", err)
			}
			if !d.Allowed {
				return &RateLimitedError{RetryAfter: d.RetryAfter}
			}
		}
		d, err := l.Limiter.Allow(ctx, l.Rules.LoginAccount, accountKey(username))
		if err != nil {
			return fmt.Errorf("login limit per account: %w", err)
		}
		if !d.Allowed {
			return &RateLimitedError{RetryAfter: d.RetryAfter}
		}
	}
	if l.Lockout != nil {
		locked, err := l.Lockout.Check(ctx, accountKey(username))
		if err != nil {
			return fmt.Errorf("lockout: %w", err)
		}
		if locked > 0 {
			return &RateLimitedError{RetryAfter: locked, Locked: true}
		}
	}
	return nil
}

// loginFailed counts a failed password for the lockout and writes
// user.locked once when a lock starts.
func (b *Broker) loginFailed(ctx context.Context, username string, meta RequestMeta) {
	if b.limits.Lockout == nil {
		return
	}
	lockedFor, err := b.limits.Lockout.Fail(ctx, accountKey(username))
	if err != nil {
		b.log.WarnContext(ctx, "count failed login", "error", err)
		return
	}
	if lockedFor > 0 {
		b.audit(ctx, storage.Event{Type: "user.locked", ConnectorID: LocalConnectorID, IP: meta.IP, UserAgent: meta.UserAgent,
			RequestID: meta.RequestID, Data: map[string]any{"username": truncate(username, 64), "locked_for": lockedFor.String()}})
	}
}

func (b *Broker) loginSucceeded(ctx context.Context, username string) {
	if b.limits.Lockout == nil {
		return
	}
	if err := b.limits.Lockout.Succeed(ctx, accountKey(username)); err != nil {
		b.log.WarnContext(ctx, "reset failed-login count", "error", err)
	}
}

// checkTokenLimit is the per-client limit at the token endpoint, after
// client authentication (so unauthenticated callers cannot spend a
// client's budget).
func (b *Broker) checkTokenLimit(ctx context.Context, clientID string) *oauth2.Error {
	l := b.limits
	if l.Limiter == nil {
		return nil
	}
	d, err := l.Limiter.Allow(ctx, l.Rules.TokenClient, clientID)
	if err != nil {
		if errors.Is(err, ratelimit.ErrUnavailable) {
			return oauth2.ErrTemporarilyUnavailable("the service is temporarily unavailable; retry later", err)
		}
		return oauth2.ErrServerError("", err)
	}
	if !d.Allowed {
		return &oauth2.Error{Code: oauth2.CodeTemporarilyUnavailable, Description: "too many token requests for this client; retry later",
			Status: 429, RetryAfter: d.RetryAfterSeconds()}
	}
	return nil
}
