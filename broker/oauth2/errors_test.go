package oauth2

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"testing"
)

func TestConstructors(t *testing.T) {
	cause := errors.New("db down")
	tests := []struct {
		name   string
		make   func(string, error) *Error
		code   string
		status int
	}{
		{"invalid_request", ErrInvalidRequest, "invalid_request", 400},
		{"invalid_client", ErrInvalidClient, "invalid_client", 401},
		{"invalid_grant", ErrInvalidGrant, "invalid_grant", 400},
		{"unauthorized_client", ErrUnauthorizedClient, "unauthorized_client", 400},
		{"unsupported_grant_type", ErrUnsupportedGrantType, "unsupported_grant_type", 400},
		{"invalid_scope", ErrInvalidScope, "invalid_scope", 400},
		{"access_denied", ErrAccessDenied, "access_denied", 400},
		{"unsupported_response_type", ErrUnsupportedResponseType, "unsupported_response_type", 400},
		{"server_error", ErrServerError, "server_error", 500},
		{"temporarily_unavailable", ErrTemporarilyUnavailable, "temporarily_unavailable", 503},
		{"login_required", ErrLoginRequired, "login_required", 400},
		{"consent_required", ErrConsentRequired, "consent_required", 400},
		{"interaction_required", ErrInteractionRequired, "interaction_required", 400},
		{"account_selection_required", ErrAccountSelectionRequired, "account_selection_required", 400},
		{"invalid_request_uri", ErrInvalidRequestURI, "invalid_request_uri", 400},
		{"invalid_request_object", ErrInvalidRequestObject, "invalid_request_object", 400},
		{"request_not_supported", ErrRequestNotSupported, "request_not_supported", 400},
		{"request_uri_not_supported", ErrRequestURINotSupported, "request_uri_not_supported", 400},
		{"registration_not_supported", ErrRegistrationNotSupported, "registration_not_supported", 400},
		{"unmet_authentication_requirements", ErrUnmetAuthenticationRequirements, "unmet_authentication_requirements", 400},
		{"invalid_token", ErrInvalidToken, "invalid_token", 401},
		{"insufficient_scope", ErrInsufficientScope, "insufficient_scope", 403},
		{"invalid_redirect_uri", ErrInvalidRedirectURI, "invalid_redirect_uri", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.make("some description", cause)
			want := &Error{Code: tt.code, Description: "some description", Status: tt.status, Cause: cause}
			if !reflect.DeepEqual(e, want) {
				t.Fatalf("got %+v, want %+v", e, want)
			}
			if !errors.Is(e, cause) {
				t.Fatal("errors.Is(e, cause) = false")
			}
			if got, wantS := e.Error(), tt.code+": some description: db down"; got != wantS {
				t.Fatalf("Error() = %q, want %q", got, wantS)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{"code only", &Error{Code: "invalid_grant"}, "invalid_grant"},
		{"code and description", &Error{Code: "invalid_grant", Description: "code expired"}, "invalid_grant: code expired"},
		{"code and cause", &Error{Code: "server_error", Cause: errors.New("boom")}, "server_error: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Fatalf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAs(t *testing.T) {
	inner := ErrInvalidGrant("code expired", nil)
	var nilErr *Error
	tests := []struct {
		name string
		err  error
		want *Error
	}{
		{"direct", inner, inner},
		{"wrapped", fmt.Errorf("redeem code: %w", inner), inner},
		{"other", errors.New("plain"), nil},
		{"nil", nil, nil},
		{"typed nil", nilErr, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := As(tt.err)
			if got != tt.want || ok != (tt.want != nil) {
				t.Fatalf("As = %v, %v; want %v, %v", got, ok, tt.want, tt.want != nil)
			}
		})
	}
}

func TestErrorJSON(t *testing.T) {
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{"code only", &Error{Code: "invalid_grant"}, `{"error":"invalid_grant"}`},
		{"description", ErrInvalidGrant("code expired", nil), `{"error":"invalid_grant","error_description":"code expired"}`},
		{"cause never sent", ErrServerError("internal error", errors.New("password=hunter2")), `{"error":"server_error","error_description":"internal error"}`},
		{"uri", &Error{Code: "invalid_request", URI: "https://docs.example/errors#pkce"}, `{"error":"invalid_request","error_uri":"https://docs.example/errors#pkce"}`},
		{"uri with disallowed character dropped", &Error{Code: "invalid_request", URI: "https://x/\"a\""}, `{"error":"invalid_request"}`},
		{"quote and backslash", ErrInvalidRequest(`bad "x" \ y`, nil), `{"error":"invalid_request","error_description":"bad 'x' / y"}`},
		{"controls and non-ASCII", ErrInvalidRequest("a\nb\tc\x00d\x7fé\xff<&>", nil), `{"error":"invalid_request","error_description":"a b c?d???<&>"}`},
		{"empty code", &Error{Description: "x"}, `{"error":"server_error","error_description":"x"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(tt.err.JSON()); got != tt.want {
				t.Fatalf("JSON() = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestErrorParams(t *testing.T) {
	tests := []struct {
		name       string
		err        *Error
		state, iss string
		want       url.Values
	}{
		{
			name: "all", err: ErrAccessDenied("user said \"no\"", nil), state: "xyz", iss: "https://id.example",
			want: url.Values{"error": {"access_denied"}, "error_description": {"user said 'no'"}, "state": {"xyz"}, "iss": {"https://id.example"}},
		},
		{
			name: "no description no state", err: &Error{Code: "login_required", Status: http.StatusBadRequest}, iss: "https://id.example",
			want: url.Values{"error": {"login_required"}, "iss": {"https://id.example"}},
		},
		{
			name: "state echoed exactly", err: ErrConsentRequired("", nil), state: "a \"b\" é",
			want: url.Values{"error": {"consent_required"}, "state": {"a \"b\" é"}},
		},
		{
			name: "uri", err: &Error{Code: "invalid_scope", URI: "https://docs.example/scope"},
			want: url.Values{"error": {"invalid_scope"}, "error_uri": {"https://docs.example/scope"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Params(tt.state, tt.iss); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Params = %v, want %v", got, tt.want)
			}
		})
	}
}
