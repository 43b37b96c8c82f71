package ldap

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/providers"
)

// silentListener accepts TCP connections on 127.0.0.1 and never answers;
// the pool tests need connections, not LDAP.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

func testPool(t *testing.T, max int, maxIdle time.Duration) *pool {
	t.Helper()
	s := &settings{scheme: "ldap", hostPort: silentListener(t), connectTimeout: time.Second,
		requestTimeout: time.Second, cfg: Config{InsecureNoTLS: true}}
	p := newPool(&dialer{s: s}, max, maxIdle, func(context.Context, *conn) error { return nil })
	t.Cleanup(p.close)
	return p
}

func TestPoolBoundsAndReuse(t *testing.T) {
	ctx := context.Background()
	p := testPool(t, 2, time.Minute)

	a, reused, err := p.get(ctx, time.Second)
	if err != nil || reused {
		t.Fatalf("get 1: reused=%v err=%v, want a new connection", reused, err)
	}
	b, reused, err := p.get(ctx, time.Second)
	if err != nil || reused {
		t.Fatalf("get 2: reused=%v err=%v, want a new connection", reused, err)
	}
	start := time.Now()
	if _, _, err := p.get(ctx, 100*time.Millisecond); !errors.Is(err, errPoolExhausted) {
		t.Fatalf("get 3 with both in use: %v, want errPoolExhausted", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("get 3 waited %s, want about 100ms", el)
	}
	c := &Connector{info: providers.Info{ID: "x", Name: "X"}}
	if err := c.classify(errPoolExhausted); !errors.Is(err, providers.ErrBusy) {
		t.Fatalf("classify(errPoolExhausted) = %v, want ErrBusy", err)
	}

	// A waiter gets the connection put back.
	got := make(chan *conn)
	go func() {
		cn, _, err := p.get(ctx, 5*time.Second)
		if err != nil {
			t.Error(err)
		}
		got <- cn
	}()
	time.Sleep(50 * time.Millisecond)
	p.put(a)
	if cn := <-got; cn != a {
		t.Fatalf("waiter got %p, want the returned connection %p", cn, a)
	}

	// A broken connection is closed and its slot freed.
	a.broken = true
	p.put(a)
	if idle, open := p.stats(); idle != 0 || open != 1 {
		t.Fatalf("after discarding: idle=%d open=%d, want 0/1", idle, open)
	}
	p.put(b)
	if cn, reused, err := p.get(ctx, time.Second); err != nil || !reused || cn != b {
		t.Fatalf("get after put: %p reused=%v err=%v, want b reused", cn, reused, err)
	} else {
		p.put(cn)
	}
	if n := p.opens.Load(); n != 2 {
		t.Fatalf("opens = %d, want 2", n)
	}

	p.close()
	if idle, open := p.stats(); idle != 0 || open != 0 {
		t.Fatalf("after close: idle=%d open=%d, want 0/0", idle, open)
	}
	if _, _, err := p.get(ctx, time.Second); err == nil {
		t.Fatal("get after close succeeded")
	}
}

func TestPoolIdleExpiry(t *testing.T) {
	ctx := context.Background()
	p := testPool(t, 1, 20*time.Millisecond)
	a, _, err := p.get(ctx, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	a.lastUsed = time.Now()
	p.put(a)
	time.Sleep(50 * time.Millisecond)
	b, reused, err := p.get(ctx, time.Second)
	if err != nil || reused || b == a {
		t.Fatalf("get after the idle time: reused=%v same=%v err=%v, want a new connection", reused, b == a, err)
	}
	p.put(b)
	if !a.l.IsClosing() {
		t.Fatal("the expired connection was not closed")
	}
}
