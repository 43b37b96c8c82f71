package httpclient_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/latchkeyid/latchkey/internal/httpclient"
)

var loopbackOnly = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// countingServer is an httptest server on 127.0.0.1 that counts accepted
// connections, so a test can prove that a refused dial never connected.
type countingServer struct {
	*httptest.Server
	conns atomic.Int64
}

func newCountingServer(t *testing.T, h http.Handler) *countingServer {
	t.Helper()
	cs := &countingServer{}
	cs.Server = httptest.NewUnstartedServer(h)
	cs.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			cs.conns.Add(1)
		}
	}
	cs.Start()
	t.Cleanup(cs.Close)
	return cs
}

func (cs *countingServer) port(t *testing.T) string {
	t.Helper()
	u, err := url.Parse(cs.URL)
	if err != nil {
		t.Fatalf("parse server URL: %v", err)
	}
	return u.Port()
}

// staticLookup resolves the names in m and nothing else.
func staticLookup(m map[string][]string) func(context.Context, string, string) ([]netip.Addr, error) {
	return func(_ context.Context, network, host string) ([]netip.Addr, error) {
		raw, ok := m[host]
		if !ok {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		var out []netip.Addr
		for _, s := range raw {
			a := netip.MustParseAddr(s)
			if (network == "ip4" && !a.Is4()) || (network == "ip6" && !a.Is6()) {
				continue
			}
			out = append(out, a)
		}
		return out, nil
	}
}

func get(t *testing.T, c *http.Client, rawURL string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatalf("new request %s: %v", rawURL, err)
	}
	return c.Do(req)
}

func TestRefusesForbiddenAddresses(t *testing.T) {
	t.Parallel()
	srv := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "should never be reached")
	}))
	port := srv.port(t)
	lookup := staticLookup(map[string][]string{
		"rebind.test": {"127.0.0.1"},
		"mixed.test":  {"192.0.2.10", "127.0.0.1"},
		"meta.test":   {"169.254.169.254"},
	})

	tests := []struct {
		name       string
		url        string
		wantAddrs  []string // any of these may be the first refused address
		wantReason string
		// systemResolver resolves through net.Dialer instead of LookupNetIP.
		systemResolver bool
	}{
		{"private 10.0.0.1", "http://10.0.0.1:9/", []string{"10.0.0.1"}, "private", false},
		{"cloud metadata", "http://169.254.169.254:9/latest/meta-data/", []string{"169.254.169.254"}, "link-local", false},
		{"IPv6 loopback", "http://[::1]:9/", []string{"::1"}, "loopback", false},
		{"IPv4 loopback", "http://127.0.0.1:" + port + "/", []string{"127.0.0.1"}, "loopback", false},
		{"other loopback", "http://127.0.0.2:" + port + "/", []string{"127.0.0.2"}, "loopback", false},
		{"IPv4-mapped loopback", "http://[::ffff:127.0.0.1]:" + port + "/", []string{"127.0.0.1", "::ffff:127.0.0.1"}, "loopback", false},
		{"IPv4-mapped private", "http://[::ffff:10.0.0.1]:9/", []string{"10.0.0.1", "::ffff:10.0.0.1"}, "private", false},
		{"unspecified IPv4", "http://0.0.0.0:" + port + "/", []string{"0.0.0.0"}, "unspecified", false},
		{"unspecified IPv6", "http://[::]:9/", []string{"::"}, "unspecified", false},
		{"CGNAT", "http://100.64.0.1:9/", []string{"100.64.0.1"}, "carrier-grade NAT", false},
		{"private 172.16", "http://172.31.255.255:9/", []string{"172.31.255.255"}, "private", false},
		{"private 192.168", "http://192.168.1.1:9/", []string{"192.168.1.1"}, "private", false},
		{"unique local IPv6", "http://[fd00::1]:9/", []string{"fd00::1"}, "private", false},
		{"link-local IPv6", "http://[fe80::1]:9/", []string{"fe80::1"}, "link-local", false},
		{"NAT64 of metadata", "http://[64:ff9b::a9fe:a9fe]:9/", []string{"64:ff9b::a9fe:a9fe"}, "NAT64 link-local", false},
		{"6to4", "http://[2002:7f00:1::1]:9/", []string{"2002:7f00:1::1"}, "6to4", false},
		{"multicast", "http://224.0.0.1:9/", []string{"224.0.0.1"}, "multicast", false},
		{"broadcast", "http://255.255.255.255:9/", []string{"255.255.255.255"}, "broadcast", false},
		{"documentation", "http://203.0.113.7:9/", []string{"203.0.113.7"}, "documentation", false},
		{"localhost", "http://localhost:" + port + "/", []string{"127.0.0.1", "::1"}, "loopback", true},
		{"name rebinding to loopback", "http://rebind.test:" + port + "/", []string{"127.0.0.1"}, "loopback", false},
		{"name resolving to metadata", "http://meta.test:9/", []string{"169.254.169.254"}, "link-local", false},
		{"every address of a name refused", "http://mixed.test:" + port + "/", []string{"192.0.2.10"}, "documentation", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := httpclient.Options{LookupNetIP: lookup}
			if tt.systemResolver {
				o.LookupNetIP = nil // Go's own resolver, as in production
			}
			c := httpclient.New(o)
			resp, err := get(t, c, tt.url)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("GET %s: got status %d, want ErrForbiddenAddress", tt.url, resp.StatusCode)
			}
			if !errors.Is(err, httpclient.ErrForbiddenAddress) {
				t.Fatalf("GET %s: err = %v, want errors.Is ErrForbiddenAddress", tt.url, err)
			}
			var ue *url.Error
			if !errors.As(err, &ue) {
				t.Errorf("GET %s: err %T is not a *url.Error", tt.url, err)
			}
			var fe *httpclient.ForbiddenAddressError
			if !errors.As(err, &fe) {
				t.Fatalf("GET %s: err = %v, want a *ForbiddenAddressError", tt.url, err)
			}
			found := false
			for _, a := range tt.wantAddrs {
				if fe.Addr == netip.MustParseAddr(a) {
					found = true
				}
			}
			if !found {
				t.Errorf("refused address = %s, want one of %v", fe.Addr, tt.wantAddrs)
			}
			if fe.Reason != tt.wantReason {
				t.Errorf("reason = %q, want %q", fe.Reason, tt.wantReason)
			}
			if !strings.Contains(err.Error(), fe.Addr.String()) {
				t.Errorf("error %q does not name the address %s", err, fe.Addr)
			}
		})
	}
	t.Cleanup(func() {
		if n := srv.conns.Load(); n != 0 {
			t.Errorf("loopback server accepted %d connections, want 0", n)
		}
	})
}

