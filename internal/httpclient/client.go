package httpclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Defaults applied by New to zero Options fields.
const (
	DefaultTimeout      = 10 * time.Second
	DefaultDialTimeout  = 5 * time.Second
	DefaultMaxBodyBytes = 1 << 20
	DefaultMaxRedirects = 5
	DefaultUserAgent    = "Latchkey"
)

// Errors returned (wrapped, also inside a *url.Error) by a client made by New.
var (
	// ErrBodyTooLarge: the response body is longer than Options.MaxBodyBytes.
	ErrBodyTooLarge = errors.New("httpclient: response body too large")
	// ErrTooManyRedirects: more than Options.MaxRedirects redirects.
	ErrTooManyRedirects = errors.New("httpclient: too many redirects")
	// ErrRedirectOtherHost: a redirect to another scheme, host or port.
	ErrRedirectOtherHost = errors.New("httpclient: redirect to another origin")
	// ErrRedirectDowngrade: a redirect from https to http.
	ErrRedirectDowngrade = errors.New("httpclient: redirect from https to http")
)

// Options configures New. The zero value is a usable, strict client.
type Options struct {
	// Timeout bounds the whole request, body read included. Default 10s.
	Timeout time.Duration
	// DialTimeout bounds connecting (all addresses of a name together) and
	// the TLS handshake. Default 5s.
	DialTimeout time.Duration
	// MaxBodyBytes is the longest response body a caller may read; reading
	// past it fails with ErrBodyTooLarge. Default 1 MiB.
	MaxBodyBytes int64
	// MaxRedirects is how many redirects are followed. Default 5 when 0;
	// negative follows none (every redirect is ErrTooManyRedirects).
	MaxRedirects int
	// AllowedNetworks are prefixes the dialer may reach although they are
	// loopback, private or otherwise refused (config outbound.allowedNetworks;
	// tests set 127.0.0.0/8 and ::1/128).
	AllowedNetworks []netip.Prefix
	// UserAgent is sent when a request has none. Default "Latchkey".
	UserAgent string
	// RootCAs verifies servers; nil means the system roots.
	RootCAs *x509.CertPool
	// Logger receives a warning for every refused address or redirect.
	// Nil discards.
	Logger *slog.Logger
	// LookupNetIP resolves host names; network is "ip", "ip4" or "ip6" as
	// for (*net.Resolver).LookupNetIP. Nil uses the system resolver inside
	// net.Dialer (with Happy Eyeballs). Set it to pin names in tests. Either
	// way the resolved address is checked when the socket is dialled.
	LookupNetIP func(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// New returns the hardened client.
//
// It returns a plain *http.Client rather than a wrapper type because the
// libraries Latchkey uses for upstreams (go-oidc, x/oauth2, crewjam/saml)
// take an *http.Client; every guard lives in its Transport and
// CheckRedirect. Callers must not replace those two fields.
func New(o Options) *http.Client {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	dialTimeout := o.DialTimeout
	if dialTimeout <= 0 {
		dialTimeout = DefaultDialTimeout
	}
	maxBody := o.MaxBodyBytes
	if maxBody <= 0 {
		maxBody = DefaultMaxBodyBytes
	}
	maxRedirects := o.MaxRedirects
	switch {
	case maxRedirects == 0:
		maxRedirects = DefaultMaxRedirects
	case maxRedirects < 0:
		maxRedirects = 0
	}
	ua := o.UserAgent
	if ua == "" {
		ua = DefaultUserAgent
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	d := &dialer{
		allowed: normalizePrefixes(o.AllowedNetworks),
		lookup:  o.LookupNetIP,
		timeout: dialTimeout,
		log:     log,
	}
	d.net = &net.Dialer{
		Timeout:        dialTimeout,
		KeepAlive:      30 * time.Second,
		ControlContext: d.control,
	}
	base := &http.Transport{
		Proxy:                  nil, // an environment proxy would dial for us and skip the check
		DialContext:            d.dialContext,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: o.RootCAs},
		TLSHandshakeTimeout:    dialTimeout,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           100,
		IdleConnTimeout:        90 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{
		Transport:     &transport{base: base, maxBody: maxBody, userAgent: ua},
		CheckRedirect: redirectPolicy(maxRedirects, log),
		Timeout:       timeout,
	}
}

// dialer resolves (optionally through lookup) and dials, refusing
// forbidden addresses in the socket's control hook.
type dialer struct {
	net     *net.Dialer
	allowed []netip.Prefix
	lookup  func(ctx context.Context, network, host string) ([]netip.Addr, error)
	timeout time.Duration
	log     *slog.Logger
}

// control runs after the socket is created and before connect(2): the
// address here is the one about to be dialled, after any name resolution.
func (d *dialer) control(ctx context.Context, network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		d.log.WarnContext(ctx, "outbound connection refused", "network", network, "address", address, "reason", "unparseable")
		return fmt.Errorf("%w: cannot parse dialled address %q: %v", ErrForbiddenAddress, address, err)
	}
	if err := checkAddr(ap.Addr(), d.allowed); err != nil {
		var fe *ForbiddenAddressError
		reason := ""
		if errors.As(err, &fe) {
			reason = fe.Reason
		}
		d.log.WarnContext(ctx, "outbound connection refused", "network", network, "address", ap.Addr().String(), "reason", reason)
		return err
	}
	return nil
}

func (d *dialer) dialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if d.lookup == nil {
		return d.net.DialContext(ctx, network, address)
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("httpclient: split %q: %w", address, err)
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return d.net.DialContext(ctx, network, address)
	}
	ipNetwork := "ip"
	switch network {
	case "tcp4":
		ipNetwork = "ip4"
	case "tcp6":
		ipNetwork = "ip6"
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	addrs, err := d.lookup(ctx, ipNetwork, host)
	if err != nil {
		return nil, fmt.Errorf("httpclient: resolve %q: %w", host, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("httpclient: resolve %q: no addresses", host)
	}
	var errs []error
	for _, a := range addrs {
		conn, err := d.net.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("httpclient: dial %q: %w", host, errors.Join(errs...))
}

// redirectPolicy follows at most max redirects, each to the origin of the
// first request.
func redirectPolicy(max int, log *slog.Logger) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		first, prev := via[0].URL, via[len(via)-1].URL
		var err error
		switch {
		case len(via) > max:
			err = fmt.Errorf("%w: stopped after %d", ErrTooManyRedirects, max)
		case strings.EqualFold(prev.Scheme, "https") && !strings.EqualFold(req.URL.Scheme, "https"):
			err = fmt.Errorf("%w: %s to %s", ErrRedirectDowngrade, origin(prev), origin(req.URL))
		case origin(req.URL) != origin(first):
			err = fmt.Errorf("%w: %s to %s", ErrRedirectOtherHost, origin(first), origin(req.URL))
		}
		if err != nil {
			log.WarnContext(req.Context(), "outbound redirect refused",
				"from", origin(prev), "to", origin(req.URL), "hops", len(via), "error", err.Error())
		}
		return err
	}
}

// origin is scheme://host:port with the default port filled in and case
// folded; it never includes a path or query, so it is safe to log.
func origin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		switch scheme {
		case "http":
			port = "80"
		case "https":
			port = "443"
		}
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// transport sets the User-Agent and caps every response body.
type transport struct {
	base      *http.Transport
	maxBody   int64
	userAgent string
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("User-Agent") == "" {
		req = req.Clone(req.Context())
		req.Header.Set("User-Agent", t.userAgent)
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.Body != nil && resp.Body != http.NoBody {
		resp.Body = &limitedBody{rc: resp.Body, left: t.maxBody, max: t.maxBody}
	}
	return resp, nil
}

// CloseIdleConnections lets (*http.Client).CloseIdleConnections reach the
// pool.
func (t *transport) CloseIdleConnections() { t.base.CloseIdleConnections() }

// limitedBody fails with ErrBodyTooLarge once more than max bytes arrive.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
	max  int64
	err  error
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if len(p) == 0 {
		return b.rc.Read(p)
	}
	// Ask for one byte more than allowed, to tell "exactly max" from "more".
	if int64(len(p))-1 > b.left {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	if int64(n) > b.left {
		n = int(b.left)
		b.left = 0
		b.err = fmt.Errorf("%w: more than %s bytes", ErrBodyTooLarge, strconv.FormatInt(b.max, 10))
		return n, b.err
	}
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
