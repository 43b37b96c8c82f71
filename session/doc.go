// Package session owns the browser SSO session record: the cookie that
// names it, its idle and absolute timeouts, and the factors used with their
// times (AMR). It keeps state only; the broker decides logout and step-up.
package session
