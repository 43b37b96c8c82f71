package notify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// ErrSendFailed is wrapped by every error a sender returns after giving
// up: the message was not delivered to the provider.
var ErrSendFailed = errors.New("notify: send failed")

// Retry describes how a send is retried: at most Attempts tries (default
// 3), waiting Initial (default 500ms) before the second, doubling, with
// jitter.
type Retry struct {
	Attempts int
	Initial  time.Duration
}

// Permanent marks an error that retrying cannot fix (a 4xx answer, an
// address the server refuses).
func Permanent(err error) error { return backoff.Permanent(err) }

// Do runs send until it succeeds, returns a Permanent error, ctx ends or
// the attempts are spent. The error wraps ErrSendFailed and the last
// cause.
func (r Retry) Do(ctx context.Context, what string, send func(ctx context.Context) error) error {
	attempts, initial := r.Attempts, r.Initial
	if attempts <= 0 {
		attempts = 3
	}
	if initial <= 0 {
		initial = 500 * time.Millisecond
	}
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = initial
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		return struct{}{}, send(ctx)
	}, backoff.WithBackOff(bo), backoff.WithMaxTries(uint(attempts)), backoff.WithMaxElapsedTime(0))
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrSendFailed, what, err)
	}
	return nil
}
