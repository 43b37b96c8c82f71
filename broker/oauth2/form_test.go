package oauth2

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestParseTokenForm(t *testing.T) {
	const form = "application/x-www-form-urlencoded"
	const badType = "Content-Type must be application/x-www-form-urlencoded"
	tests := []struct {
		name        string
		method      string
		target      string
		contentType string
		body        io.Reader
		max         int64
		want        url.Values
		err         wantErr
	}{
		{
			name: "valid", method: "POST", contentType: form,
			body: strings.NewReader("grant_type=authorization_code&code=abc&redirect_uri=https%3A%2F%2Fapp.example%2Fcb"),
			want: url.Values{"grant_type": {"authorization_code"}, "code": {"abc"}, "redirect_uri": {"https://app.example/cb"}},
		},
		{
			name: "charset parameter", method: "POST", contentType: "application/x-www-form-urlencoded; charset=UTF-8",
			body: strings.NewReader("grant_type=refresh_token"), want: url.Values{"grant_type": {"refresh_token"}},
		},
		{
			name: "media type case-insensitive", method: "POST", contentType: "Application/X-WWW-Form-URLEncoded",
			body: strings.NewReader("a=1"), want: url.Values{"a": {"1"}},
		},
		{
			name: "query string ignored", method: "POST", target: "/token?code=fromquery&client_secret=s", contentType: form,
			body: strings.NewReader("grant_type=authorization_code"), want: url.Values{"grant_type": {"authorization_code"}},
		},
		{
			name: "query duplicate of body parameter ignored", method: "POST", target: "/token?code=x", contentType: form,
			body: strings.NewReader("code=y"), want: url.Values{"code": {"y"}},
		},
		{
			name: "empty value treated as omitted", method: "POST", contentType: form,
			body: strings.NewReader("grant_type=refresh_token&scope=&client_secret"), want: url.Values{"grant_type": {"refresh_token"}},
		},
		{
			name: "plus is space", method: "POST", contentType: form,
			body: strings.NewReader("scope=openid+email"), want: url.Values{"scope": {"openid email"}},
		},
		{
			name: "empty body", method: "POST", contentType: form, body: strings.NewReader(""), want: url.Values{},
		},
		{
			name: "nil body", method: "POST", contentType: form, body: nil, want: url.Values{},
		},
		{
			name: "body exactly at limit", method: "POST", contentType: form, max: 5,
			body: strings.NewReader("a=123"), want: url.Values{"a": {"123"}},
		},
		{
			name: "GET", method: "GET", target: "/token?grant_type=authorization_code",
			err: wantErr{"invalid_request", "the token endpoint accepts only POST", 405},
		},
		{
			name: "PUT", method: "PUT", contentType: form, body: strings.NewReader("a=1"),
			err: wantErr{"invalid_request", "the token endpoint accepts only POST", 405},
		},
		{
			name: "JSON", method: "POST", contentType: "application/json", body: strings.NewReader(`{"grant_type":"x"}`),
			err: wantErr{"invalid_request", badType, 400},
		},
		{
			name: "multipart", method: "POST", contentType: "multipart/form-data; boundary=x", body: strings.NewReader(""),
			err: wantErr{"invalid_request", badType, 400},
		},
		{
			name: "no content type", method: "POST", body: strings.NewReader("a=1"),
			err: wantErr{"invalid_request", badType, 400},
		},
		{
			name: "malformed content type", method: "POST", contentType: "application/x-www-form-urlencoded; charset", body: strings.NewReader("a=1"),
			err: wantErr{"invalid_request", badType, 400},
		},
		{
			name: "body over limit", method: "POST", contentType: form, max: 5, body: strings.NewReader("a=1234"),
			err: wantErr{"invalid_request", "request body is larger than 5 bytes", 413},
		},
		{
			name: "over default limit", method: "POST", contentType: form,
			body: strings.NewReader("a=" + strings.Repeat("x", 1<<20)),
			err:  wantErr{"invalid_request", "request body is larger than 1048576 bytes", 413},
		},
		{
			name: "read error", method: "POST", contentType: form, body: io.MultiReader(strings.NewReader("a="), failingReader{}),
			err: wantErr{"invalid_request", "could not read the request body", 400},
		},
		{
			name: "bad escape", method: "POST", contentType: form, body: strings.NewReader("code=%zz"),
			err: wantErr{"invalid_request", "request body is not valid form encoding", 400},
		},
		{
			name: "semicolon separator", method: "POST", contentType: form, body: strings.NewReader("a=1;b=2"),
			err: wantErr{"invalid_request", "request body is not valid form encoding", 400},
		},
		{
			name: "invalid UTF-8 value", method: "POST", contentType: form, body: strings.NewReader("code=%ff"),
			err: wantErr{"invalid_request", "parameter 'code' is not valid UTF-8", 400},
		},
		{
			name: "duplicate parameter", method: "POST", contentType: form, body: strings.NewReader("code=a&grant_type=authorization_code&code=b"),
			err: wantErr{"invalid_request", "parameter 'code' is repeated", 400},
		},
		{
			name: "duplicate with empty value", method: "POST", contentType: form, body: strings.NewReader("code=a&code="),
			err: wantErr{"invalid_request", "parameter 'code' is repeated", 400},
		},
		{
			name: "two duplicates, first in sorted order named", method: "POST", contentType: form, body: strings.NewReader("z=1&z=2&b=1&b=2"),
			err: wantErr{"invalid_request", "parameter 'b' is repeated", 400},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := tt.target
			if target == "" {
				target = "/token"
			}
			r := httptest.NewRequest(tt.method, target, tt.body)
			if tt.body == nil {
				r.Body = nil
			}
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			got, e := ParseTokenForm(r, tt.max)
			checkE(t, e, tt.err)
			if tt.err == (wantErr{}) && !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("values = %v, want %v", got, tt.want)
			}
			if tt.err != (wantErr{}) && got != nil {
				t.Fatalf("values = %v on error, want nil", got)
			}
		})
	}
}