func TestAllowedNetworks(t *testing.T) {
	t.Parallel()
	srv := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "hello")
	}))
	port := srv.port(t)
	lookup := staticLookup(map[string][]string{"idp.test": {"127.0.0.1"}})

	tests := []struct {
		name    string
		allowed []string
		url     string
		wantErr error
		// wantNotFound expects a name-not-found error from the resolver.
		wantNotFound bool
	}{
		{"loopback prefix reaches 127.0.0.1", []string{"127.0.0.0/8"}, srv.URL, nil, false},
		{"single address prefix", []string{"127.0.0.1/32"}, srv.URL, nil, false},
		{"IPv4-mapped prefix counts as IPv4", []string{"::ffff:127.0.0.0/104"}, srv.URL, nil, false},
		{"name through injected resolver", []string{"127.0.0.0/8"}, "http://idp.test:" + port + "/", nil, false},
		{"IPv6 loopback only does not allow IPv4", []string{"::1/128"}, srv.URL, httpclient.ErrForbiddenAddress, false},
		{"other private range does not allow loopback", []string{"10.0.0.0/8"}, srv.URL, httpclient.ErrForbiddenAddress, false},
		{"allowed network but unknown name", []string{"127.0.0.0/8"}, "http://nowhere.test:" + port + "/", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var prefixes []netip.Prefix
			for _, s := range tt.allowed {
				prefixes = append(prefixes, netip.MustParsePrefix(s))
			}
			c := httpclient.New(httpclient.Options{AllowedNetworks: prefixes, LookupNetIP: lookup})
			resp, err := get(t, c, tt.url)
			if tt.wantNotFound {
				var dnsErr *net.DNSError
				if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
					t.Fatalf("GET %s: err = %v, want a not-found *net.DNSError", tt.url, err)
				}
				return
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("GET %s: err = %v, want %v", tt.url, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("GET %s: %v", tt.url, err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("read body: %v", err)
			}
			if resp.StatusCode != http.StatusOK || string(body) != "hello" {
				t.Errorf("got %d %q, want 200 \"hello\"", resp.StatusCode, body)
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	const limit = 1000
	srv := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil {
			http.Error(w, "bad n", http.StatusBadRequest)
			return
		}
		if r.URL.Query().Get("chunked") == "1" {
			// Write in pieces and flush: no Content-Length.
			for n > 0 {
				k := min(n, 300)
				w.Write(bytes.Repeat([]byte("x"), k))
				w.(http.Flusher).Flush()
				n -= k
			}
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write(bytes.Repeat([]byte("x"), n))
	}))
	c := httpclient.New(httpclient.Options{AllowedNetworks: loopbackOnly, MaxBodyBytes: limit})

	tests := []struct {
		name     string
		query    string
		wantRead int
		wantErr  error
	}{
		{"under the limit", "n=999", 999, nil},
		{"exactly the limit", "n=1000", 1000, nil},
		{"one byte over", "n=1001", 1000, httpclient.ErrBodyTooLarge},
		{"far over", "n=100000", 1000, httpclient.ErrBodyTooLarge},
		{"chunked exactly the limit", "n=1000&chunked=1", 1000, nil},
		{"chunked over", "n=1500&chunked=1", 1000, httpclient.ErrBodyTooLarge},
		{"empty", "n=0", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := get(t, c, srv.URL+"/?"+tt.query)
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("read: err = %v, want %v", err, tt.wantErr)
			}
			if len(body) != tt.wantRead {
				t.Errorf("read %d bytes, want %d", len(body), tt.wantRead)
			}
			if tt.wantErr != nil {
				if _, err := resp.Body.Read(make([]byte, 10)); !errors.Is(err, httpclient.ErrBodyTooLarge) {
					t.Errorf("read after limit: err = %v, want ErrBodyTooLarge again", err)
				}
			}
		})
	}
}

