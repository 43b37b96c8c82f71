package oauth2

import (
	"encoding/json"
	"maps"
	"reflect"
	"testing"
)

func intPtr(n int) *int { return &n }

func TestParseAuthorizeRequest(t *testing.T) {
	base := map[string]string{
		"client_id":     "app",
		"redirect_uri":  "https://app.example/cb",
		"response_type": "code",
		"scope":         "openid email",
		"state":         "st",
	}
	baseReq := AuthorizeRequest{
		ClientID:     "app",
		RedirectURI:  "https://app.example/cb",
		ResponseType: "code",
		Scopes:       []string{"openid", "email"},
		State:        "st",
	}
	// with returns base plus changes; an empty value deletes the key.
	with := func(kv ...string) map[string]string {
		m := maps.Clone(base)
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	req := func(change func(*AuthorizeRequest)) AuthorizeRequest {
		r := baseReq
		change(&r)
		return r
	}

	tests := []struct {
		name string
		in   map[string]string
		want AuthorizeRequest
		err  wantErr
	}{
		{"minimal", base, baseReq, wantErr{}},
		{
			name: "everything",
			in: with("response_mode", "form_post", "nonce", "n-1", "code_challenge", rfcChallenge, "code_challenge_method", "S256",
				"prompt", "login consent", "max_age", "300", "login_hint", "a@example.com", "id_token_hint", "eyJ.x.y",
				"ui_locales", "fr-CA en", "acr_values", "urn:latchkey:acr:mfa urn:latchkey:acr:phr",
				"claims", `{ "id_token": {"email": {"essential": true}}, "userinfo": null }`, "connector_id", "google",
				"approval_prompt", "force"),
			want: req(func(r *AuthorizeRequest) {
				r.ResponseMode = "form_post"
				r.Nonce = "n-1"
				r.CodeChallenge = rfcChallenge
				r.CodeChallengeMethod = "S256"
				r.Prompt = []string{"login", "consent"}
				r.MaxAge = intPtr(300)
				r.LoginHint = "a@example.com"
				r.IDTokenHint = "eyJ.x.y"
				r.UILocales = []string{"fr-CA", "en"}
				r.ACRValues = []string{"urn:latchkey:acr:mfa", "urn:latchkey:acr:phr"}
				r.Claims = json.RawMessage(`{"id_token":{"email":{"essential":true}},"userinfo":null}`)
				r.ConnectorID = "google"
			}),
		},
		{"response_mode query", with("response_mode", "query"), req(func(r *AuthorizeRequest) { r.ResponseMode = "query" }), wantErr{}},
		{"no scope", with("scope", ""), req(func(r *AuthorizeRequest) { r.Scopes = nil }), wantErr{}},
		{"no redirect_uri is the broker's call", with("redirect_uri", ""), req(func(r *AuthorizeRequest) { r.RedirectURI = "" }), wantErr{}},
		{"max_age zero", with("max_age", "0"), req(func(r *AuthorizeRequest) { r.MaxAge = intPtr(0) }), wantErr{}},
		{"prompt none alone", with("prompt", "none"), req(func(r *AuthorizeRequest) { r.Prompt = []string{"none"} }), wantErr{}},
		{"prompt duplicates", with("prompt", "login  login"), req(func(r *AuthorizeRequest) { r.Prompt = []string{"login"} }), wantErr{}},
		{"prompt select_account", with("prompt", "select_account"), req(func(r *AuthorizeRequest) { r.Prompt = []string{"select_account"} }), wantErr{}},
		{"malformed ui_locales dropped", with("ui_locales", "de <script> -x en-"), req(func(r *AuthorizeRequest) { r.UILocales = []string{"de"} }), wantErr{}},

		{"missing client_id", with("client_id", ""), req(func(r *AuthorizeRequest) { r.ClientID = "" }),
			wantErr{"invalid_request", "client_id is required", 400}},
		{"missing response_type", with("response_type", ""), req(func(r *AuthorizeRequest) { r.ResponseType = "" }),
			wantErr{"invalid_request", "response_type is required", 400}},
		{"implicit", with("response_type", "token"), req(func(r *AuthorizeRequest) { r.ResponseType = "token" }),
			wantErr{"unsupported_response_type", "only response_type code is supported", 400}},
		{"hybrid", with("response_type", "code id_token"), req(func(r *AuthorizeRequest) { r.ResponseType = "code id_token" }),
			wantErr{"unsupported_response_type", "only response_type code is supported", 400}},
		{"response_mode fragment", with("response_mode", "fragment"), baseReq,
			wantErr{"invalid_request", "response_mode fragment is not supported: only the code flow is", 400}},
		{"response_mode jwt", with("response_mode", "query.jwt"), baseReq,
			wantErr{"invalid_request", "response_mode must be query or form_post", 400}},
		{"bad scope", with("scope", "openid\temail"), req(func(r *AuthorizeRequest) { r.Scopes = nil }),
			wantErr{"invalid_scope", "scope contains a character not allowed by RFC 6749 section 3.3", 400}},
		{"plain PKCE", with("code_challenge", rfcVerifier, "code_challenge_method", "plain"),
			req(func(r *AuthorizeRequest) { r.CodeChallenge = rfcVerifier; r.CodeChallengeMethod = "plain" }),
			wantErr{"invalid_request", "code_challenge_method plain is not supported", 400}},
		{"challenge without method", with("code_challenge", rfcChallenge), req(func(r *AuthorizeRequest) { r.CodeChallenge = rfcChallenge }),
			wantErr{"invalid_request", "code_challenge_method plain is not supported", 400}},
		{"method without challenge", with("code_challenge_method", "S256"), req(func(r *AuthorizeRequest) { r.CodeChallengeMethod = "S256" }),
			wantErr{"invalid_request", "code_challenge is required", 400}},
		{"malformed challenge", with("code_challenge", "abc", "code_challenge_method", "S256"),
			req(func(r *AuthorizeRequest) { r.CodeChallenge = "abc"; r.CodeChallengeMethod = "S256" }),
			wantErr{"invalid_request", "code_challenge must be 43 characters of base64url", 400}},
		{"prompt none with login", with("prompt", "none login"), baseReq,
			wantErr{"invalid_request", "prompt none cannot be combined with other values", 400}},
		{"prompt unknown", with("prompt", "login create"), baseReq,
			wantErr{"invalid_request", "prompt value 'create' is not supported", 400}},
		{"prompt wrong case", with("prompt", "Login"), baseReq,
			wantErr{"invalid_request", "prompt value 'Login' is not supported", 400}},
		{"max_age negative", with("max_age", "-1"), baseReq, wantErr{"invalid_request", "max_age must be a non-negative integer", 400}},
		{"max_age plus sign", with("max_age", "+5"), baseReq, wantErr{"invalid_request", "max_age must be a non-negative integer", 400}},
		{"max_age decimal", with("max_age", "1.5"), baseReq, wantErr{"invalid_request", "max_age must be a non-negative integer", 400}},
		{"max_age overflow", with("max_age", "99999999999999999999"), baseReq, wantErr{"invalid_request", "max_age must be a non-negative integer", 400}},
		{"acr_values bad", with("acr_values", "urn:a \"b\""), baseReq, wantErr{"invalid_request", "acr_values contains a character not allowed", 400}},
		{"claims not JSON", with("claims", "{"), baseReq, wantErr{"invalid_request", "claims must be a JSON object", 400}},
		{"claims array", with("claims", "[]"), baseReq, wantErr{"invalid_request", "claims must be a JSON object", 400}},
		{"claims null", with("claims", "null"), baseReq, wantErr{"invalid_request", "claims must be a JSON object", 400}},
		{"claims trailing data", with("claims", "{} {}"), baseReq, wantErr{"invalid_request", "claims must be a JSON object", 400}},
		{"claims userinfo string", with("claims", `{"userinfo":"email"}`), baseReq, wantErr{"invalid_request", "claims member userinfo must be a JSON object", 400}},
		{"claims id_token array", with("claims", `{"id_token":["email"]}`), baseReq, wantErr{"invalid_request", "claims member id_token must be a JSON object", 400}},
		{"request", with("request", "eyJ.a.b"), req(func(r *AuthorizeRequest) { r.Request = "eyJ.a.b" }),
			wantErr{"request_not_supported", "the request parameter is not supported", 400}},
		{"request_uri", with("request_uri", "urn:ietf:params:oauth:request_uri:x"), req(func(r *AuthorizeRequest) { r.RequestURI = "urn:ietf:params:oauth:request_uri:x" }),
			wantErr{"request_uri_not_supported", "the request_uri parameter is not supported", 400}},
		{"registration", with("registration", "{}"), baseReq,
			wantErr{"registration_not_supported", "the registration parameter is not supported", 400}},
		{
			name: "first error wins, other fields still filled",
			in:   with("response_type", "token", "response_mode", "form_post", "prompt", "bogus", "max_age", "60"),
			want: req(func(r *AuthorizeRequest) {
				r.ResponseType = "token"
				r.ResponseMode = "form_post"
				r.MaxAge = intPtr(60)
			}),
			err: wantErr{"unsupported_response_type", "only response_type code is supported", 400},
		},
		{
			name: "request before response_type",
			in:   with("request", "x", "response_type", ""),
			want: req(func(r *AuthorizeRequest) { r.Request = "x"; r.ResponseType = "" }),
			err:  wantErr{"request_not_supported", "the request parameter is not supported", 400},
		},
		{"unknown parameters ignored", with("approval_prompt", "force", "display", "popup"), baseReq, wantErr{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, e := ParseAuthorizeRequest(tt.in)
			checkE(t, e, tt.err)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("request =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}
