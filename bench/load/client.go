package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// conn is one keep-alive HTTP/1.1 connection, used by one worker at a
// time. It writes requests itself and reads responses with
// http.ReadResponse: net/http's Transport costs the client several times
// more CPU per request (a goroutine pair per connection, channel
// handoffs), and the load generator has one core, like the server.
type conn struct {
	addr string // host:port
	host string // Host header
	nc   net.Conn
	br   *bufio.Reader
	buf  bytes.Buffer
	// cookies this connection's "browser" holds (name -> value).
	cookies map[string]string
}

func newConn(addr, host string) *conn {
	return &conn{addr: addr, host: host, cookies: map[string]string{}}
}

func (c *conn) close() {
	if c.nc != nil {
		_ = c.nc.Close()
		c.nc = nil
	}
}

// request is what the scenarios send.
type request struct {
	method, path string
	header       [][2]string // extra headers
	body         []byte      // form body (Content-Type is set for it)
	wantBody     bool        // keep the response body
	cookies      bool        // send and keep cookies
}

// response is what they get back.
type response struct {
	status   int
	location string
	body     []byte
}

// do sends r and reads the answer, reconnecting once if a kept-alive
// connection was closed by the server.
func (c *conn) do(r *request) (response, error) {
	for attempt := 0; ; attempt++ {
		fresh := c.nc == nil
		if fresh {
			nc, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
			if err != nil {
				return response{}, err
			}
			if tc, ok := nc.(*net.TCPConn); ok {
				_ = tc.SetNoDelay(true)
			}
			c.nc = nc
			if c.br == nil {
				c.br = bufio.NewReaderSize(nc, 16<<10)
			} else {
				c.br.Reset(nc)
			}
		}
		resp, err := c.roundTrip(r)
		if err == nil {
			return resp, nil
		}
		c.close()
		if fresh || attempt > 0 {
			return response{}, err
		}
	}
}

func (c *conn) roundTrip(r *request) (response, error) {
	b := &c.buf
	b.Reset()
	b.WriteString(r.method)
	b.WriteByte(' ')
	b.WriteString(r.path)
	b.WriteString(" HTTP/1.1\r\nHost: ")
	b.WriteString(c.host)
	b.WriteString("\r\nUser-Agent: latchkey-load\r\n")
	for _, h := range r.header {
		b.WriteString(h[0])
		b.WriteString(": ")
		b.WriteString(h[1])
		b.WriteString("\r\n")
	}
	if r.cookies && len(c.cookies) > 0 {
		b.WriteString("Cookie: ")
		first := true
		for k, v := range c.cookies {
			if !first {
				b.WriteString("; ")
			}
			first = false
			b.WriteString(k)
			b.WriteByte('=')
			b.WriteString(v)
		}
		b.WriteString("\r\n")
	}
	if r.body != nil {
		b.WriteString("Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ")
		b.WriteString(strconv.Itoa(len(r.body)))
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	b.Write(r.body)
	_ = c.nc.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.nc.Write(b.Bytes()); err != nil {
		return response{}, err
	}
	hr, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return response{}, err
	}
	out := response{status: hr.StatusCode, location: hr.Header.Get("Location")}
	if r.wantBody {
		out.body, err = io.ReadAll(hr.Body)
	} else {
		_, err = io.Copy(io.Discard, hr.Body)
	}
	hr.Body.Close()
	if err != nil {
		return response{}, err
	}
	if r.cookies {
		for _, ck := range hr.Cookies() {
			if ck.MaxAge < 0 || ck.Value == "" {
				delete(c.cookies, ck.Name)
			} else {
				c.cookies[ck.Name] = ck.Value
			}
		}
	}
	if hr.Close {
		c.close()
	}
	return out, nil
}

// statusError is a response with an unexpected status.
type statusError struct {
	what   string
	status int
	body   []byte
}

func (e *statusError) Error() string {
	body := strings.TrimSpace(string(e.body))
	if len(body) > 200 {
		body = body[:200] + "..."
	}
	return fmt.Sprintf("%s: status %d: %s", e.what, e.status, body)
}

func expect(what string, resp response, err error, status int) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if resp.status != status {
		return &statusError{what: what, status: resp.status, body: resp.body}
	}
	return nil
}

var errNoField = errors.New("field missing from response")
