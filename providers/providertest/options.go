package providertest

import (
	"bytes"
	"errors"
	"html"
	"html/template"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
)

// Option makes the fake speak one provider's dialect: its own paths and
// answer shapes on top of the generic endpoints (which stay served). A
// dialect's handlers usually call Serve (or Record) to let the generic
// endpoint decide (codes, PKCE, rotation, removed users, Behavior) and
// then reshape the answer the way the provider writes it.
type Option func(*Upstream)

// WithRoute serves h at pattern (a net/http ServeMux pattern, e.g.
// "POST /login/oauth/access_token"). Its requests count as endpoint (one
// of DiscoveryPath, JWKSPath, AuthorizePath, TokenPath, UserinfoPath) in
// Requests, and Behavior.Faults of endpoint break it, so the contract's
// fault cases reach a provider's own paths.
func WithRoute(pattern, endpoint string, h func(u *Upstream, w http.ResponseWriter, r *http.Request)) Option {
	return func(u *Upstream) {
		u.mux.HandleFunc(pattern, u.faulty(endpoint, func(w http.ResponseWriter, r *http.Request) { h(u, w, r) }))
	}
}

// WithAuthorizePath names the path of the provider's authorization
// endpoint (served with WithRoute): AuthorizeURL, where the contract
// expects connectors to send the browser.
func WithAuthorizePath(path string) Option {
	return func(u *Upstream) { u.authorizePath = path }
}

// WithIDTokenIssuer sets the iss of ID tokens (Behavior.IDTokenIssuer
// still wins), for providers whose issuer is not the fake's URL
// (https://appleid.apple.com).
func WithIDTokenIssuer(iss string) Option {
	return func(u *Upstream) { u.idIssuer = iss }
}

// WithIDTokenClaims puts only these user claims into ID tokens (iss, sub,
// aud, iat, exp and nonce are always there); userinfo keeps them all.
// GitLab, for one, puts its profile claims only in userinfo.
func WithIDTokenClaims(names ...string) Option {
	return func(u *Upstream) { u.idClaims = append([]string{}, names...) }
}

// WithoutRefreshRotation makes refresh tokens reusable: a refresh answers
// no new refresh token and the old one keeps working (Sign in with Apple).
func WithoutRefreshRotation() Option {
	return func(u *Upstream) { u.keepRefresh = true }
}

// AuthorizeURL is the authorization endpoint connectors send the browser
// to: URL + AuthorizePath, or the path of WithAuthorizePath.
func (u *Upstream) AuthorizeURL() string { return u.URL + u.authorizePath }

// Serve answers r with the generic endpoint (one of the path constants),
// without counting the request or applying faults: the dialect route that
// calls it was counted and checked already.
func (u *Upstream) Serve(endpoint string, w http.ResponseWriter, r *http.Request) {
	h, ok := u.generic[endpoint]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h(w, r)
}

// Record serves r with the generic endpoint into a recorder, for a dialect
// to reshape.
func (u *Upstream) Record(endpoint string, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	u.Serve(endpoint, rec, r)
	return rec
}

// CurrentUser returns the user the authorization endpoint signs in (see
// LoginAs).
func (u *Upstream) CurrentUser() (User, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	usr, ok := u.users[u.current]
	usr.Claims = maps.Clone(usr.Claims)
	return usr, ok
}

// Behavior returns the fake's current behavior.
func (u *Upstream) Behavior() Behavior {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.behavior
}

var formPostPage = template.Must(template.New("form_post").Parse(`<!DOCTYPE html>
<html><head><title>Submit This Form</title></head>
<body onload="document.forms[0].submit()">
<form method="post" action="{{.Action}}">
{{range .Fields}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<noscript><button type="submit">Continue</button></noscript>
</form>
</body></html>
`))

// WriteFormPost answers with the auto-submitting page of OAuth 2.0 Form
// Post Response Mode: the browser posts values to action.
func WriteFormPost(w http.ResponseWriter, action string, values url.Values) {
	type field struct{ Name, Value string }
	var fields []field
	for _, k := range slices.Sorted(maps.Keys(values)) {
		for _, v := range values[k] {
			fields = append(fields, field{k, v})
		}
	}
	var b bytes.Buffer
	if err := formPostPage.Execute(&b, struct {
		Action string
		Fields []field
	}{action, fields}); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b.Bytes())
}

var (
	formActionRE = regexp.MustCompile(`<form method="post" action="([^"]*)">`)
	formFieldRE  = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
)

// ParseFormPost reads a page WriteFormPost made: the form's action and the
// fields the browser would post.
func ParseFormPost(page []byte) (action string, values url.Values, err error) {
	m := formActionRE.FindSubmatch(page)
	if m == nil {
		return "", nil, errors.New("providertest: no form_post form in the page")
	}
	values = url.Values{}
	for _, f := range formFieldRE.FindAllSubmatch(page, -1) {
		values.Add(html.UnescapeString(string(f[1])), html.UnescapeString(string(f[2])))
	}
	return html.UnescapeString(string(m[1])), values, nil
}
