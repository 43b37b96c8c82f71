package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/sony/gobreaker/v2"
	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/internal/httpclient"
	"github.com/latchkeyid/latchkey/providers"
)

// Defaults for zero Settings fields.
const (
	DefaultMaxAttempts    = 3
	DefaultInitialBackoff = 100 * time.Millisecond
	DefaultMaxBackoff     = time.Second
	DefaultFailuresToTrip = 5
	DefaultOpenFor        = 30 * time.Second
)

// ErrCircuitOpen is returned (inside the *url.Error of http.Client.Do)
// while the connector's circuit breaker is open.
var ErrCircuitOpen = errors.New("upstream: circuit breaker open after repeated failures")

// Settings configures New. Zero fields take the defaults above.
type Settings struct {
	// Info names the connector in errors and logs.
	Info providers.Info
	// Logger receives breaker state changes and retries; nil discards.
	Logger *slog.Logger
	// MaxAttempts bounds the attempts of one idempotent request.
	MaxAttempts uint
	// InitialBackoff and MaxBackoff bound the wait between attempts.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// FailuresToTrip consecutive failures open the breaker for OpenFor.
	FailuresToTrip uint32
	OpenFor        time.Duration
}

// Client is a connector's resilient view of the hardened client.
type Client struct {
	// HTTP is the client to hand to go-oidc and x/oauth2 and to use
	// directly. Its Timeout and CheckRedirect are the base client's.
	HTTP    *http.Client
	info    providers.Info
	breaker *gobreaker.CircuitBreaker[*http.Response]
}

// New wraps base (the hardened client from internal/httpclient). base's
// Transport keeps every guard; New adds retries and a circuit breaker
// around it.
func New(base *http.Client, s Settings) *Client {
	if s.MaxAttempts == 0 {
		s.MaxAttempts = DefaultMaxAttempts
	}
	if s.InitialBackoff <= 0 {
		s.InitialBackoff = DefaultInitialBackoff
	}
	if s.MaxBackoff <= 0 {
		s.MaxBackoff = DefaultMaxBackoff
	}
	if s.FailuresToTrip == 0 {
		s.FailuresToTrip = DefaultFailuresToTrip
	}
	if s.OpenFor <= 0 {
		s.OpenFor = DefaultOpenFor
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	info := s.Info
	cb := gobreaker.NewCircuitBreaker[*http.Response](gobreaker.Settings{
		Name:        info.ID,
		MaxRequests: 1,
		Timeout:     s.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= s.FailuresToTrip
		},
		IsExcluded: func(err error) bool {
			return errors.Is(err, context.Canceled)
		},
		OnStateChange: func(_ string, from, to gobreaker.State) {
			log.Warn("upstream circuit breaker changed state",
				slog.String("connector", info.ID), slog.String("from", from.String()), slog.String("to", to.String()))
		},
	})
	rt := base.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	t := &transport{base: rt, breaker: cb, s: s, log: log}
	return &Client{
		HTTP: &http.Client{
			Transport:     t,
			CheckRedirect: base.CheckRedirect,
			Timeout:       base.Timeout,
		},
		info:    info,
		breaker: cb,
	}
}

// BreakerState returns the breaker's state ("closed", "open",
// "half-open"), for health pages and tests.
func (c *Client) BreakerState() string { return c.breaker.State().String() }

// Unavailable wraps err as a *providers.UnavailableError for this
// connector.
func (c *Client) Unavailable(err error) error {
	return &providers.UnavailableError{ConnectorID: c.info.ID, Connector: c.info.Name, Err: err}
}

// StatusError is an unexpected HTTP status from an upstream endpoint that
// a connector calls directly (discovery, userinfo). The body is not kept:
// it is the upstream's and may be large.
type StatusError struct {
	Endpoint string // e.g. "discovery", "userinfo"
	Status   int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s answered HTTP %d", e.Endpoint, e.Status)
}

// IsUnavailable reports whether err means the upstream could not be
// reached or failed on its side: anything http.Client.Do returned
// (timeouts, refused connections and addresses, refused redirects, an open
// breaker), a 5xx or 429 StatusError or token endpoint answer, and an
// exceeded deadline.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return true
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status >= 500 || se.Status == http.StatusTooManyRequests
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		return re.Response.StatusCode >= 500 || re.Response.StatusCode == http.StatusTooManyRequests
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrCircuitOpen) ||
		errors.Is(err, httpclient.ErrForbiddenAddress)
}

type transport struct {
	base    http.RoundTripper
	breaker *gobreaker.CircuitBreaker[*http.Response]
	s       Settings
	log     *slog.Logger
}

// failedStatus carries a response the breaker counts as a failure.
type failedStatus struct{ resp *http.Response }

func (failedStatus) Error() string { return "upstream failed status" }

// retryStatus marks a response worth another attempt.
type retryStatus struct{ resp *http.Response }

func (retryStatus) Error() string { return "upstream answered a retryable status" }

func (t *transport) once(req *http.Request) (*http.Response, error) {
	resp, err := t.breaker.Execute(func() (*http.Response, error) {
		resp, err := t.base.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return resp, failedStatus{resp}
		}
		return resp, nil
	})
	switch {
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		return nil, fmt.Errorf("%w (%v)", ErrCircuitOpen, err)
	case err != nil:
		var fs failedStatus
		if errors.As(err, &fs) {
			return fs.resp, nil
		}
		return nil, err
	}
	return resp, nil
}

func idempotent(req *http.Request) bool {
	return (req.Method == http.MethodGet || req.Method == http.MethodHead || req.Method == "") &&
		(req.Body == nil || req.Body == http.NoBody)
}

func retryableStatus(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

func permanent(err error) bool {
	return errors.Is(err, ErrCircuitOpen) || errors.Is(err, httpclient.ErrForbiddenAddress) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// retryAfter returns the Retry-After delay of resp, or -1 when absent or
// not in seconds.
func retryAfter(resp *http.Response) time.Duration {
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return -1
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return -1
	}
	return time.Duration(n) * time.Second
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !idempotent(req) {
		return t.once(req)
	}
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = t.s.InitialBackoff
	bo.MaxInterval = t.s.MaxBackoff
	ctx := req.Context()
	resp, err := backoff.Retry(ctx, func() (*http.Response, error) {
		resp, err := t.once(req)
		if err != nil {
			if permanent(err) || ctx.Err() != nil {
				return nil, backoff.Permanent(err)
			}
			return nil, err
		}
		if retryableStatus(resp.StatusCode) {
			if ra := retryAfter(resp); ra > t.s.MaxBackoff {
				return resp, nil // the upstream asks for longer than we wait
			}
			return resp, retryStatus{resp}
		}
		return resp, nil
	},
		backoff.WithBackOff(bo),
		backoff.WithMaxTries(t.s.MaxAttempts),
		backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(err error, next time.Duration) {
			var rs retryStatus
			if errors.As(err, &rs) {
				drain(rs.resp)
			}
			t.log.DebugContext(ctx, "retrying upstream request",
				slog.String("connector", t.s.Info.ID), slog.String("host", req.URL.Host),
				slog.String("path", req.URL.Path), slog.Duration("after", next), slog.String("error", err.Error()))
		}),
	)
	var rs retryStatus
	if errors.As(err, &rs) {
		// Out of attempts: hand the caller the last answer itself.
		return rs.resp, nil
	}
	if err != nil {
		if resp != nil {
			drain(resp) // a retryable answer whose retry the context cut short
		}
		return nil, err
	}
	return resp, nil
}
