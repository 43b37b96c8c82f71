// Package facebooktest is a fake Facebook for tests: providertest's fake
// upstream speaking Facebook Login's dialect, with the login dialog and
// the Graph API on the fake's one URL (a facebook connector with
// facebookURL and graphURL = the fake's URL talks to it unchanged).
//
// What it speaks, as Facebook documents it:
//
//	GET  /{version}/dialog/oauth          redirects back with code and state and
//	                                      Facebook's "#_=_"; when the user cancels,
//	                                      error=access_denied&error_code=200&
//	                                      error_reason=user_denied
//	GET|POST /{version}/oauth/access_token {"access_token","token_type":"bearer",
//	                                      "expires_in"}: no refresh token, no ID token
//	GET  /{version}/me?fields=id,name,email the user; the token as Bearer or
//	                                      access_token; appsecret_proof checked
//	                                      when sent (or always, RequireProof)
//
// Errors have Facebook's shape, HTTP 400: {"error":{"message","type":
// "OAuthException","code","error_subcode","fbtrace_id"}}: a used or
// unknown code is code 100 (subcode 36009), a wrong secret code 1, an
// unknown or revoked access token (a removed user's too) code 190.
//
// Users are providertest users: sub is the id; name and email are read
// from their claims. Requests count, and Behavior.Faults break, as the
// generic endpoints: the dialog as providertest.AuthorizePath, the token
// endpoint as TokenPath, /me as UserinfoPath.
package facebooktest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkeyid/latchkey/providers/providertest"
)

// Version is the Graph API version the fake's paths use unless Settings
// name another.
const Version = "v19.0"

// Settings change the fake.
type Settings struct {
	// Version of the paths; default Version.
	Version string
	// RequireProof refuses Graph API calls without appsecret_proof (the
	// app setting "Require App Secret").
	RequireProof bool
}

func (s Settings) version() string {
	if s.Version == "" {
		return Version
	}
	return s.Version
}

// New starts a fake Facebook.
func New(t testing.TB, s Settings) *providertest.Upstream {
	t.Helper()
	return providertest.NewUpstream(t, Options(s)...)
}

// Options are the providertest options that make the generic fake speak
// Facebook (for providertest.Contract.Upstream).
func Options(s Settings) []providertest.Option {
	v := "/" + s.version()
	tok := func(u *providertest.Upstream, w http.ResponseWriter, r *http.Request) { token(u, w, r) }
	return []providertest.Option{
		providertest.WithAuthorizePath(v + "/dialog/oauth"),
		providertest.WithRoute("GET "+v+"/dialog/oauth", providertest.AuthorizePath, dialog),
		providertest.WithRoute("GET "+v+"/oauth/access_token", providertest.TokenPath, tok),
		providertest.WithRoute("POST "+v+"/oauth/access_token", providertest.TokenPath, tok),
		providertest.WithRoute("GET "+v+"/me", providertest.UserinfoPath, func(u *providertest.Upstream, w http.ResponseWriter, r *http.Request) {
			me(s, u, w, r)
		}),
	}
}

// GraphError writes Facebook's error shape with HTTP 400.
func GraphError(w http.ResponseWriter, typ string, code, subcode int, message string) {
	e := map[string]any{"message": message, "type": typ, "code": code, "fbtrace_id": "AbCdEfGhIjK"}
	if subcode != 0 {
		e["error_subcode"] = subcode
	}
	if code == 190 {
		w.Header().Set("WWW-Authenticate", `OAuth "Facebook Platform" "invalid_token" "`+message+`"`)
	}
	writeJSON(w, http.StatusBadRequest, map[string]any{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// dialog lets the generic endpoint decide and redirects the way Facebook
// does: no iss, "#_=_", Facebook's cancel parameters.
func dialog(u *providertest.Upstream, w http.ResponseWriter, r *http.Request) {
	rec := u.Record(providertest.AuthorizePath, r)
	back, err := url.Parse(rec.Header().Get("Location"))
	if rec.Code != http.StatusFound || err != nil {
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	q := back.Query()
	q.Del("iss")
	if q.Get("error") == "access_denied" {
		q.Set("error_code", "200")
		q.Set("error_reason", "user_denied")
		if q.Get("error_description") == "" {
			q.Set("error_description", "Permissions error")
		}
	}
	back.RawQuery = q.Encode()
	back.Fragment = "_=_"
	http.Redirect(w, r, back.String(), http.StatusFound)
}

// token lets the generic endpoint decide (a GET's query becomes the form)
// and answers the way Facebook does.
func token(u *providertest.Upstream, w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		GraphError(w, "OAuthException", 100, 0, "Invalid parameter")
		return
	}
	if r.Method == http.MethodGet {
		r.Method = http.MethodPost
		r.PostForm = r.Form
	}
	grant := r.PostForm.Get("grant_type")
	if grant == "" {
		r.PostForm.Set("grant_type", "authorization_code")
	}
	rec := u.Record(providertest.TokenPath, r)
	var generic map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &generic)
	if rec.Code != http.StatusOK {
		code, _ := generic["error"].(string)
		desc, _ := generic["error_description"].(string)
		switch {
		case code == "invalid_client":
			GraphError(w, "OAuthException", 1, 0, "Error validating client secret.")
		case code == "invalid_grant" && strings.Contains(desc, "redirect_uri"):
			GraphError(w, "OAuthException", 100, 0, "Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request")
		case code == "invalid_grant" && strings.Contains(desc, "PKCE"):
			GraphError(w, "OAuthException", 100, 0, "Invalid code verifier.")
		case code == "invalid_grant":
			GraphError(w, "OAuthException", 100, 36009, "This authorization code has been used.")
		default:
			GraphError(w, "OAuthException", 100, 0, "Invalid parameter: "+desc)
		}
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": generic["access_token"],
		"token_type":   "bearer",
		"expires_in":   5183944,
	})
}

// Proof is appsecret_proof for token under the fake's client secret.
func Proof(token string) string {
	m := hmac.New(sha256.New, []byte(providertest.ClientSecret))
	m.Write([]byte(token))
	return hex.EncodeToString(m.Sum(nil))
}

// me answers GET /me with the requested fields of the token's user.
func me(s Settings, u *providertest.Upstream, w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		tok = r.URL.Query().Get("access_token")
	}
	if tok == "" {
		GraphError(w, "OAuthException", 2500, 0, "An active access token must be used to query information about the current user.")
		return
	}
	proof := r.URL.Query().Get("appsecret_proof")
	if (proof != "" || s.RequireProof) && !hmac.Equal([]byte(proof), []byte(Proof(tok))) {
		GraphError(w, "GraphMethodException", 100, 0, "Invalid appsecret_proof provided in the API argument")
		return
	}
	ui, err := http.NewRequestWithContext(r.Context(), http.MethodGet, providertest.UserinfoPath, nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	ui.Header.Set("Authorization", "Bearer "+tok)
	rec := u.Record(providertest.UserinfoPath, ui)
	if rec.Code != http.StatusOK {
		GraphError(w, "OAuthException", 190, 460, "Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons.")
		return
	}
	var claims map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &claims); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	fields := strings.Split(r.URL.Query().Get("fields"), ",")
	if r.URL.Query().Get("fields") == "" {
		fields = []string{"name"}
	}
	out := map[string]any{"id": claims["sub"]}
	for _, f := range fields {
		switch f {
		case "name", "email", "first_name", "last_name":
			if v, ok := claims[f].(string); ok && v != "" {
				out[f] = v
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}