func TestDefaultBodyLimitIsOneMiB(t *testing.T) {
	t.Parallel()
	srv := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write(make([]byte, 1<<20+1))
	}))
	c := httpclient.New(httpclient.Options{AllowedNetworks: loopbackOnly})
	resp, err := get(t, c, srv.URL)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if !errors.Is(err, httpclient.ErrBodyTooLarge) || len(body) != 1<<20 {
		t.Errorf("read %d bytes, err %v; want %d bytes and ErrBodyTooLarge", len(body), err, 1<<20)
	}
}

// redirector answers /chain/N by redirecting to /chain/N-1 until /chain/0,
// /to?u=URL by redirecting to URL, and everything else with "ok <path>".
func redirector() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/chain/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.PathValue("n"))
		if err != nil {
			http.Error(w, "bad n", http.StatusBadRequest)
			return
		}
		if n == 0 {
			io.WriteString(w, "ok "+r.URL.Path)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/chain/%d", n-1), http.StatusFound)
	})
	mux.HandleFunc("/to", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Query().Get("u"), http.StatusFound)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok "+r.URL.Path)
	})
	return mux
}

func TestRedirects(t *testing.T) {
	t.Parallel()
	plain := newCountingServer(t, redirector())
	other := newCountingServer(t, redirector())
	secure := httptest.NewTLSServer(redirector())
	t.Cleanup(secure.Close)
	roots := x509.NewCertPool()
	roots.AddCert(secure.Certificate())
	port := plain.port(t)

	tests := []struct {
		name         string
		maxRedirects int
		url          string
		wantBody     string
		wantErr      error
	}{
		{"same host relative", 0, plain.URL + "/to?u=/done", "ok /done", nil},
		{"same host absolute", 0, plain.URL + "/to?u=" + url.QueryEscape(plain.URL+"/done"), "ok /done", nil},
		{"same host over https", 0, secure.URL + "/to?u=/done", "ok /done", nil},
		{"default allows 5", 0, plain.URL + "/chain/5", "ok /chain/0", nil},
		{"default refuses 6", 0, plain.URL + "/chain/6", "", httpclient.ErrTooManyRedirects},
		{"max 2 allows 2", 2, plain.URL + "/chain/2", "ok /chain/0", nil},
		{"max 2 refuses 3", 2, plain.URL + "/chain/3", "", httpclient.ErrTooManyRedirects},
		{"negative refuses any", -1, plain.URL + "/chain/1", "", httpclient.ErrTooManyRedirects},
		{"no redirect with negative", -1, plain.URL + "/chain/0", "ok /chain/0", nil},
		{"other host name same address", 0, plain.URL + "/to?u=" + url.QueryEscape("http://localhost:"+port+"/done"), "", httpclient.ErrRedirectOtherHost},
		{"other port", 0, plain.URL + "/to?u=" + url.QueryEscape(other.URL+"/done"), "", httpclient.ErrRedirectOtherHost},
		{"http to https", 0, plain.URL + "/to?u=" + url.QueryEscape(secure.URL+"/done"), "", httpclient.ErrRedirectOtherHost},
		{"https to http", 0, secure.URL + "/to?u=" + url.QueryEscape(plain.URL+"/done"), "", httpclient.ErrRedirectDowngrade},
		{"other host later in the chain", 0, plain.URL + "/to?u=" + url.QueryEscape("/to?u="+url.QueryEscape(other.URL+"/x")), "", httpclient.ErrRedirectOtherHost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := httpclient.New(httpclient.Options{
				AllowedNetworks: loopbackOnly,
				MaxRedirects:    tt.maxRedirects,
				RootCAs:         roots,
			})
			resp, err := get(t, c, tt.url)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("GET %s: err = %v, want %v", tt.url, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("GET %s: %v", tt.url, err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if string(body) != tt.wantBody {
				t.Errorf("body = %q, want %q", body, tt.wantBody)
			}
		})
	}
	if n := other.conns.Load(); n != 0 {
		t.Errorf("other-port server accepted %d connections, want 0", n)
	}
}

func TestTLSBelow12Refused(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "old")
	}))
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	c := httpclient.New(httpclient.Options{AllowedNetworks: loopbackOnly, RootCAs: roots})
	resp, err := get(t, c, srv.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("GET %s over TLS 1.1: got status %d, want a handshake error", srv.URL, resp.StatusCode)
	}
	if !strings.Contains(err.Error(), "protocol version not supported") {
		t.Errorf("err = %v, want a protocol version error", err)
	}
}

