package oauth2

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Error codes from RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1, OpenID
// Connect Core 1.0 §3.1.2.6, RFC 7591 §3.2.2 and RFC 9470 §3.
const (
	CodeInvalidRequest                  = "invalid_request"
	CodeInvalidClient                   = "invalid_client"
	CodeInvalidGrant                    = "invalid_grant"
	CodeUnauthorizedClient              = "unauthorized_client"
	CodeUnsupportedGrantType            = "unsupported_grant_type"
	CodeInvalidScope                    = "invalid_scope"
	CodeAccessDenied                    = "access_denied"
	CodeUnsupportedResponseType         = "unsupported_response_type"
	CodeServerError                     = "server_error"
	CodeTemporarilyUnavailable          = "temporarily_unavailable"
	CodeLoginRequired                   = "login_required"
	CodeConsentRequired                 = "consent_required"
	CodeInteractionRequired             = "interaction_required"
	CodeAccountSelectionRequired        = "account_selection_required"
	CodeInvalidRequestURI               = "invalid_request_uri"
	CodeInvalidRequestObject            = "invalid_request_object"
	CodeRequestNotSupported             = "request_not_supported"
	CodeRequestURINotSupported          = "request_uri_not_supported"
	CodeRegistrationNotSupported        = "registration_not_supported"
	CodeUnmetAuthenticationRequirements = "unmet_authentication_requirements"
	CodeInvalidToken                    = "invalid_token"
	CodeInsufficientScope               = "insufficient_scope"
	CodeInvalidRedirectURI              = "invalid_redirect_uri"
)

// Error is a protocol error. Code, Description and URI go to the client;
// Status is the HTTP status used when the error is answered as JSON (token,
// userinfo, revocation endpoints); Cause is for the log only and is never
// sent. Make one with a constructor (ErrInvalidRequest, ...).
type Error struct {
	Code        string
	Description string
	URI         string
	Status      int
	Cause       error
	// RetryAfter, when > 0, is the Retry-After header value in seconds
	// (429 and 503 answers).
	RetryAfter int
}

// Error returns code, description and cause, for logs.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Code)
	if e.Description != "" {
		b.WriteString(": ")
		b.WriteString(e.Description)
	}
	if e.Cause != nil {
		b.WriteString(": ")
		b.WriteString(e.Cause.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

// As finds the first *Error in err's chain.
func As(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) && e != nil {
		return e, true
	}
	return nil, false
}

// wireError is the JSON body of RFC 6749 §5.2.
type wireError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
	URI         string `json:"error_uri,omitempty"`
}

// JSON renders the RFC 6749 §5.2 error body: error, error_description and
// error_uri, each restricted to the characters the RFC allows (see
// sanitize). The cause is not included. An empty Code renders as
// server_error.
func (e *Error) JSON() []byte {
	code, desc, uri := e.wire()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// Encoding a struct of strings cannot fail.
	_ = enc.Encode(wireError{Error: code, Description: desc, URI: uri})
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// Params renders the error for a redirect to the client (RFC 6749
// §4.1.2.1, RFC 9207): error, error_description and error_uri when set,
// state when non-empty (echoed exactly), and iss when non-empty.
func (e *Error) Params(state, iss string) url.Values {
	code, desc, uri := e.wire()
	v := url.Values{"error": {code}}
	if desc != "" {
		v.Set("error_description", desc)
	}
	if uri != "" {
		v.Set("error_uri", uri)
	}
	if state != "" {
		v.Set("state", state)
	}
	if iss != "" {
		v.Set("iss", iss)
	}
	return v
}

// wire returns the three values safe to send.
func (e *Error) wire() (code, desc, uri string) {
	code = sanitize(e.Code)
	if code == "" {
		code = CodeServerError
	}
	desc = sanitize(e.Description)
	// error_uri is a URI-reference in the same character set; one that
	// needs changing is dropped rather than sent altered.
	if sanitize(e.URI) == e.URI {
		uri = e.URI
	}
	return code, desc, uri
}

// sanitize maps s into the RFC 6749 character set for error and
// error_description: %x20-21 / %x23-5B / %x5D-7E. A double quote becomes a
// single quote, a backslash a slash, tab/CR/LF a space, and anything else
// outside the set (other controls, DEL, non-ASCII, invalid UTF-8) a '?'.
func sanitize(s string) string {
	if allowedDescription(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == '"':
			b.WriteByte('\'')
		case r == '\\':
			b.WriteByte('/')
		case r == '\t' || r == '\n' || r == '\r':
			b.WriteByte(' ')
		case r >= 0x20 && r <= 0x7e:
			b.WriteRune(r)
		default:
			b.WriteByte('?')
		}
	}
	return b.String()
}