func TestParseTokenFormContentLength(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader("a=1"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.ContentLength = 1 << 30 // declared size alone is refused, without reading
	r.Body = io.NopCloser(failingReader{})
	_, e := ParseTokenForm(r, 1024)
	checkE(t, e, wantErr{"invalid_request", "request body is larger than 1024 bytes", 413})
}

// TestParseForm: every value is kept (the caller decides about repeats);
// the other rules are ParseTokenForm's.
func TestParseForm(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/authorize", strings.NewReader("state=a&state=b&client_id=app&nonce="))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	got, e := ParseForm(r, 1024)
	checkE(t, e, wantErr{})
	if want := (url.Values{"state": {"a", "b"}, "client_id": {"app"}, "nonce": {""}}); !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseForm = %v, want %v", got, want)
	}
	r = httptest.NewRequest(http.MethodPost, "/authorize", strings.NewReader(`{"state":"a"}`))
	r.Header.Set("Content-Type", "application/json")
	_, e = ParseForm(r, 1024)
	checkE(t, e, wantErr{"invalid_request", "Content-Type must be application/x-www-form-urlencoded", 400})
}

// TestParseTokenFormOuterLimit: a body cut by http.MaxBytesReader (the
// server's middleware) is 413 like one over maxBytes.
func TestParseTokenFormOuterLimit(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(strings.Repeat("a", 100)))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.ContentLength = -1
	r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 10)
	_, e := ParseTokenForm(r, 1024)
	checkE(t, e, wantErr{"invalid_request", "request body is larger than 1024 bytes", 413})
}

func TestSingleValues(t *testing.T) {
	tests := []struct {
		name string
		in   url.Values
		want map[string]string
		err  wantErr
	}{
		{"nil", nil, map[string]string{}, wantErr{}},
		{"single", url.Values{"client_id": {"app"}, "state": {"s"}}, map[string]string{"client_id": "app", "state": "s"}, wantErr{}},
		{"empty value dropped", url.Values{"client_id": {"app"}, "nonce": {""}}, map[string]string{"client_id": "app"}, wantErr{}},
		{"no values dropped", url.Values{"client_id": {"app"}, "nonce": {}}, map[string]string{"client_id": "app"}, wantErr{}},
		{"repeated", url.Values{"state": {"a", "b"}}, nil, wantErr{"invalid_request", "parameter 'state' is repeated", 400}},
		{"repeated empty", url.Values{"prompt": {"", ""}}, nil, wantErr{"invalid_request", "parameter 'prompt' is repeated", 400}},
		{"repeated long name cut", url.Values{strings.Repeat("p", 80): {"a", "b"}}, nil,
			wantErr{"invalid_request", "parameter '" + strings.Repeat("p", 64) + "...' is repeated", 400}},
		{"invalid UTF-8 value", url.Values{"login_hint": {"\xff"}}, nil, wantErr{"invalid_request", "parameter 'login_hint' is not valid UTF-8", 400}},
		{"invalid UTF-8 name", url.Values{"\xff": {"x"}}, nil, wantErr{"invalid_request", "a parameter name is not valid UTF-8", 400}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, e := SingleValues(tt.in)
			checkE(t, e, tt.err)
			if tt.err == (wantErr{}) && !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("SingleValues = %v, want %v", got, tt.want)
			}
		})
	}
}
