// Package appletest is a fake Sign in with Apple for tests: providertest's
// fake upstream speaking Apple's REST dialect at Apple's fixed paths
// (an apple connector with baseURL = the fake's URL talks to it
// unchanged).
//
// What it speaks, as Apple documents it:
//
//	GET  /auth/authorize  response_mode=form_post is required when scopes
//	                      are asked for, and scopes must be %20-separated;
//	                      answers the auto-submitting form that posts
//	                      state and code (or error) to the redirect URI,
//	                      plus the user field
//	                      {"name":{"firstName","lastName"},"email"} at a
//	                      user's first authorization only
//	POST /auth/token      client_secret_post: client_secret must be an
//	                      ES256 JWT signed by the team's key (header kid;
//	                      iss team id, sub client id, aud
//	                      https://appleid.apple.com, iat, exp, a lifetime
//	                      of at most 15777000 s), else 400
//	                      {"error":"invalid_client"}; a used code or a
//	                      revoked refresh token is 400
//	                      {"error":"invalid_grant"}; a refresh answers a
//	                      new access and ID token and keeps the refresh
//	                      token (no rotation)
//	GET  /auth/keys       the JWKS of the ID tokens' RS256 key
//
// ID tokens carry iss https://appleid.apple.com, aud the client id, sub,
// nonce, and of the user's claims only email, email_verified,
// is_private_email and real_user_status (Apple sends email_verified and
// is_private_email as strings "true"/"false" or booleans: give the
// users' claims either). A user's name (the name claim, or given_name and
// family_name) only ever appears in the user form field.
//
// Requests count, and Behavior.Faults break, as the generic endpoints:
// /auth/authorize as providertest.AuthorizePath, /auth/token as
// TokenPath, /auth/keys as JWKSPath.
package appletest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchkeyid/latchkey/providers/providertest"
)

// The fake's Apple identity and paths.
const (
	Issuer        = "https://appleid.apple.com"
	AuthorizePath = "/auth/authorize"
	TokenPath     = "/auth/token"
	KeysPath      = "/auth/keys"
	// TeamID and KeyID are the ids tests sign client secrets with.
	TeamID = "TEAM123456"
	KeyID  = "KEY7890ABC"
	// MaxSecretLifetime is Apple's limit on exp - iat of a client secret.
	MaxSecretLifetime = 15777000 * time.Second
)

