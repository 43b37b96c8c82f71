package providers

import (
	"errors"
	"fmt"
)

// Sentinels for upstream connectors, matched with errors.Is.
var (
	// ErrUpstreamUnavailable: the upstream could not be reached or did not
	// answer in time (down, hanging, 5xx, circuit breaker open, a refused
	// address or redirect). The concrete error is an *UnavailableError
	// naming the connector, so the broker can show a page naming the
	// provider while the other connectors keep working.
	ErrUpstreamUnavailable = errors.New("upstream identity provider unavailable")
	// ErrUpstreamUserGone: the upstream refused to refresh the user's
	// tokens (OAuth 2.0 invalid_grant: the user was removed or disabled,
	// or revoked the grant). The downstream refresh must fail too.
	ErrUpstreamUserGone = errors.New("upstream no longer vouches for the user")
	// ErrInvalidCallback: the upstream's answer failed a check (state,
	// issuer, nonce, ID token signature or claims, a code the upstream
	// refuses because it was used or expired). The user starts over.
	ErrInvalidCallback = errors.New("invalid upstream callback")
)

// UnavailableError is ErrUpstreamUnavailable with the connector it is about.
type UnavailableError struct {
	// ConnectorID is the connector's id; Connector is its display name,
	// the one to show to the user.
	ConnectorID string
	Connector   string
	// Err is the cause, for the log.
	Err error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("%s is unavailable: %v", e.Connector, e.Err)
}

// Unwrap returns the cause.
func (e *UnavailableError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUpstreamUnavailable) true.
func (e *UnavailableError) Is(target error) bool { return target == ErrUpstreamUnavailable }

// UpstreamError is an error response from the upstream's authorization
// endpoint (RFC 6749 §4.1.2.1), e.g. access_denied when the user
// cancelled. Code and Description come from the upstream: show them
// escaped, never trust them.
type UpstreamError struct {
	Code        string
	Description string
}

func (e *UpstreamError) Error() string {
	if e.Description == "" {
		return "upstream answered " + e.Code
	}
	return fmt.Sprintf("upstream answered %s: %s", e.Code, e.Description)
}

// DeniedError is returned when a connector's allow/deny rules refuse the
// user. Reason is written by the admin for the user to read.
type DeniedError struct {
	Reason string
}

func (e *DeniedError) Error() string { return "access denied: " + e.Reason }