func TestUserAgent(t *testing.T) {
	t.Parallel()
	srv := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.UserAgent())
	}))
	tests := []struct {
		name      string
		optionUA  string
		requestUA string
		want      string
	}{
		{"default", "", "", "Latchkey"},
		{"configured", "Latchkey/1.2 (+https://example.org)", "", "Latchkey/1.2 (+https://example.org)"},
		{"caller's own wins", "Latchkey/1.2", "caller/3", "caller/3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := httpclient.New(httpclient.Options{AllowedNetworks: loopbackOnly, UserAgent: tt.optionUA})
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
			if err != nil {
				t.Fatalf("new request: %v", err)
			}
			if tt.requestUA != "" {
				req.Header.Set("User-Agent", tt.requestUA)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if string(body) != tt.want {
				t.Errorf("User-Agent = %q, want %q", body, tt.want)
			}
			if got := req.Header.Get("User-Agent"); got != tt.requestUA {
				t.Errorf("caller's request was modified: User-Agent = %q, want %q", got, tt.requestUA)
			}
		})
	}
}

func TestRefusalIsLogged(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	c := httpclient.New(httpclient.Options{Logger: log})
	resp, err := get(t, c, "http://127.0.0.1:9/secret-path?token=abc")
	if err == nil {
		resp.Body.Close()
		t.Fatal("GET 127.0.0.1: want an error")
	}
	out := buf.String()
	for _, want := range []string{`"level":"WARN"`, `"msg":"outbound connection refused"`, `"address":"127.0.0.1"`, `"reason":"loopback"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q lacks %s", out, want)
		}
	}
	if strings.Contains(out, "token=abc") {
		t.Errorf("log %q contains the query string", out)
	}
}

func TestCheckAddr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr       string
		allowed    []string
		wantReason string // "" means allowed
	}{
		{"8.8.8.8", nil, ""},
		{"1.1.1.1", nil, ""},
		{"2606:4700:4700::1111", nil, ""},
		{"64:ff9b::808:808", nil, ""},
		{"::ffff:8.8.8.8", nil, ""},
		{"127.0.0.1", nil, "loopback"},
		{"127.255.255.254", nil, "loopback"},
		{"::1", nil, "loopback"},
		{"::ffff:127.0.0.1", nil, "loopback"},
		{"10.0.0.1", nil, "private"},
		{"::ffff:10.0.0.1", nil, "private"},
		{"172.16.0.1", nil, "private"},
		{"172.32.0.1", nil, ""},
		{"192.168.0.1", nil, "private"},
		{"fc00::1", nil, "private"},
		{"fdff:ffff::1", nil, "private"},
		{"169.254.169.254", nil, "link-local"},
		{"fe80::1", nil, "link-local"},
		{"fe80::1%eth0", nil, "link-local"},
		{"0.0.0.0", nil, "unspecified"},
		{"0.1.2.3", nil, "this-network"},
		{"::", nil, "unspecified"},
		{"100.64.0.1", nil, "carrier-grade NAT"},
		{"100.127.255.255", nil, "carrier-grade NAT"},
		{"100.128.0.1", nil, ""},
		{"224.0.0.251", nil, "multicast"},
		{"ff02::1", nil, "multicast"},
		{"255.255.255.255", nil, "broadcast"},
		{"240.0.0.1", nil, "reserved"},
		{"192.0.2.1", nil, "documentation"},
		{"198.51.100.1", nil, "documentation"},
		{"203.0.113.1", nil, "documentation"},
		{"2001:db8::1", nil, "documentation"},
		{"3fff::1", nil, "documentation"},
		{"198.18.0.1", nil, "benchmarking"},
		{"192.0.0.170", nil, "IETF protocol assignment"},
		{"192.88.99.1", nil, "6to4 relay"},
		{"64:ff9b::7f00:1", nil, "NAT64 loopback"},
		{"64:ff9b::a00:1", nil, "NAT64 private"},
		{"64:ff9b:1::1", nil, "local-use NAT64"},
		{"::7f00:1", nil, "IPv4-compatible"},
		{"::ffff:0:7f00:1", nil, "IPv4-translated"},
		{"2002:7f00:1::1", nil, "6to4"},
		{"2001:0:4136:e378::1", nil, "Teredo"},
		{"2001:2::1", nil, "IETF protocol assignment"},
		{"100::1", nil, "discard-only"},
		{"fec0::1", nil, "site-local"},
		{"127.0.0.1", []string{"127.0.0.0/8"}, ""},
		{"::ffff:127.0.0.1", []string{"127.0.0.0/8"}, ""},
		{"127.0.0.1", []string{"::ffff:127.0.0.1/128"}, ""},
		{"::1", []string{"::1/128"}, ""},
		{"::1", []string{"127.0.0.0/8"}, "loopback"},
		{"127.0.0.1", []string{"::1/128"}, "loopback"},
		{"10.1.2.3", []string{"::ffff:10.0.0.0/104"}, ""},
		{"10.1.2.3", []string{"10.0.0.0/16"}, "private"},
		{"127.0.0.1", []string{"::/0"}, ""},
		{"fe80::1%eth0", []string{"fe80::/10"}, ""},
		{"64:ff9b::7f00:1", []string{"127.0.0.0/8"}, "NAT64 loopback"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s allowed %v", tt.addr, tt.allowed), func(t *testing.T) {
			var prefixes []netip.Prefix
			for _, s := range tt.allowed {
				prefixes = append(prefixes, netip.MustParsePrefix(s))
			}
			addr := netip.MustParseAddr(tt.addr)
			err := httpclient.CheckAddr(addr, prefixes)
			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("CheckAddr(%s) = %v, want nil", addr, err)
				}
				return
			}
			var fe *httpclient.ForbiddenAddressError
			if !errors.As(err, &fe) || !errors.Is(err, httpclient.ErrForbiddenAddress) {
				t.Fatalf("CheckAddr(%s) = %v, want a *ForbiddenAddressError", addr, err)
			}
			if fe.Reason != tt.wantReason || fe.Addr != addr {
				t.Errorf("CheckAddr(%s) = {%s %q}, want {%s %q}", addr, fe.Addr, fe.Reason, addr, tt.wantReason)
			}
		})
	}
	if err := httpclient.CheckAddr(netip.Addr{}, nil); !errors.Is(err, httpclient.ErrForbiddenAddress) {
		t.Errorf("CheckAddr(zero Addr) = %v, want ErrForbiddenAddress", err)
	}
}

// verdict is "" for allowed, else the refusal reason.
func verdict(t *testing.T, a netip.Addr, allowed []netip.Prefix) string {
	t.Helper()
	err := httpclient.CheckAddr(a, allowed)
	if err == nil {
		return ""
	}
	var fe *httpclient.ForbiddenAddressError
	if !errors.As(err, &fe) || !errors.Is(err, httpclient.ErrForbiddenAddress) {
		t.Fatalf("CheckAddr(%s) = %v (%T), want a *ForbiddenAddressError", a, err, err)
	}
	if fe.Addr != a || fe.Reason == "" || !strings.Contains(err.Error(), a.String()) {
		t.Fatalf("CheckAddr(%s) = %+v: wrong address or empty reason", a, fe)
	}
	return fe.Reason
}

func FuzzCheckAddr(f *testing.F) {
	for _, s := range []string{
		"127.0.0.1", "10.0.0.1", "169.254.169.254", "8.8.8.8", "100.64.0.1", "0.0.0.0",
		"::1", "::", "::ffff:127.0.0.1", "64:ff9b::7f00:1", "fe80::1", "fd00::1", "2606:4700::1",
		"2002:7f00:1::1", "ff02::1", "255.255.255.255",
	} {
		f.Add(netip.MustParseAddr(s).AsSlice())
	}
	someAllowed := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	everything := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, ok := netip.AddrFromSlice(b)
		if !ok {
			return
		}
		v := verdict(t, a, nil)
		u := a.Unmap()

		// The standard library's own predicates are an independent oracle.
		if v == "" && (u.IsLoopback() || u.IsPrivate() || u.IsLinkLocalUnicast() || u.IsLinkLocalMulticast() ||
			u.IsInterfaceLocalMulticast() || u.IsMulticast() || u.IsUnspecified()) {
			t.Fatalf("%s allowed, but the standard library calls it non-public", a)
		}
		// An IPv4-mapped address is judged as its IPv4 form, with or
		// without an allow list.
		if u.Is4() {
			m := netip.AddrFrom16(u.As16())
			for _, allowed := range [][]netip.Prefix{nil, someAllowed} {
				if got, want := verdict(t, m, allowed), verdict(t, u, allowed); got != want {
					t.Fatalf("%s: %q, but %s: %q (allowed %v)", m, got, u, want, allowed)
				}
			}
			// Its NAT64 form gets the same verdict, reason prefixed.
			b16 := netip.MustParseAddr("64:ff9b::").As16()
			b4 := u.As4()
			copy(b16[12:], b4[:])
			n := netip.AddrFrom16(b16)
			if got, want := verdict(t, n, nil), verdict(t, u, nil); (got == "") != (want == "") || (want != "" && got != "NAT64 "+want) {
				t.Fatalf("%s: %q, but %s: %q", n, got, u, want)
			}
		}
		// Allowing exactly the address, or everything, allows it.
		if got := verdict(t, a, []netip.Prefix{netip.PrefixFrom(a, a.BitLen())}); got != "" {
			t.Fatalf("%s refused (%s) although its own prefix is allowed", a, got)
		}
		if got := verdict(t, a, everything); got != "" {
			t.Fatalf("%s refused (%s) although everything is allowed", a, got)
		}
		// An allow list never turns an allowed address into a refused one.
		if v == "" && verdict(t, a, someAllowed) != "" {
			t.Fatalf("%s allowed without an allow list but refused with one", a)
		}
	})
}