// NewKey returns a fresh Sign in with Apple key: the .p8 file's content
// (PKCS#8 PEM of a P-256 key) and its public half for Settings.Key.
func NewKey(t testing.TB) (p8 string, pub *ecdsa.PublicKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("appletest: generate key: %v", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatalf("appletest: marshal key: %v", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), &k.PublicKey
}

// Settings describe the Apple developer account the fake accepts client
// secrets from.
type Settings struct {
	// Key verifies client secrets (the public half of the .p8 key).
	Key *ecdsa.PublicKey
	// TeamID and KeyID the client secrets must name; default the
	// constants.
	TeamID, KeyID string
	// Now is the fake's clock for the client secret's iat and exp;
	// default time.Now.
	Now func() time.Time
	// OnClientSecret, when set, sees the claims of every client secret
	// the token endpoint accepted.
	OnClientSecret func(claims map[string]any)
}

// New starts a fake Sign in with Apple.
func New(t testing.TB, s Settings) *providertest.Upstream {
	t.Helper()
	return providertest.NewUpstream(t, Options(s)...)
}

// Options are the providertest options that make the generic fake speak
// Apple (for providertest.Contract.Upstream). Each fake made with them
// has its own record of which users authorized already.
func Options(s Settings) []providertest.Option {
	if s.TeamID == "" {
		s.TeamID = TeamID
	}
	if s.KeyID == "" {
		s.KeyID = KeyID
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	return []providertest.Option{
		providertest.WithIDTokenIssuer(Issuer),
		providertest.WithIDTokenClaims("email", "email_verified", "is_private_email", "real_user_status"),
		providertest.WithoutRefreshRotation(),
		providertest.WithAuthorizePath(AuthorizePath),
		func(u *providertest.Upstream) {
			f := &fake{s: s, seen: map[string]bool{}}
			providertest.WithRoute("GET "+AuthorizePath, providertest.AuthorizePath, f.authorize)(u)
			providertest.WithRoute("POST "+TokenPath, providertest.TokenPath, f.token)(u)
			providertest.WithRoute("GET "+KeysPath, providertest.JWKSPath, func(u *providertest.Upstream, w http.ResponseWriter, r *http.Request) {
				u.Serve(providertest.JWKSPath, w, r)
			})(u)
		},
	}
}

type fake struct {
	s    Settings
	mu   sync.Mutex
	seen map[string]bool // users who authorized already: no user field again
}

// rawParam returns a query parameter as sent, undecoded.
func rawParam(rawQuery, name string) string {
	for _, kv := range strings.Split(rawQuery, "&") {
		if k, v, _ := strings.Cut(kv, "="); k == name {
			return v
		}
	}
	return ""
}

func (f *fake) authorize(u *providertest.Upstream, w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	scopes := strings.Fields(q.Get("scope"))
	switch {
	case q.Get("response_type") != "code" && q.Get("response_type") != "code id_token":
		http.Error(w, "invalid_request: Invalid response_type.", http.StatusBadRequest)
		return
	case len(scopes) > 0 && q.Get("response_mode") != "form_post":
		http.Error(w, "invalid_request: response_mode must be form_post when name or email scope is requested.", http.StatusBadRequest)
		return
	case strings.Contains(rawParam(r.URL.RawQuery, "scope"), "+"):
		http.Error(w, "invalid_scope: use space separation and percent-encoding for multiple scopes (name%20email).", http.StatusBadRequest)
		return
	}
	for _, s := range scopes {
		if s != "name" && s != "email" && s != "openid" {
			http.Error(w, "invalid_scope: Invalid client scope.", http.StatusBadRequest)
			return
		}
	}
	rec := u.Record(providertest.AuthorizePath, r)
	back, err := url.Parse(rec.Header().Get("Location"))
	if rec.Code != http.StatusFound || err != nil {
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	fields := back.Query()
	fields.Del("iss")
	if fields.Has("code") {
		if usr, ok := u.CurrentUser(); ok && (slices.Contains(scopes, "name") || slices.Contains(scopes, "email")) {
			f.mu.Lock()
			first := !f.seen[usr.Subject]
			f.seen[usr.Subject] = true
			f.mu.Unlock()
			if first {
				fields.Set("user", userField(usr, scopes))
			}
		}
	}
	if q.Get("response_mode") != "form_post" {
		back.RawQuery = fields.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
		return
	}
	back.RawQuery = ""
	providertest.WriteFormPost(w, back.String(), fields)
}

// userField is the user form field: the name and email the user agreed
// to share.
func userField(usr providertest.User, scopes []string) string {
	str := func(k string) string { s, _ := usr.Claims[k].(string); return s }
	out := map[string]any{}
	if slices.Contains(scopes, "name") {
		first, last := str("given_name"), str("family_name")
		if first == "" && last == "" {
			first, last, _ = strings.Cut(str("name"), " ")
		}
		out["name"] = map[string]string{"firstName": first, "lastName": last}
	}
	if slices.Contains(scopes, "email") && str("email") != "" {
		out["email"] = str("email")
	}
	b, _ := json.Marshal(out)
	return string(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// checkSecret verifies a client secret JWT; it returns its claims, or nil.
func (f *fake) checkSecret(clientID, secret string) map[string]any {
	jws, err := jose.ParseSigned(secret, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || len(jws.Signatures) != 1 || jws.Signatures[0].Header.KeyID != f.s.KeyID || f.s.Key == nil {
		return nil
	}
	payload, err := jws.Verify(f.s.Key)
	if err != nil {
		return nil
	}
	var c struct {
		Iss string           `json:"iss"`
		Sub string           `json:"sub"`
		Aud jsonStringOrList `json:"aud"`
		Iat int64            `json:"iat"`
		Exp int64            `json:"exp"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return nil
	}
	now := f.s.Now()
	iat, exp := time.Unix(c.Iat, 0), time.Unix(c.Exp, 0)
	if c.Iss != f.s.TeamID || c.Sub != clientID || !slices.Contains([]string(c.Aud), Issuer) ||
		c.Iat == 0 || iat.After(now.Add(time.Minute)) || !exp.After(now) || exp.Sub(iat) > MaxSecretLifetime {
		return nil
	}
	var all map[string]any
	_ = json.Unmarshal(payload, &all)
	return all
}

type jsonStringOrList []string

func (l *jsonStringOrList) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*l = []string{s}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(l))
}

func (f *fake) token(u *providertest.Upstream, w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	if _, _, basic := r.BasicAuth(); basic {
		// client_secret_post only.
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	claims := f.checkSecret(r.PostForm.Get("client_id"), r.PostForm.Get("client_secret"))
	if claims == nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_client"})
		return
	}
	if f.s.OnClientSecret != nil {
		f.s.OnClientSecret(claims)
	}
	grant := r.PostForm.Get("grant_type")
	r.PostForm.Set("client_secret", providertest.ClientSecret)
	rec := u.Record(providertest.TokenPath, r)
	var generic map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &generic)
	if rec.Code != http.StatusOK {
		code, _ := generic["error"].(string)
		out := map[string]string{"error": code}
		if code == "invalid_grant" {
			out["error_description"] = "The code has expired or has been revoked."
			if grant == "refresh_token" {
				out["error_description"] = "The refresh token has expired or has been revoked."
			}
		}
		if code == "invalid_client" {
			out = map[string]string{"error": "invalid_client"}
		}
		writeJSON(w, http.StatusBadRequest, out)
		return
	}
	delete(generic, "scope")
	generic["token_type"] = "Bearer"
	generic["expires_in"] = 3600
	writeJSON(w, http.StatusOK, generic)
}
