// Package githubtest is a fake GitHub for tests: providertest's fake
// upstream speaking GitHub's dialect, in the GitHub Enterprise Server
// layout (the web at the fake's URL, the REST API at URL/api/v3), so a
// github connector with baseURL = the fake's URL talks to it unchanged.
//
// What it speaks, as GitHub documents it:
//
//	GET  /login/oauth/authorize         redirects back with code and state,
//	                                    or error=access_denied (no iss)
//	POST /login/oauth/access_token      client_id and client_secret in the form;
//	                                    form-encoded answers, JSON with
//	                                    Accept: application/json; errors in a
//	                                    200 answer: bad_verification_code,
//	                                    bad_refresh_token,
//	                                    incorrect_client_credentials,
//	                                    redirect_uri_mismatch
//	GET  /api/v3/user                   the user (numeric id, login, name, email)
//	GET  /api/v3/user/emails            [{email, primary, verified, visibility}]
//	GET  /api/v3/user/orgs              [{login, id, ...}], paginated
//	GET  /api/v3/user/teams             [{slug, name, organization: {login}}], paginated
//
// The API takes "Authorization: Bearer" or "token"; an unknown, revoked
// or removed user's token gets 401 {"message":"Bad credentials",
// "documentation_url":"https://docs.github.com/rest","status":"401"}.
// Lists honor per_page (at most 100, or Settings.MaxPerPage) and page and
// send GitHub's Link header (next, last, first, prev).
//
// Users are providertest users; the fake reads these claims:
//
//	sub                  the numeric id
//	preferred_username   login
//	name                 name
//	email, email_verified the primary address (unless ClaimEmails)
//	groups               organization logins
//	ClaimEmails          the whole /user/emails list
//	ClaimTeams           teams as "org:team-slug"
//	ClaimPublicEmail     /user's public email (null by default)
//
// Requests count, and Behavior.Faults break, as the generic endpoints:
// the authorization endpoint as providertest.AuthorizePath, the token
// endpoint as TokenPath, every API path as UserinfoPath.
package githubtest

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/latchkeyid/latchkey/providers/providertest"
)

// Claims of a providertest user that the fake reads besides the standard
// ones.
const (
	// ClaimEmails is a list of {"email", "primary", "verified"} objects.
	ClaimEmails = "github_emails"
	// ClaimTeams is a list of "org:team-slug" strings.
	ClaimTeams = "github_teams"
	// ClaimPublicEmail is the email of /user (the public profile email).
	ClaimPublicEmail = "github_public_email"
)

// Paths of the fake (GitHub Enterprise Server layout).
const (
	AuthorizePath = "/login/oauth/authorize"
	TokenPath     = "/login/oauth/access_token"
	APIPath       = "/api/v3"
)

// Settings choose the kind of GitHub app the fake plays.
type Settings struct {
	// OAuthApp: access tokens that never expire and no refresh tokens.
	// The default is a GitHub App with expiring user tokens: expires_in
	// 28800 and a refresh token that works once (rotated).
	OAuthApp bool
	// MaxPerPage lowers the page size limit (GitHub's is 100), to make
	// pagination show with few entries.
	MaxPerPage int
	// NotGranted lists API paths ("/user/emails", "/user/teams") that
	// answer 404 {"message":"Not Found"}, as GitHub does to a token
	// without the scope they need.
	NotGranted []string
}

// New starts a fake GitHub.
func New(t testing.TB, s Settings) *providertest.Upstream {
	t.Helper()
	return providertest.NewUpstream(t, Options(s)...)
}

// Options are the providertest options that make the generic fake speak
// GitHub (for providertest.Contract.Upstream).
func Options(s Settings) []providertest.Option {
	return []providertest.Option{
		providertest.WithAuthorizePath(AuthorizePath),
		providertest.WithRoute("GET "+AuthorizePath, providertest.AuthorizePath, authorize),
		providertest.WithRoute("POST "+TokenPath, providertest.TokenPath, func(u *providertest.Upstream, w http.ResponseWriter, r *http.Request) {
			token(s, u, w, r)
		}),
		providertest.WithRoute("GET "+APIPath+"/user", providertest.UserinfoPath, api(s, user)),
		providertest.WithRoute("GET "+APIPath+"/user/emails", providertest.UserinfoPath, api(s, emails)),
		providertest.WithRoute("GET "+APIPath+"/user/orgs", providertest.UserinfoPath, api(s, orgs)),
		providertest.WithRoute("GET "+APIPath+"/user/teams", providertest.UserinfoPath, api(s, teams)),
	}
}

