package upstream_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/internal/httpclient"
	"github.com/latchkeyid/latchkey/internal/secretbox"
	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/upstream"
)

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// script answers each request with the next status; "drop" closes the
// connection without an answer; the last entry repeats.
type script struct {
	mu    sync.Mutex
	steps []string
	n     int
	hdr   map[string]string
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	step := s.steps[min(s.n, len(s.steps)-1)]
	s.n++
	s.mu.Unlock()
	if step == "drop" {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	for k, v := range s.hdr {
		w.Header().Set(k, v)
	}
	var code int
	fmt.Sscan(step, &code)
	w.WriteHeader(code)
}

func (s *script) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func newClient(st upstream.Settings, o httpclient.Options) *upstream.Client {
	if st.Info.ID == "" {
		st.Info = providers.Info{ID: "up", Name: "Upstream"}
	}
	if st.InitialBackoff == 0 {
		st.InitialBackoff = 5 * time.Millisecond
		st.MaxBackoff = 20 * time.Millisecond
	}
	return upstream.New(httpclient.New(o), st)
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		steps      []string
		hdr        map[string]string
		wantStatus int
		wantCalls  int
	}{
		{name: "GET recovers after two 503", method: "GET", steps: []string{"503", "503", "200"}, wantStatus: 200, wantCalls: 3},
		{name: "GET gives up after MaxAttempts with the last answer", method: "GET", steps: []string{"503"}, wantStatus: 503, wantCalls: 3},
		{name: "GET retries 500", method: "GET", steps: []string{"500", "200"}, wantStatus: 200, wantCalls: 2},
		{name: "GET retries a dropped connection", method: "GET", steps: []string{"drop", "200"}, wantStatus: 200, wantCalls: 2},
		{name: "GET does not retry 404", method: "GET", steps: []string{"404", "200"}, wantStatus: 404, wantCalls: 1},
		{name: "GET does not retry 401", method: "GET", steps: []string{"401", "200"}, wantStatus: 401, wantCalls: 1},
		{name: "GET does not wait a long Retry-After", method: "GET", steps: []string{"429", "200"}, hdr: map[string]string{"Retry-After": "120"}, wantStatus: 429, wantCalls: 1},
		{name: "POST is never retried", method: "POST", steps: []string{"503", "200"}, wantStatus: 503, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &script{steps: tt.steps, hdr: tt.hdr}
			srv := httptest.NewServer(s)
			defer srv.Close()
			c := newClient(upstream.Settings{FailuresToTrip: 100}, httpclient.Options{AllowedNetworks: loopback, Timeout: 5 * time.Second})
			req, _ := http.NewRequestWithContext(context.Background(), tt.method, srv.URL, nil)
			if tt.method == "POST" {
				req, _ = http.NewRequestWithContext(context.Background(), tt.method, srv.URL, strings.NewReader("a=b"))
			}
			resp, err := c.HTTP.Do(req)
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus || s.count() != tt.wantCalls {
				t.Fatalf("status %d after %d calls, want %d after %d", resp.StatusCode, s.count(), tt.wantStatus, tt.wantCalls)
			}
		})
	}
}

