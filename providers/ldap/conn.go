package ldap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// conn is one LDAP connection. Every operation on it runs under a
// deadline on the raw socket (the request timeout, or the context's
// deadline if earlier), and the context's cancellation moves that
// deadline to the past, so no operation outlives its bound: go-ldap's
// reader then fails and closes the connection. A conn is used by one
// goroutine at a time.
type conn struct {
	raw      net.Conn // the TCP connection under any TLS
	l        *goldap.Conn
	broken   bool // a failed or interrupted operation: close, never reuse
	lastUsed time.Time
}

var (
	// errTimeout is reported when an operation's deadline passed.
	errTimeout = errors.New("ldap: operation timed out")
	// errConnect marks a failure to connect: TCP, TLS or StartTLS.
	errConnect = errors.New("ldap: cannot connect")
	// errConnLost marks an operation that failed because the connection
	// closed under it (the server went away, or a read failed).
	errConnLost = errors.New("ldap: connection lost")
)

// dialer opens connections to the configured server.
type dialer struct {
	s     *settings
	tls   *tls.Config // nil with insecureNoTLS
	dials atomic.Int64
}

// dial connects, performs the TLS handshake (ldaps://) or StartTLS, and
// returns an unbound connection.
func (d *dialer) dial(ctx context.Context) (*conn, error) {
	d.dials.Add(1)
	nd := net.Dialer{Timeout: d.s.connectTimeout}
	raw, err := nd.DialContext(ctx, "tcp", d.s.hostPort)
	if err != nil {
		return nil, fmt.Errorf("%w to %s: %w", errConnect, d.s.hostPort, err)
	}
	var nc net.Conn = raw
	if d.s.scheme == "ldaps" {
		hctx, cancel := context.WithTimeout(ctx, d.s.connectTimeout)
		tc := tls.Client(raw, d.tls)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			raw.Close()
			return nil, fmt.Errorf("%w to %s: TLS handshake: %w", errConnect, d.s.hostPort, err)
		}
		nc = tc
	}
	l := goldap.NewConn(nc, d.s.scheme == "ldaps")
	l.Start()
	// Bounds go-ldap's own waits (a request's answer; Close's goodbye).
	l.SetTimeout(d.s.requestTimeout)
	c := &conn{raw: raw, l: l, lastUsed: time.Now()}
	if d.s.cfg.StartTLS {
		err := c.run(ctx, d.s.connectTimeout, func(l *goldap.Conn) error { return l.StartTLS(d.tls) })
		if err != nil {
			c.close()
			return nil, fmt.Errorf("%w to %s: StartTLS: %w", errConnect, d.s.hostPort, err)
		}
	}
	return c, nil
}