// authorize lets the generic endpoint decide and drops the iss parameter
// GitHub does not send.
func authorize(u *providertest.Upstream, w http.ResponseWriter, r *http.Request) {
	rec := u.Record(providertest.AuthorizePath, r)
	loc := rec.Header().Get("Location")
	if rec.Code != http.StatusFound || loc == "" {
		copyResponse(w, rec)
		return
	}
	back, err := url.Parse(loc)
	if err != nil {
		http.Error(w, "bad redirect", http.StatusInternalServerError)
		return
	}
	q := back.Query()
	q.Del("iss")
	if q.Get("error") == "access_denied" && q.Get("error_description") == "" {
		q.Set("error_description", "The user has denied your application access.")
	}
	if q.Has("error") {
		q.Set("error_uri", "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#access-denied")
	}
	back.RawQuery = q.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func copyResponse(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	maps.Copy(w.Header(), rec.Header())
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

const troubleshooting = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/"

// token lets the generic endpoint decide and answers the way GitHub
// does: errors in a 200 answer, GitHub's error codes, no ID token.
func token(s Settings, u *providertest.Upstream, w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	grant := r.PostForm.Get("grant_type")
	if grant == "" {
		// GitHub does not need grant_type for a code.
		r.PostForm.Set("grant_type", "authorization_code")
	}
	rec := u.Record(providertest.TokenPath, r)
	var generic map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &generic)
	out := url.Values{}
	if rec.Code == http.StatusOK {
		out.Set("access_token", fmt.Sprint(generic["access_token"]))
		out.Set("token_type", "bearer")
		scope, _ := generic["scope"].(string)
		out.Set("scope", strings.Join(strings.Fields(scope), ","))
		if rt, ok := generic["refresh_token"].(string); ok && !s.OAuthApp {
			out.Set("expires_in", "28800")
			out.Set("refresh_token", rt)
			out.Set("refresh_token_expires_in", "15811200")
		}
	} else {
		code, _ := generic["error"].(string)
		desc, _ := generic["error_description"].(string)
		switch {
		case code == "invalid_client":
			out.Set("error", "incorrect_client_credentials")
			out.Set("error_description", "The client_id and/or client_secret passed are incorrect.")
			out.Set("error_uri", troubleshooting+"#incorrect-client-credentials")
		case code == "invalid_grant" && strings.Contains(desc, "redirect_uri"):
			out.Set("error", "redirect_uri_mismatch")
			out.Set("error_description", "The redirect_uri MUST match the registered callback URL for this application.")
			out.Set("error_uri", troubleshooting+"#redirect-uri-mismatch2")
		case code == "invalid_grant" && grant == "refresh_token":
			out.Set("error", "bad_refresh_token")
			out.Set("error_description", "The refresh token passed is incorrect or expired.")
			out.Set("error_uri", troubleshooting+"#bad-refresh-token")
		case code == "invalid_grant":
			out.Set("error", "bad_verification_code")
			out.Set("error_description", "The code passed is incorrect or expired.")
			out.Set("error_uri", troubleshooting+"#bad-verification-code")
		default:
			out.Set("error", code)
			out.Set("error_description", desc)
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		m := map[string]any{}
		for k := range out {
			v := out.Get(k)
			if n, err := strconv.Atoi(v); err == nil && strings.HasSuffix(k, "expires_in") {
				m[k] = n
			} else {
				m[k] = v
			}
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_ = json.NewEncoder(w).Encode(m)
		return
	}
	w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	_, _ = w.Write([]byte(out.Encode()))
}

// api authenticates an API request with the generic userinfo endpoint and
// answers with write's document made of the user's claims.
func api(s Settings, write func(s Settings, w http.ResponseWriter, r *http.Request, claims map[string]any)) func(*providertest.Upstream, http.ResponseWriter, *http.Request) {
	return func(u *providertest.Upstream, w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		tok, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok {
			tok, _ = strings.CutPrefix(auth, "token ")
		}
		ui, err := http.NewRequestWithContext(r.Context(), http.MethodGet, providertest.UserinfoPath, nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		ui.Header.Set("Authorization", "Bearer "+tok)
		rec := u.Record(providertest.UserinfoPath, ui)
		if rec.Code != http.StatusOK {
			writeJSON(w, http.StatusUnauthorized, map[string]any{
				"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401",
			})
			return
		}
		dec := json.NewDecoder(rec.Body)
		dec.UseNumber()
		var claims map[string]any
		if err := dec.Decode(&claims); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("X-GitHub-Media-Type", "github.v3; format=json")
		w.Header().Set("X-RateLimit-Limit", "5000")
		w.Header().Set("X-RateLimit-Remaining", "4999")
		if slices.Contains(s.NotGranted, strings.TrimPrefix(r.URL.Path, APIPath)) {
			writeJSON(w, http.StatusNotFound, map[string]any{
				"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404",
			})
			return
		}
		write(s, w, r, claims)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	}
	return ""
}

// id renders sub as GitHub does: a JSON number (when it is one).
func id(sub string) any {
	if _, err := strconv.ParseUint(sub, 10, 64); err == nil {
		return json.Number(sub)
	}
	return sub
}

func user(_ Settings, w http.ResponseWriter, r *http.Request, c map[string]any) {
	login := str(c["preferred_username"])
	var public any
	if e := str(c[ClaimPublicEmail]); e != "" {
		public = e
	}
	var name any
	if n := str(c["name"]); n != "" {
		name = n
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"login":      login,
		"id":         id(str(c["sub"])),
		"node_id":    "U_kgDO" + str(c["sub"]),
		"avatar_url": "https://avatars.githubusercontent.com/u/" + str(c["sub"]) + "?v=4",
		"html_url":   "https://github.com/" + login,
		"type":       "User",
		"site_admin": false,
		"name":       name,
		"company":    nil,
		"blog":       "",
		"location":   nil,
		"email":      public,
		"hireable":   nil,
		"bio":        nil,
		"created_at": "2011-01-25T18:44:36Z",
		"updated_at": "2024-01-02T03:04:05Z",
	})
}

func emails(_ Settings, w http.ResponseWriter, r *http.Request, c map[string]any) {
	if list, ok := c[ClaimEmails].([]any); ok {
		writeJSON(w, http.StatusOK, list)
		return
	}
	out := []any{}
	if e := str(c["email"]); e != "" {
		verified, _ := c["email_verified"].(bool)
		out = append(out, map[string]any{"email": e, "primary": true, "verified": verified, "visibility": "private"})
	}
	writeJSON(w, http.StatusOK, out)
}

func orgs(s Settings, w http.ResponseWriter, r *http.Request, c map[string]any) {
	var items []any
	for i, o := range strs(c["groups"]) {
		items = append(items, map[string]any{
			"login": o, "id": 1000 + i, "node_id": "O_kgDO" + o, "url": "https://api.github.com/orgs/" + o,
			"description": nil,
		})
	}
	paginate(s, w, r, items)
}

func teams(s Settings, w http.ResponseWriter, r *http.Request, c map[string]any) {
	var items []any
	for i, t := range strs(c[ClaimTeams]) {
		org, slug, _ := strings.Cut(t, ":")
		items = append(items, map[string]any{
			"id": 2000 + i, "node_id": "T_kwDO" + slug, "slug": slug, "name": slug, "privacy": "closed",
			"permission": "pull", "organization": map[string]any{"login": org, "id": 1000 + i},
		})
	}
	paginate(s, w, r, items)
}

func strs(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, e := range list {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// paginate answers one page of items with GitHub's Link header.
func paginate(s Settings, w http.ResponseWriter, r *http.Request, items []any) {
	limit := 100
	if s.MaxPerPage > 0 {
		limit = s.MaxPerPage
	}
	per, err := strconv.Atoi(r.URL.Query().Get("per_page"))
	if err != nil || per <= 0 {
		per = 30
	}
	per = min(per, limit)
	page, err := strconv.Atoi(r.URL.Query().Get("page"))
	if err != nil || page <= 0 {
		page = 1
	}
	last := max(1, (len(items)+per-1)/per)
	start := min((page-1)*per, len(items))
	end := min(start+per, len(items))
	link := func(p int, rel string) string {
		u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path,
			RawQuery: url.Values{"per_page": {strconv.Itoa(per)}, "page": {strconv.Itoa(p)}}.Encode()}
		return fmt.Sprintf("<%s>; rel=%q", u.String(), rel)
	}
	var links []string
	if page < last {
		links = append(links, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		links = append(links, link(1, "first"), link(page-1, "prev"))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	out := items[start:end]
	if out == nil {
		out = []any{}
	}
	writeJSON(w, http.StatusOK, out)
}