func TestForbiddenAddressIsNotRetried(t *testing.T) {
	s := &script{steps: []string{"200"}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	// No AllowedNetworks: loopback is refused before connect(2).
	c := newClient(upstream.Settings{}, httpclient.Options{Timeout: 5 * time.Second})
	req, _ := http.NewRequestWithContext(context.Background(), "GET", srv.URL, nil)
	_, err := c.HTTP.Do(req)
	if !errors.Is(err, httpclient.ErrForbiddenAddress) || !upstream.IsUnavailable(err) {
		t.Fatalf("err = %v, want ErrForbiddenAddress", err)
	}
	if s.count() != 0 {
		t.Fatalf("server reached %d times", s.count())
	}
}

func TestBreakerOpensAndRecovers(t *testing.T) {
	s := &script{steps: []string{"503"}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c := newClient(upstream.Settings{MaxAttempts: 1, FailuresToTrip: 3, OpenFor: 200 * time.Millisecond},
		httpclient.Options{AllowedNetworks: loopback, Timeout: 5 * time.Second})
	get := func() (*http.Response, error) {
		req, _ := http.NewRequestWithContext(context.Background(), "GET", srv.URL, nil)
		resp, err := c.HTTP.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return resp, err
	}
	for i := 0; i < 3; i++ {
		resp, err := get()
		if err != nil || resp.StatusCode != 503 {
			t.Fatalf("call %d: %v %v", i, resp, err)
		}
	}
	if got := c.BreakerState(); got != "open" {
		t.Fatalf("breaker %s after 3 failures, want open", got)
	}
	_, err := get()
	if !errors.Is(err, upstream.ErrCircuitOpen) || !upstream.IsUnavailable(err) {
		t.Fatalf("err = %v, want ErrCircuitOpen", err)
	}
	if s.count() != 3 {
		t.Fatalf("server reached %d times while the breaker was open, want 3", s.count())
	}
	s.mu.Lock()
	s.steps = []string{"200"}
	s.mu.Unlock()
	time.Sleep(250 * time.Millisecond) // OpenFor passes: half-open lets one probe through
	resp, err := get()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("probe: %v %v", resp, err)
	}
	if got := c.BreakerState(); got != "closed" {
		t.Fatalf("breaker %s after a good probe, want closed", got)
	}
}

func TestTimeoutBoundsRetries(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	defer srv.Close()
	defer close(stop)
	const timeout = 300 * time.Millisecond
	c := newClient(upstream.Settings{MaxAttempts: 5}, httpclient.Options{AllowedNetworks: loopback, Timeout: timeout})
	start := time.Now()
	req, _ := http.NewRequestWithContext(context.Background(), "GET", srv.URL, nil)
	_, err := c.HTTP.Do(req)
	if d := time.Since(start); d > 2*timeout {
		t.Fatalf("took %v with a %v timeout", d, timeout)
	}
	if !upstream.IsUnavailable(err) {
		t.Fatalf("err = %v, want unavailable", err)
	}
}

func TestIsUnavailable(t *testing.T) {
	resp := func(code int) *http.Response { return &http.Response{StatusCode: code} }
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", errors.New("x"), false},
		{"url error", &url.Error{Op: "Get", URL: "http://x", Err: errors.New("refused")}, true},
		{"status 503", &upstream.StatusError{Endpoint: "userinfo", Status: 503}, true},
		{"status 429", &upstream.StatusError{Endpoint: "userinfo", Status: 429}, true},
		{"status 404", &upstream.StatusError{Endpoint: "userinfo", Status: 404}, false},
		{"token 500", &oauth2.RetrieveError{Response: resp(500)}, true},
		{"token 400", &oauth2.RetrieveError{Response: resp(400), ErrorCode: "invalid_grant"}, false},
		{"breaker", fmt.Errorf("x: %w", upstream.ErrCircuitOpen), true},
		{"deadline", context.DeadlineExceeded, true},
		{"canceled", context.Canceled, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := upstream.IsUnavailable(tt.err); got != tt.want {
				t.Fatalf("IsUnavailable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestClassifyTokenError(t *testing.T) {
	c := newClient(upstream.Settings{Info: providers.Info{ID: "corp", Name: "Corp"}}, httpclient.Options{})
	big := strings.Repeat("<html>", 1000)
	tests := []struct {
		name        string
		err         error
		wantMsg     string
		wantRefused bool
		wantUnavail bool
	}{
		{
			name:        "invalid_grant",
			err:         &oauth2.RetrieveError{Response: &http.Response{StatusCode: 400}, ErrorCode: "invalid_grant", ErrorDescription: "used", Body: []byte(big)},
			wantMsg:     "op: refused: token endpoint answered HTTP 400 invalid_grant: used",
			wantRefused: true,
		},
		{
			name:    "invalid_client is a server error",
			err:     &oauth2.RetrieveError{Response: &http.Response{StatusCode: 401}, ErrorCode: "invalid_client"},
			wantMsg: "op: token endpoint answered HTTP 401 invalid_client",
		},
		{
			name:        "5xx is an outage, body left out",
			err:         &oauth2.RetrieveError{Response: &http.Response{StatusCode: 502}, Body: []byte(big)},
			wantMsg:     "Corp is unavailable: op: token endpoint answered HTTP 502",
			wantUnavail: true,
		},
		{
			name:        "transport",
			err:         &url.Error{Op: "Post", URL: "http://x/token", Err: errors.New("connection refused")},
			wantMsg:     `Corp is unavailable: op: Post "http://x/token": connection refused`,
			wantUnavail: true,
		},
		{
			name:    "other",
			err:     errors.New("oauth2: server response missing access_token"),
			wantMsg: "op: oauth2: server response missing access_token",
		},
	}
	refused := errors.New("refused")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.ClassifyTokenError("op", tt.err, refused)
			if err.Error() != tt.wantMsg {
				t.Fatalf("message %q, want %q", err.Error(), tt.wantMsg)
			}
			if errors.Is(err, refused) != tt.wantRefused || errors.Is(err, providers.ErrUpstreamUnavailable) != tt.wantUnavail {
				t.Fatalf("refused=%v unavailable=%v", errors.Is(err, refused), errors.Is(err, providers.ErrUpstreamUnavailable))
			}
		})
	}
}

func TestRefreshTokenSealing(t *testing.T) {
	ring, err := secretbox.NewKeyring([]secretbox.Key{{ID: "k1", Secret: make([]byte, 32)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := upstream.SealRefreshToken(ring, "corp", "sub-1", "rt-secret-value")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "rt-secret-value") {
		t.Fatalf("connector data holds the token in clear: %s", data)
	}
	tests := []struct {
		name, connector, subject string
		data                     []byte
		want                     string
		wantErr                  bool
	}{
		{name: "round trip", connector: "corp", subject: "sub-1", data: data, want: "rt-secret-value"},
		{name: "other subject", connector: "corp", subject: "sub-2", data: data, wantErr: true},
		{name: "other connector", connector: "corp2", subject: "sub-1", data: data, wantErr: true},
		{name: "no data", connector: "corp", subject: "sub-1", data: nil, want: ""},
		{name: "no token", connector: "corp", subject: "sub-1", data: []byte(`{}`), want: ""},
		{name: "garbage", connector: "corp", subject: "sub-1", data: []byte(`not json`), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := upstream.OpenRefreshToken(ring, tt.connector, tt.subject, tt.data)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("got %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
	if d, err := upstream.SealRefreshToken(ring, "corp", "s", ""); d != nil || err != nil {
		t.Fatalf("empty token: %q %v", d, err)
	}
}

func TestClaims(t *testing.T) {
	var doc map[string]any
	d := json.NewDecoder(strings.NewReader(`{"id": 12345678901, "user": {"emails": [{"address": "a@example.com", "verified": "true"}]},
		"groups": "one", "roles": ["r1", 2, "r2"], "f": 1.5}`))
	d.UseNumber()
	if err := d.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path      string
		str       string
		strs      []string
		boolean   bool
		wantFound bool
	}{
		{path: "id", str: "12345678901", wantFound: true},
		{path: "user.emails.0.address", str: "a@example.com", strs: []string{"a@example.com"}, wantFound: true},
		{path: "user.emails.0.verified", str: "true", strs: []string{"true"}, boolean: true, wantFound: true},
		{path: "user.emails.1.address"},
		{path: "user.missing"},
		{path: "groups", str: "one", strs: []string{"one"}, wantFound: true},
		{path: "roles", strs: []string{"r1", "r2"}, wantFound: true},
		{path: "f", str: "1.5", wantFound: true},
		{path: ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			v, found := upstream.Lookup(doc, tt.path)
			if found != tt.wantFound || upstream.AsString(v) != tt.str || !reflect.DeepEqual(upstream.AsStrings(v), tt.strs) || upstream.AsBool(v) != tt.boolean {
				t.Fatalf("Lookup(%q) = %#v %v: string %q strings %q bool %v", tt.path, v, found, upstream.AsString(v), upstream.AsStrings(v), upstream.AsBool(v))
			}
		})
	}
}

func TestCheckURL(t *testing.T) {
	tests := map[string]string{
		"https://idp.example.com/":          "",
		"http://127.0.0.1:8080/x":           "",
		"http://localhost/x":                "",
		"http://[::1]:9/":                   "",
		"http://idp.example.com/":           "must use https (http only for loopback hosts)",
		"":                                  "required",
		"/relative":                         "must be an absolute https URL",
		"ftp://idp.example.com/":            "must be an absolute https URL",
		"https://u:p@idp.example.com/":      "must not have user info or a fragment",
		"https://idp.example.com/#fragment": "must not have user info or a fragment",
	}
	for in, want := range tests {
		if got := upstream.CheckURL(in); got != want {
			t.Errorf("CheckURL(%q) = %q, want %q", in, got, want)
		}
	}
}
