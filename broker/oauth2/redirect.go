package oauth2

import (
	"net/url"
	"strconv"
	"strings"
)

// The loopback hosts of RFC 8252 §7.3, as they appear in a URI's
// authority. localhost is "NOT RECOMMENDED" there but common in practice;
// it is accepted, and matches only a URI registered with localhost.
const (
	loopbackIPv4      = "127.0.0.1"
	loopbackIPv6      = "[::1]"
	loopbackLocalhost = "localhost"
)

// MatchRedirectURI reports whether requested is one of the registered
// redirect URIs. The comparison is an exact string match: no case folding,
// no trailing-slash leniency, no extra or reordered query, no default port
// (RFC 9700 §2.1, OAuth 2.1 §2.3.1). The one exception is RFC 8252 §7.3,
// and only when native is true: a registered URI of the form
// http://127.0.0.1[:port]/..., http://[::1][:port]/... or
// http://localhost[:port]/... matches a requested URI with the same host
// (as written), any port (or none), and the same path, query and rest,
// byte for byte.
func MatchRedirectURI(registered []string, requested string, native bool) bool {
	for _, r := range registered {
		if r == requested {
			return true
		}
	}
	if !native {
		return false
	}
	reqHost, reqRest, ok := splitLoopback(requested)
	if !ok {
		return false
	}
	for _, r := range registered {
		host, rest, ok := splitLoopback(r)
		if ok && host == reqHost && rest == reqRest {
			return true
		}
	}
	return false
}

// splitLoopback splits an http loopback URI into its host as written and
// everything after the authority, dropping the port. ok is false when raw
// is not http:// on a loopback host with an optional valid port.
func splitLoopback(raw string) (host, rest string, ok bool) {
	const prefix = "http://"
	if !strings.HasPrefix(raw, prefix) {
		return "", "", false
	}
	s := raw[len(prefix):]
	authority := s
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		authority, rest = s[:i], s[i:]
	}
	for _, h := range []string{loopbackIPv4, loopbackIPv6, loopbackLocalhost} {
		if !strings.HasPrefix(authority, h) {
			continue
		}
		port := authority[len(h):]
		if port == "" {
			return h, rest, true
		}
		if port[0] == ':' && validPort(port[1:]) {
			return h, rest, true
		}
		return "", "", false
	}
	return "", "", false
}

// validPort: a decimal 1..65535 without sign or leading zeros.
func validPort(p string) bool {
	if p == "" || len(p) > 5 || p[0] == '0' {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

func isLoopbackHost(hostname string) bool {
	// url.URL.Hostname strips the brackets of an IPv6 literal.
	return hostname == loopbackIPv4 || hostname == "::1" || hostname == loopbackLocalhost
}

// ValidateRedirectURI checks a redirect URI offered for registration (config
// file, admin API, CLI). The URI must be
//
//   - absolute, written in printable ASCII without spaces or backslashes
//     (register IDN hosts in their punycode form), with a lowercase scheme;
//   - without a fragment (RFC 6749 §3.1.2), without userinfo, without a
//     "." or ".." path segment, also when percent-encoded, and with a
//     well-formed query;
//   - https with a host; or http on a loopback host written as 127.0.0.1,
//     [::1] or localhost (for web clients in development and for native
//     clients, RFC 8252 §7.3); or, for native clients only, a private-use
//     scheme containing a dot such as com.example.app:/cb (RFC 8252 §7.1).
//
// Errors are invalid_redirect_uri (RFC 7591).
func ValidateRedirectURI(raw string, native bool) error {
	if raw == "" {
		return ErrInvalidRedirectURI("redirect URI is empty", nil)
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= 0x20 || c >= 0x7f || c == '\\' {
			return ErrInvalidRedirectURI("redirect URI must be printable ASCII without spaces or backslashes", nil)
		}
	}
	if strings.Contains(raw, "#") {
		return ErrInvalidRedirectURI("redirect URI must not contain a fragment", nil)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ErrInvalidRedirectURI("redirect URI is not a valid URI", err)
	}
	if u.Scheme == "" {
		return ErrInvalidRedirectURI("redirect URI must be absolute", nil)
	}
	if !strings.HasPrefix(raw, u.Scheme+":") {
		return ErrInvalidRedirectURI("redirect URI scheme must be lowercase", nil)
	}
	if u.User != nil {
		return ErrInvalidRedirectURI("redirect URI must not contain userinfo", nil)
	}
	path := u.Path
	if u.Opaque != "" {
		if path, err = url.PathUnescape(u.Opaque); err != nil {
			return ErrInvalidRedirectURI("redirect URI is not a valid URI", err)
		}
	}
	for _, seg := range strings.Split(path, "/") {
		if seg == "." || seg == ".." {
			return ErrInvalidRedirectURI("redirect URI must not contain . or .. path segments", nil)
		}
	}
	if _, err := url.ParseQuery(u.RawQuery); err != nil {
		return ErrInvalidRedirectURI("redirect URI query is malformed", err)
	}
	if u.Host != "" && (strings.HasSuffix(u.Host, ":") || u.Port() != "" && !validPort(u.Port())) {
		return ErrInvalidRedirectURI("redirect URI port is invalid", nil)
	}

	switch u.Scheme {
	case "https":
		if u.Hostname() == "" {
			return ErrInvalidRedirectURI("https redirect URI must have a host", nil)
		}
		return nil
	case "http":
		if !isLoopbackHost(u.Hostname()) {
			return ErrInvalidRedirectURI("http redirect URI is allowed only on 127.0.0.1, [::1] or localhost", nil)
		}
		return nil
	}
	if !native {
		return ErrInvalidRedirectURI("redirect URI of a web client must use https (or http on loopback)", nil)
	}
	if !strings.Contains(u.Scheme, ".") {
		return ErrInvalidRedirectURI("private-use URI scheme must contain a dot, like com.example.app", nil)
	}
	return nil
}