func allowedDescription(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func newError(code string, status int, desc string, cause error) *Error {
	return &Error{Code: code, Description: desc, Status: status, Cause: cause}
}

// ErrInvalidRequest: a parameter is missing, invalid, repeated or
// unsupported, or the request is otherwise malformed. 400.
func ErrInvalidRequest(desc string, cause error) *Error {
	return newError(CodeInvalidRequest, http.StatusBadRequest, desc, cause)
}

// ErrInvalidClient: client authentication failed. 401; the caller adds
// WWW-Authenticate when the client used the Authorization header
// (RFC 6749 §5.2).
func ErrInvalidClient(desc string, cause error) *Error {
	return newError(CodeInvalidClient, http.StatusUnauthorized, desc, cause)
}

// ErrInvalidGrant: the code, refresh token or PKCE verifier is invalid,
// expired, revoked, or was issued to another client or redirect URI. 400.
func ErrInvalidGrant(desc string, cause error) *Error {
	return newError(CodeInvalidGrant, http.StatusBadRequest, desc, cause)
}

// ErrUnauthorizedClient: the client may not use this grant or response
// type. 400.
func ErrUnauthorizedClient(desc string, cause error) *Error {
	return newError(CodeUnauthorizedClient, http.StatusBadRequest, desc, cause)
}

// ErrUnsupportedGrantType: the server does not know the grant type. 400.
func ErrUnsupportedGrantType(desc string, cause error) *Error {
	return newError(CodeUnsupportedGrantType, http.StatusBadRequest, desc, cause)
}

// ErrInvalidScope: a scope is malformed, unknown or not allowed. 400.
func ErrInvalidScope(desc string, cause error) *Error {
	return newError(CodeInvalidScope, http.StatusBadRequest, desc, cause)
}

// ErrAccessDenied: the user or the server refused the request. 400 when
// answered as JSON; normally redirected.
func ErrAccessDenied(desc string, cause error) *Error {
	return newError(CodeAccessDenied, http.StatusBadRequest, desc, cause)
}

// ErrUnsupportedResponseType: the response_type is not supported. 400.
func ErrUnsupportedResponseType(desc string, cause error) *Error {
	return newError(CodeUnsupportedResponseType, http.StatusBadRequest, desc, cause)
}

// ErrServerError: an unexpected condition; the cause is logged. 500.
func ErrServerError(desc string, cause error) *Error {
	return newError(CodeServerError, http.StatusInternalServerError, desc, cause)
}

// ErrTemporarilyUnavailable: overloaded or in maintenance. 503; the caller
// may add Retry-After.
func ErrTemporarilyUnavailable(desc string, cause error) *Error {
	return newError(CodeTemporarilyUnavailable, http.StatusServiceUnavailable, desc, cause)
}

// ErrLoginRequired: prompt=none and the user is not signed in. 400.
func ErrLoginRequired(desc string, cause error) *Error {
	return newError(CodeLoginRequired, http.StatusBadRequest, desc, cause)
}

// ErrConsentRequired: prompt=none and consent is needed. 400.
func ErrConsentRequired(desc string, cause error) *Error {
	return newError(CodeConsentRequired, http.StatusBadRequest, desc, cause)
}

// ErrInteractionRequired: prompt=none and some other interaction (a second
// factor, enrollment) is needed. 400.
func ErrInteractionRequired(desc string, cause error) *Error {
	return newError(CodeInteractionRequired, http.StatusBadRequest, desc, cause)
}

// ErrAccountSelectionRequired: prompt=none and the user must pick an
// account. 400.
func ErrAccountSelectionRequired(desc string, cause error) *Error {
	return newError(CodeAccountSelectionRequired, http.StatusBadRequest, desc, cause)
}

// ErrInvalidRequestURI: the request_uri is invalid. 400.
func ErrInvalidRequestURI(desc string, cause error) *Error {
	return newError(CodeInvalidRequestURI, http.StatusBadRequest, desc, cause)
}

// ErrInvalidRequestObject: the request object is invalid. 400.
func ErrInvalidRequestObject(desc string, cause error) *Error {
	return newError(CodeInvalidRequestObject, http.StatusBadRequest, desc, cause)
}

// ErrRequestNotSupported: the request parameter is not supported. 400.
func ErrRequestNotSupported(desc string, cause error) *Error {
	return newError(CodeRequestNotSupported, http.StatusBadRequest, desc, cause)
}

// ErrRequestURINotSupported: the request_uri parameter is not supported.
// 400.
func ErrRequestURINotSupported(desc string, cause error) *Error {
	return newError(CodeRequestURINotSupported, http.StatusBadRequest, desc, cause)
}

// ErrRegistrationNotSupported: the registration parameter is not
// supported. 400.
func ErrRegistrationNotSupported(desc string, cause error) *Error {
	return newError(CodeRegistrationNotSupported, http.StatusBadRequest, desc, cause)
}

// ErrUnmetAuthenticationRequirements: the requested acr_values cannot be
// met (OpenID Connect Unmet Authentication Requirements 1.0). 400.
func ErrUnmetAuthenticationRequirements(desc string, cause error) *Error {
	return newError(CodeUnmetAuthenticationRequirements, http.StatusBadRequest, desc, cause)
}

// ErrInvalidToken: the bearer token is missing, expired or invalid
// (RFC 6750 §3.1). 401.
func ErrInvalidToken(desc string, cause error) *Error {
	return newError(CodeInvalidToken, http.StatusUnauthorized, desc, cause)
}

// ErrInsufficientScope: the bearer token lacks a needed scope (RFC 6750
// §3.1). 403.
func ErrInsufficientScope(desc string, cause error) *Error {
	return newError(CodeInsufficientScope, http.StatusForbidden, desc, cause)
}

// ErrInvalidRedirectURI: a redirect URI offered for registration is not
// acceptable (RFC 7591 §3.2.2). 400.
func ErrInvalidRedirectURI(desc string, cause error) *Error {
	return newError(CodeInvalidRedirectURI, http.StatusBadRequest, desc, cause)
}
