package httpclient

import (
	"crypto/tls"
	"errors"
	"io"
	"math"
	"net/url"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestTransportSettings(t *testing.T) {
	t.Parallel()
	c := New(Options{})
	tr, ok := c.Transport.(*transport)
	if !ok {
		t.Fatalf("Transport is %T, want *transport", c.Transport)
	}
	if tr.base.Proxy != nil {
		t.Error("Proxy is set; an environment proxy would dial for the client and skip the address check")
	}
	if got := tr.base.TLSClientConfig.MinVersion; got != tls.VersionTLS12 {
		t.Errorf("TLS MinVersion = %#x, want TLS 1.2 (%#x)", got, tls.VersionTLS12)
	}
	if c.Timeout != DefaultTimeout || tr.base.TLSHandshakeTimeout != DefaultDialTimeout || tr.maxBody != DefaultMaxBodyBytes {
		t.Errorf("defaults: timeout %v, handshake %v, max body %d; want %v, %v, %d",
			c.Timeout, tr.base.TLSHandshakeTimeout, tr.maxBody, DefaultTimeout, DefaultDialTimeout, DefaultMaxBodyBytes)
	}
	if c.Jar != nil {
		t.Error("Jar is set; upstream cookies must not be kept")
	}
	c = New(Options{Timeout: 3 * time.Second, DialTimeout: time.Second, MaxBodyBytes: 7})
	tr = c.Transport.(*transport)
	if c.Timeout != 3*time.Second || tr.base.TLSHandshakeTimeout != time.Second || tr.maxBody != 7 {
		t.Errorf("options not applied: timeout %v, handshake %v, max body %d", c.Timeout, tr.base.TLSHandshakeTimeout, tr.maxBody)
	}
}

func TestLimitedBody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		max     int64
		oneByte bool // read through iotest.OneByteReader
		want    string
		wantErr error
	}{
		{"under", "abc", 4, false, "abc", nil},
		{"exact", "abcd", 4, false, "abcd", nil},
		{"over", "abcde", 4, false, "abcd", ErrBodyTooLarge},
		{"over one byte at a time", "abcde", 4, true, "abcd", ErrBodyTooLarge},
		{"exact one byte at a time", "abcd", 4, true, "abcd", nil},
		{"huge limit does not overflow", "abc", math.MaxInt64, false, "abc", nil},
		{"empty", "", 4, false, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r io.Reader = strings.NewReader(tt.body)
			if tt.oneByte {
				r = iotest.OneByteReader(r)
			}
			b := &limitedBody{rc: io.NopCloser(r), left: tt.max, max: tt.max}
			got, err := io.ReadAll(b)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("ReadAll err = %v, want %v", err, tt.wantErr)
			}
			if string(got) != tt.want {
				t.Errorf("ReadAll = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestOrigin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		same bool
	}{
		{"https://idp.example/a", "https://IDP.example:443/b?x=1", true},
		{"HTTP://idp.example/", "http://idp.example:80/", true},
		{"http://[::1]:8080/", "http://[::1]:8080/x", true},
		{"https://idp.example/", "http://idp.example/", false},
		{"https://idp.example/", "https://idp.example:8443/", false},
		{"https://idp.example/", "https://evil.example/", false},
		{"https://idp.example/", "https://idp.example.evil.example/", false},
	}
	for _, tt := range tests {
		t.Run(tt.a+" "+tt.b, func(t *testing.T) {
			if got := origin(mustURL(t, tt.a)) == origin(mustURL(t, tt.b)); got != tt.same {
				t.Errorf("same origin = %v, want %v (%s vs %s)", got, tt.same, origin(mustURL(t, tt.a)), origin(mustURL(t, tt.b)))
			}
		})
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return u
}
