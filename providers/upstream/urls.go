package upstream

import (
	"net"
	"net/url"
	"strings"
)

// CheckURL returns why s is not an acceptable upstream endpoint URL, or
// "": absolute, https (http only for loopback hosts, for development and
// tests), no user info or fragment.
func CheckURL(s string) string {
	if s == "" {
		return "required"
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "must be an absolute https URL"
	}
	if u.User != nil || u.Fragment != "" {
		return "must not have user info or a fragment"
	}
	if u.Scheme == "http" && !IsLoopbackHost(u.Hostname()) {
		return "must use https (http only for loopback hosts)"
	}
	return ""
}

// IsLoopbackHost reports whether host is localhost or a loopback address.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