// run calls f under the operation bound described on conn. After an
// error that leaves the connection in doubt (network, timeout,
// cancellation) the conn is marked broken.
func (c *conn) run(ctx context.Context, timeout time.Duration, f func(*goldap.Conn) error) error {
	deadline := time.Now().Add(timeout)
	ctxBound := false
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline, ctxBound = d, true
	}
	if err := c.raw.SetDeadline(deadline); err != nil {
		c.broken = true
		return fmt.Errorf("ldap: set deadline: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.raw.SetDeadline(time.Unix(1, 0)) })
	err := f(c.l)
	interrupted := !stop()
	switch {
	case interrupted:
		c.broken = true
		err = fmt.Errorf("ldap: %w (%v)", ctx.Err(), err)
	case err != nil && !time.Now().Before(deadline) && ctxBound:
		c.broken = true
		err = fmt.Errorf("ldap: %w (%v)", context.DeadlineExceeded, err)
	case err != nil && !time.Now().Before(deadline):
		c.broken = true
		err = fmt.Errorf("%w after %s: %v", errTimeout, timeout, err)
	case err != nil && isNetworkError(err):
		c.broken = true
	case err != nil && c.l.IsClosing():
		// go-ldap reports a dead connection as a plain error.
		c.broken = true
		err = fmt.Errorf("%w: %w", errConnLost, err)
	}
	if !c.broken {
		if derr := c.raw.SetDeadline(time.Time{}); derr != nil {
			c.broken = true
		}
	}
	c.lastUsed = time.Now()
	return err
}

// usable reports whether a pooled conn may be used again.
func (c *conn) usable(maxIdle time.Duration) bool {
	return !c.broken && !c.l.IsClosing() && time.Since(c.lastUsed) < maxIdle
}

func (c *conn) close() {
	// Close waits for go-ldap's goroutines, at most the request timeout.
	_ = c.l.Close()
	_ = c.raw.Close()
}

// isNetworkError reports whether err means the connection failed (as
// opposed to an LDAP result from a working server).
func isNetworkError(err error) bool {
	if errors.Is(err, errConnect) || errors.Is(err, errConnLost) || errors.Is(err, errTimeout) ||
		errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var le *goldap.Error
	if errors.As(err, &le) {
		switch le.ResultCode {
		case goldap.ErrorNetwork, goldap.ErrorUnexpectedMessage, goldap.ErrorUnexpectedResponse, goldap.ErrorMalformedPacket,
			goldap.LDAPResultBusy, goldap.LDAPResultUnavailable:
			return true
		}
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, net.ErrClosed)
}

// pool holds up to max service-account connections: a conn is either
// idle in the idle channel or in use, and a slot token is held for each
// open one, so at most max are open at any time.
type pool struct {
	d       *dialer
	bind    func(ctx context.Context, c *conn) error
	idle    chan *conn
	slots   chan struct{}
	maxIdle time.Duration
	closed  atomic.Bool
	opens   atomic.Int64 // service connections opened, ever
}

func newPool(d *dialer, max int, maxIdle time.Duration, bind func(context.Context, *conn) error) *pool {
	return &pool{d: d, bind: bind, idle: make(chan *conn, max), slots: make(chan struct{}, max), maxIdle: maxIdle}
}

// errPoolExhausted: every connection stayed in use for the whole wait.
var errPoolExhausted = errors.New("ldap: every pooled connection stayed busy")

// get returns a bound connection and whether it was reused from the idle
// set. It waits at most wait for one to be free.
func (p *pool) get(ctx context.Context, wait time.Duration) (*conn, bool, error) {
	if p.closed.Load() {
		return nil, false, errors.New("ldap: connector closed")
	}
	// Prefer an idle connection to opening another.
	for {
		var c *conn
		select {
		case c = <-p.idle:
		default:
		}
		if c == nil {
			break
		}
		if c.usable(p.maxIdle) {
			return c, true, nil
		}
		p.discard(c)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case c := <-p.idle:
			if c.usable(p.maxIdle) {
				return c, true, nil
			}
			p.discard(c)
		case p.slots <- struct{}{}:
			c, err := p.open(ctx)
			if err != nil {
				<-p.slots
				return nil, false, err
			}
			return c, false, nil
		case <-ctx.Done():
			return nil, false, fmt.Errorf("ldap: wait for a connection: %w", ctx.Err())
		case <-timer.C:
			return nil, false, errPoolExhausted
		}
	}
}

func (p *pool) open(ctx context.Context) (*conn, error) {
	p.opens.Add(1)
	c, err := p.d.dial(ctx)
	if err != nil {
		return nil, err
	}
	if err := p.bind(ctx, c); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// put returns c to the pool, or closes it when it is broken.
func (p *pool) put(c *conn) {
	if c.broken || p.closed.Load() {
		p.discard(c)
		return
	}
	p.idle <- c // never blocks: at most cap(slots) conns exist
	if p.closed.Load() {
		p.drain()
	}
}

// discard closes c and frees its slot.
func (p *pool) discard(c *conn) {
	c.close()
	<-p.slots
}

// drain closes the idle connections.
func (p *pool) drain() {
	for {
		select {
		case c := <-p.idle:
			p.discard(c)
		default:
			return
		}
	}
}

func (p *pool) close() {
	p.closed.Store(true)
	p.drain()
}

// stats: idle connections now, open connections now.
func (p *pool) stats() (idle, open int) { return len(p.idle), len(p.slots) }
