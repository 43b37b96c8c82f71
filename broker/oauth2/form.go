package oauth2

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"unicode/utf8"
)

// DefaultMaxFormBytes is the token endpoint body limit of CONTRACTS.md,
// used by ParseTokenForm when maxBytes is not positive.
const DefaultMaxFormBytes int64 = 1 << 20

const formContentType = "application/x-www-form-urlencoded"

// ParseTokenForm reads the parameters of a token endpoint request from its
// body (RFC 6749 §3.2; the query string is ignored, and r.Form is left
// untouched). It answers, as an *Error with code invalid_request:
//
//   - Status 405 when the method is not POST (the caller sets Allow: POST);
//   - Status 413 when the body is longer than maxBytes (DefaultMaxFormBytes
//     when maxBytes <= 0);
//   - Status 400 when the Content-Type is not
//     application/x-www-form-urlencoded (parameters such as charset are
//     allowed), the body cannot be read, is not valid form encoding or not
//     UTF-8, or a parameter appears more than once.
//
// Parameters with an empty value are dropped, as RFC 6749 §3.2 says they
// are treated as omitted; each remaining key has exactly one value.
func ParseTokenForm(r *http.Request, maxBytes int64) (url.Values, *Error) {
	v, e := ParseForm(r, maxBytes)
	if e != nil {
		return nil, e
	}
	single, e := SingleValues(v)
	if e != nil {
		return nil, e
	}
	out := make(url.Values, len(single))
	for k, s := range single {
		out[k] = []string{s}
	}
	return out, nil
}

// ParseForm is ParseTokenForm without the single-value rule: it returns
// every value of every parameter, for a caller that decides itself what a
// repeated parameter means (POST /authorize answers a repeated state to the
// client, a repeated client_id with a page). Errors are those of
// ParseTokenForm for the method, Content-Type, size and encoding.
func ParseForm(r *http.Request, maxBytes int64) (url.Values, *Error) {
	if r.Method != http.MethodPost {
		e := ErrInvalidRequest("the token endpoint accepts only POST", nil)
		e.Status = http.StatusMethodNotAllowed
		return nil, e
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != formContentType {
		return nil, ErrInvalidRequest("Content-Type must be application/x-www-form-urlencoded", err)
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxFormBytes
	}
	tooLarge := func() *Error {
		e := ErrInvalidRequest(fmt.Sprintf("request body is larger than %d bytes", maxBytes), nil)
		e.Status = http.StatusRequestEntityTooLarge
		return e
	}
	if r.ContentLength > maxBytes {
		return nil, tooLarge()
	}
	var body []byte
	if r.Body != nil {
		body, err = io.ReadAll(io.LimitReader(r.Body, maxBytes+1))
		// A limit set further out (http.MaxBytesReader in the server's
		// middleware) is the same refusal.
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, tooLarge()
		}
		if err != nil {
			return nil, ErrInvalidRequest("could not read the request body", err)
		}
	}
	if int64(len(body)) > maxBytes {
		return nil, tooLarge()
	}
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, ErrInvalidRequest("request body is not valid form encoding", err)
	}
	return v, nil
}

// SingleValues turns parameters into one value per name, for /authorize
// (query or form) and anything else. A parameter that appears more than
// once (RFC 6749 §3.1, §3.2), even with an empty value, is invalid_request
// naming it (the first such name in sorted order); a name or value that is
// not UTF-8 is invalid_request. Parameters with an empty value are
// dropped: they are treated as omitted.
func SingleValues(v url.Values) (map[string]string, *Error) {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make(map[string]string, len(v))
	for _, k := range keys {
		vs := v[k]
		if len(vs) > 1 {
			return nil, ErrInvalidRequest(fmt.Sprintf("parameter %s is repeated", quoteForDescription(k)), nil)
		}
		if !utf8.ValidString(k) {
			return nil, ErrInvalidRequest("a parameter name is not valid UTF-8", nil)
		}
		if len(vs) == 1 && !utf8.ValidString(vs[0]) {
			return nil, ErrInvalidRequest(fmt.Sprintf("parameter %s is not valid UTF-8", quoteForDescription(k)), nil)
		}
		if len(vs) == 1 && vs[0] != "" {
			out[k] = vs[0]
		}
	}
	return out, nil
}
