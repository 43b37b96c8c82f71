package oauth2

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// Authorization request values (RFC 6749, OAuth 2.0 Form Post Response
// Mode, OpenID Connect Core 1.0 §3.1.2.1).
const (
	ResponseTypeCode = "code"

	ResponseModeQuery    = "query"
	ResponseModeFormPost = "form_post"

	PromptNone          = "none"
	PromptLogin         = "login"
	PromptConsent       = "consent"
	PromptSelectAccount = "select_account"
)

// AuthorizeRequest is a syntactically valid authorization request. Values
// the client did not send are zero: an empty ResponseMode means query, a
// nil MaxAge means none was asked for.
type AuthorizeRequest struct {
	ClientID            string
	RedirectURI         string
	ResponseType        string
	ResponseMode        string // "", query or form_post
	Scopes              []string
	State               string
	Nonce               string
	CodeChallenge       string
	CodeChallengeMethod string
	Prompt              []string
	MaxAge              *int
	LoginHint           string
	IDTokenHint         string
	UILocales           []string
	ACRValues           []string
	Claims              json.RawMessage // a compacted JSON object, or nil
	ConnectorID         string          // connector_id, the connector hint
	Request             string
	RequestURI          string
}

// ParseAuthorizeRequest reads an authorization request from single-valued
// parameters (see SingleValues) and checks its syntax only: client_id and
// response_type present; response_type code (else
// unsupported_response_type); response_mode query or form_post (fragment
// and others are invalid_request, as only the code flow exists); scope
// (invalid_scope); code_challenge and code_challenge_method when either is
// sent (S256 only); prompt from none, login, consent, select_account, and
// none alone; max_age a non-negative decimal integer; acr_values tokens as
// for scope; claims a JSON object whose userinfo and id_token members, when
// present, are objects or null. request, request_uri and registration are
// answered request_not_supported, request_uri_not_supported and
// registration_not_supported. Malformed ui_locales tags are dropped (OpenID
// Connect Core says unsupported locales are not an error). Unknown
// parameters are ignored.
//
// The first error found is returned together with the request filled as
// far as possible: every field that was valid is set, so that once the
// broker has checked the client and redirect_uri it can send the error back
// with State and ResponseMode. Client-dependent checks (redirect_uri match
// and presence, PKCE requirement, registered scope, openid, connector) are
// the broker's job.
func ParseAuthorizeRequest(values map[string]string) (AuthorizeRequest, *Error) {
	req := AuthorizeRequest{
		ClientID:            values["client_id"],
		RedirectURI:         values["redirect_uri"],
		ResponseType:        values["response_type"],
		State:               values["state"],
		Nonce:               values["nonce"],
		CodeChallenge:       values["code_challenge"],
		CodeChallengeMethod: values["code_challenge_method"],
		LoginHint:           values["login_hint"],
		IDTokenHint:         values["id_token_hint"],
		ConnectorID:         values["connector_id"],
		Request:             values["request"],
		RequestURI:          values["request_uri"],
		UILocales:           parseLocales(values["ui_locales"]),
	}
	var first *Error
	fail := func(e *Error) {
		if first == nil {
			first = e
		}
	}

	if req.ClientID == "" {
		fail(ErrInvalidRequest("client_id is required", nil))
	}
	if req.Request != "" {
		fail(ErrRequestNotSupported("the request parameter is not supported", nil))
	}
	if req.RequestURI != "" {
		fail(ErrRequestURINotSupported("the request_uri parameter is not supported", nil))
	}
	if values["registration"] != "" {
		fail(ErrRegistrationNotSupported("the registration parameter is not supported", nil))
	}

	switch req.ResponseType {
	case ResponseTypeCode:
	case "":
		fail(ErrInvalidRequest("response_type is required", nil))
	default:
		fail(ErrUnsupportedResponseType("only response_type code is supported", nil))
	}

	switch rm := values["response_mode"]; rm {
	case "", ResponseModeQuery, ResponseModeFormPost:
		req.ResponseMode = rm
	case "fragment":
		fail(ErrInvalidRequest("response_mode fragment is not supported: only the code flow is", nil))
	default:
		fail(ErrInvalidRequest("response_mode must be query or form_post", nil))
	}

	if scopes, err := ParseScope(values["scope"]); err != nil {
		e, _ := As(err)
		fail(e)
	} else {
		req.Scopes = scopes
	}

	if req.CodeChallenge != "" || req.CodeChallengeMethod != "" {
		if err := ValidateChallenge(req.CodeChallenge, req.CodeChallengeMethod); err != nil {
			e, _ := As(err)
			fail(e)
		}
	}

	if prompt, e := parsePrompt(values["prompt"]); e != nil {
		fail(e)
	} else {
		req.Prompt = prompt
	}

	if s, ok := values["max_age"]; ok && s != "" {
		if n, ok := parseNonNegative(s); ok {
			req.MaxAge = &n
		} else {
			fail(ErrInvalidRequest("max_age must be a non-negative integer", nil))
		}
	}

	if acr, e := parseACRValues(values["acr_values"]); e != nil {
		fail(e)
	} else {
		req.ACRValues = acr
	}

	if s := values["claims"]; s != "" {
		if claims, e := parseClaims(s); e != nil {
			fail(e)
		} else {
			req.Claims = claims
		}
	}

	return req, first
}

func parsePrompt(s string) ([]string, *Error) {
	values := splitSpaces(s)
	for _, p := range values {
		switch p {
		case PromptNone, PromptLogin, PromptConsent, PromptSelectAccount:
		default:
			return nil, ErrInvalidRequest(fmt.Sprintf("prompt value %s is not supported", quoteForDescription(p)), nil)
		}
	}
	if len(values) > 1 {
		for _, p := range values {
			if p == PromptNone {
				return nil, ErrInvalidRequest("prompt none cannot be combined with other values", nil)
			}
		}
	}
	return values, nil
}

// parseNonNegative parses a decimal integer without sign.
func parseNonNegative(s string) (int, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

func parseACRValues(s string) ([]string, *Error) {
	values := splitSpaces(s)
	for _, v := range values {
		if !validScopeToken(v) {
			return nil, ErrInvalidRequest("acr_values contains a character not allowed", nil)
		}
	}
	return values, nil
}

// parseLocales keeps the well-formed language tags (letters, digits and
// inner hyphens, at most 64 bytes) and drops the rest.
func parseLocales(s string) []string {
	var out []string
	for _, t := range splitSpaces(s) {
		if validLocaleTag(t) {
			out = append(out, t)
		}
	}
	return out
}

func validLocaleTag(t string) bool {
	if t == "" || len(t) > 64 || t[0] == '-' || t[len(t)-1] == '-' {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// parseClaims checks the OpenID Connect Core §5.5 claims parameter: a JSON
// object whose userinfo and id_token members, when present, are objects or
// null. It returns the object compacted.
func parseClaims(s string) (json.RawMessage, *Error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &members); err != nil || members == nil {
		return nil, ErrInvalidRequest("claims must be a JSON object", err)
	}
	for _, name := range []string{"userinfo", "id_token"} {
		m, ok := members[name]
		if !ok || bytes.Equal(m, []byte("null")) {
			continue
		}
		var inner map[string]json.RawMessage
		if err := json.Unmarshal(m, &inner); err != nil {
			return nil, ErrInvalidRequest(fmt.Sprintf("claims member %s must be a JSON object", name), err)
		}
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(s)); err != nil {
		return nil, ErrInvalidRequest("claims must be a JSON object", err)
	}
	return json.RawMessage(buf.Bytes()), nil
}
