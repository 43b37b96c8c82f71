package providertest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// The fake upstream's registered client and endpoint paths.
const (
	ClientID     = "latchkey-test-client"
	ClientSecret = "upstream-client-secret-do-not-log"

	DiscoveryPath = "/.well-known/openid-configuration"
	AuthorizePath = "/authorize"
	TokenPath     = "/token"
	UserinfoPath  = "/userinfo"
	JWKSPath      = "/jwks"
)

// User is an account at the fake upstream. Claims (besides "sub") go into
// the ID token and the userinfo answer alike.
type User struct {
	Subject string
	Claims  map[string]any
}

// Alice is the user the fake signs in unless told otherwise.
func Alice() User {
	return User{Subject: "248289761001", Claims: map[string]any{
		"email":              "alice@example.com",
		"email_verified":     true,
		"name":               "Alice Example",
		"preferred_username": "alice",
		"groups":             []any{"staff", "admins"},
	}}
}

// Signing says how the fake signs ID tokens.
type Signing int

const (
	SignValid      Signing = iota // RS256 with the key in the JWKS
	SignUnknownKey                // RS256 with a key that is not in the JWKS
	SignAlgNone                   // alg "none", no signature
)

// Fault breaks one endpoint.
type Fault struct {
	// Hang blocks the request until the client gives up or the server
	// closes.
	Hang bool
	// RedirectTo answers 302 Found to this URL.
	RedirectTo string
	// Status answers this HTTP status with an empty JSON object.
	Status int
	// Delay holds the request this long (or until the client gives up or
	// the server closes) before it is answered as usual.
	Delay time.Duration
}

// Behavior changes how the fake answers.
type Behavior struct {
	// AuthorizeError makes /authorize redirect back with this error code
	// (and AuthorizeErrorDescription) instead of a code.
	AuthorizeError            string
	AuthorizeErrorDescription string
	// Signing of ID tokens.
	Signing Signing
	// Nonce, when set, replaces the request's nonce in ID tokens.
	Nonce string
	// OmitIDToken leaves id_token out of token responses.
	OmitIDToken bool
	// OmitIss leaves iss out of authorization responses.
	OmitIss bool
	// DiscoveryIssuer replaces the issuer in the discovery document;
	// IDTokenIssuer replaces iss in ID tokens (default: the URL).
	DiscoveryIssuer string
	IDTokenIssuer   string
	// DiscoveryOverrides replaces or adds discovery document members.
	DiscoveryOverrides map[string]any
	// UserinfoExtra adds or replaces claims (even sub) in userinfo
	// answers only.
	UserinfoExtra map[string]any
	// Faults break endpoints, by path (DiscoveryPath, TokenPath, ...).
	Faults map[string]Fault
}

type codeGrant struct {
	sub, redirectURI, nonce, challenge, method, scope string
}

// Upstream is the fake upstream identity provider.
type Upstream struct {
	// URL is the issuer: http://127.0.0.1:PORT.
	URL string

	t         testing.TB
	srv       *httptest.Server
	stop      chan struct{}
	closeOnce sync.Once

	key, otherKey *rsa.PrivateKey

	mu       sync.Mutex
	behavior Behavior
	users    map[string]User
	current  string
	codes    map[string]codeGrant
	access   map[string]string // access token -> sub
	refresh  map[string]string // refresh token -> sub
	secrets  []string
	requests map[string]int
	lastAuth url.Values
	lastTok  url.Values

	// Set by Options (options.go) before the server starts.
	mux           *http.ServeMux
	generic       map[string]http.HandlerFunc
	authorizePath string
	idIssuer      string
	idClaims      []string
	keepRefresh   bool
}

// NewUpstream starts a fake upstream on 127.0.0.1 with Alice as the only
// (and current) user. It is closed when the test ends. Options (options.go)
// make it speak one provider's dialect.
func NewUpstream(t testing.TB, opts ...Option) *Upstream {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	a := Alice()
	u := &Upstream{
		t:        t,
		stop:     make(chan struct{}),
		key:      key,
		users:    map[string]User{a.Subject: a},
		current:  a.Subject,
		codes:    map[string]codeGrant{},
		access:   map[string]string{},
		refresh:  map[string]string{},
		requests: map[string]int{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc(DiscoveryPath, u.faulty(DiscoveryPath, u.discovery))
	mux.HandleFunc(JWKSPath, u.faulty(JWKSPath, u.jwks))
	mux.HandleFunc(AuthorizePath, u.count(AuthorizePath, u.authorize))
	mux.HandleFunc(TokenPath, u.faulty(TokenPath, u.token))
	mux.HandleFunc(UserinfoPath, u.faulty(UserinfoPath, u.userinfo))
	u.mux = mux
	u.generic = map[string]http.HandlerFunc{
		DiscoveryPath: u.discovery, JWKSPath: u.jwks, AuthorizePath: u.authorize,
		TokenPath: u.token, UserinfoPath: u.userinfo,
	}
	u.authorizePath = AuthorizePath
	for _, o := range opts {
		o(u)
	}
	u.srv = httptest.NewServer(mux)
	u.URL = u.srv.URL
	t.Cleanup(u.Close)
	return u
}

// Close stops the server now (an upstream that is down). Requests that
// hang are released first.
func (u *Upstream) Close() {
	u.closeOnce.Do(func() {
		close(u.stop)
		u.srv.CloseClientConnections()
		u.srv.Close()
	})
}

// SetBehavior replaces the fake's behavior.
func (u *Upstream) SetBehavior(b Behavior) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.behavior = b
}

// AddUser adds or replaces a user.
func (u *Upstream) AddUser(usr User) {
	u.mu.Lock()
	defer u.mu.Unlock()
	usr.Claims = maps.Clone(usr.Claims)
	u.users[usr.Subject] = usr
}

// SetClaim changes one claim of a user.
func (u *Upstream) SetClaim(sub, name string, value any) {
	u.mu.Lock()
	defer u.mu.Unlock()
	usr, ok := u.users[sub]
	if !ok {
		u.t.Fatalf("providertest: no user %q", sub)
	}
	usr.Claims = maps.Clone(usr.Claims)
	usr.Claims[name] = value
	u.users[sub] = usr
}

// RemoveUser deletes a user: their refresh tokens get invalid_grant and
// their access tokens 401 at userinfo.
func (u *Upstream) RemoveUser(sub string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.users, sub)
}

// LoginAs makes /authorize sign in this user.
func (u *Upstream) LoginAs(sub string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.current = sub
}

// Requests returns how many requests reached path.
func (u *Upstream) Requests(path string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.requests[path]
}

// LastAuthorize returns the query of the last authorization request.
func (u *Upstream) LastAuthorize() url.Values {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.lastAuth
}

// LastToken returns the form of the last token request, without the
// client secret.
func (u *Upstream) LastToken() url.Values {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.lastTok
}

// Secrets returns every code, access, refresh and ID token the fake issued,
// and the client secret: none may appear in logs or errors.
func (u *Upstream) Secrets() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string{ClientSecret}, u.secrets...)
}

// RefreshTokens returns the refresh tokens currently valid.
func (u *Upstream) RefreshTokens() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Sorted(maps.Keys(u.refresh))
}

func (u *Upstream) count(path string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.requests[path]++
		u.mu.Unlock()
		h(w, r)
	}
}

func (u *Upstream) faulty(path string, h http.HandlerFunc) http.HandlerFunc {
	return u.count(path, func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		f := u.behavior.Faults[path]
		u.mu.Unlock()
		if f.Delay > 0 {
			select {
			case <-time.After(f.Delay):
			case <-r.Context().Done():
				return
			case <-u.stop:
				return
			}
		}
		switch {
		case f.Hang:
			select {
			case <-r.Context().Done():
			case <-u.stop:
			}
			return
		case f.RedirectTo != "":
			http.Redirect(w, r, f.RedirectTo, http.StatusFound)
			return
		case f.Status != 0:
			writeJSON(w, f.Status, map[string]any{})
			return
		}
		h(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func (u *Upstream) discovery(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	b := u.behavior
	u.mu.Unlock()
	iss := u.URL
	if b.DiscoveryIssuer != "" {
		iss = b.DiscoveryIssuer
	}
	doc := map[string]any{
		"issuer":                                         iss,
		"authorization_endpoint":                         u.URL + AuthorizePath,
		"token_endpoint":                                 u.URL + TokenPath,
		"userinfo_endpoint":                              u.URL + UserinfoPath,
		"jwks_uri":                                       u.URL + JWKSPath,
		"response_types_supported":                       []string{"code"},
		"subject_types_supported":                        []string{"public"},
		"id_token_signing_alg_values_supported":          []string{"RS256"},
		"code_challenge_methods_supported":               []string{"S256"},
		"token_endpoint_auth_methods_supported":          []string{"client_secret_basic", "client_secret_post"},
		"scopes_supported":                               []string{"openid", "email", "profile", "groups", "offline_access"},
		"authorization_response_iss_parameter_supported": !b.OmitIss,
	}
	for k, v := range b.DiscoveryOverrides {
		doc[k] = v
	}
	writeJSON(w, http.StatusOK, doc)
}

func (u *Upstream) jwks(w http.ResponseWriter, r *http.Request) {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: &u.key.PublicKey, KeyID: "valid-key", Algorithm: "RS256", Use: "sig",
	}}}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(set)
}

// Random returns n random bytes, base64url: a code, token or secret.
func Random() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (u *Upstream) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	u.mu.Lock()
	defer u.mu.Unlock()
	u.lastAuth = q
	if q.Get("client_id") != ClientID {
		http.Error(w, "unknown client_id", http.StatusBadRequest)
		return
	}
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || !redirect.IsAbs() {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	back := redirect.Query()
	if st := q.Get("state"); st != "" {
		back.Set("state", st)
	}
	if !u.behavior.OmitIss {
		back.Set("iss", u.URL)
	}
	sub := u.current
	if hint := q.Get("login_hint"); hint != "" {
		if _, ok := u.users[hint]; ok {
			sub = hint
		}
	}
	switch {
	case q.Get("response_type") != "code":
		back.Set("error", "unsupported_response_type")
	case u.behavior.AuthorizeError != "":
		back.Set("error", u.behavior.AuthorizeError)
		if u.behavior.AuthorizeErrorDescription != "" {
			back.Set("error_description", u.behavior.AuthorizeErrorDescription)
		}
	case q.Get("code_challenge") != "" && q.Get("code_challenge_method") != "S256":
		back.Set("error", "invalid_request")
		back.Set("error_description", "only S256")
	default:
		if _, ok := u.users[sub]; !ok {
			back.Set("error", "access_denied")
			break
		}
		code := Random()
		u.secrets = append(u.secrets, code)
		u.codes[code] = codeGrant{
			sub: sub, redirectURI: q.Get("redirect_uri"), nonce: q.Get("nonce"),
			challenge: q.Get("code_challenge"), method: q.Get("code_challenge_method"), scope: q.Get("scope"),
		}
		back.Set("code", code)
	}
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

// clientAuth checks client_secret_basic (form-urlencoded id and secret,
// RFC 6749 §2.3.1) or client_secret_post.
func clientAuth(r *http.Request) bool {
	id, secret, ok := r.BasicAuth()
	if ok {
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return false
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	return id == ClientID && subtle.ConstantTimeCompare([]byte(secret), []byte(ClientSecret)) == 1
}

func (u *Upstream) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "bad form")
		return
	}
	f := maps.Clone(r.PostForm)
	f.Del("client_secret")
	u.mu.Lock()
	defer u.mu.Unlock()
	u.lastTok = f
	if !clientAuth(r) {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	var sub, nonce, scope string
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		code := r.PostForm.Get("code")
		g, ok := u.codes[code]
		delete(u.codes, code) // single use
		if !ok {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "code invalid or already used")
			return
		}
		if r.PostForm.Get("redirect_uri") != g.redirectURI {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri mismatch")
			return
		}
		verifier := r.PostForm.Get("code_verifier")
		switch {
		case g.challenge == "" && verifier != "":
			oauthError(w, http.StatusBadRequest, "invalid_grant", "code_verifier without code_challenge")
			return
		case g.challenge != "":
			sum := sha256.Sum256([]byte(verifier))
			if base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
				oauthError(w, http.StatusBadRequest, "invalid_grant", "PKCE verification failed")
				return
			}
		}
		sub, nonce, scope = g.sub, g.nonce, g.scope
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		s, ok := u.refresh[rt]
		if !u.keepRefresh {
			delete(u.refresh, rt) // rotation: each refresh token works once
		}
		if !ok {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "refresh token invalid or already used")
			return
		}
		sub = s
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "")
		return
	}
	usr, ok := u.users[sub]
	if !ok {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "account not found")
		return
	}
	at := Random()
	u.access[at] = sub
	u.secrets = append(u.secrets, at)
	resp := map[string]any{
		"access_token": at,
		"token_type":   "Bearer",
		"expires_in":   300,
	}
	// WithoutRefreshRotation: a refresh keeps its token and gets no new one.
	if !(u.keepRefresh && r.PostForm.Get("grant_type") == "refresh_token") {
		rt := Random()
		u.refresh[rt] = sub
		u.secrets = append(u.secrets, rt)
		resp["refresh_token"] = rt
	}
	if scope != "" {
		resp["scope"] = scope
	}
	if !u.behavior.OmitIDToken {
		idt := u.idToken(usr, nonce)
		u.secrets = append(u.secrets, idt)
		resp["id_token"] = idt
	}
	writeJSON(w, http.StatusOK, resp)
}

// idToken signs an ID token for usr; u.mu is held.
func (u *Upstream) idToken(usr User, nonce string) string {
	now := time.Now()
	iss := u.URL
	if u.idIssuer != "" {
		iss = u.idIssuer
	}
	if u.behavior.IDTokenIssuer != "" {
		iss = u.behavior.IDTokenIssuer
	}
	claims := map[string]any{}
	for k, v := range usr.Claims {
		if u.idClaims == nil || slices.Contains(u.idClaims, k) {
			claims[k] = v
		}
	}
	claims["iss"] = iss
	claims["sub"] = usr.Subject
	claims["aud"] = ClientID
	claims["iat"] = now.Unix()
	claims["exp"] = now.Add(5 * time.Minute).Unix()
	if u.behavior.Nonce != "" {
		nonce = u.behavior.Nonce
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		u.t.Errorf("providertest: marshal claims: %v", err)
		return ""
	}
	switch u.behavior.Signing {
	case SignAlgNone:
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
		return h + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
	case SignUnknownKey:
		if u.otherKey == nil {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				u.t.Errorf("providertest: generate key: %v", err)
				return ""
			}
			u.otherKey = k
		}
		return sign(u.t, u.otherKey, "unknown-key", payload)
	default:
		return sign(u.t, u.key, "valid-key", payload)
	}
}

func sign(t testing.TB, key *rsa.PrivateKey, kid string, payload []byte) string {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Errorf("providertest: signer: %v", err)
		return ""
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Errorf("providertest: sign: %v", err)
		return ""
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Errorf("providertest: serialize: %v", err)
		return ""
	}
	return out
}

func (u *Upstream) userinfo(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	u.mu.Lock()
	defer u.mu.Unlock()
	sub, known := u.access[tok]
	usr, exists := u.users[sub]
	if !ok || !known || !exists {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		oauthError(w, http.StatusUnauthorized, "invalid_token", "")
		return
	}
	out := map[string]any{}
	for k, v := range usr.Claims {
		out[k] = v
	}
	out["sub"] = usr.Subject
	for k, v := range u.behavior.UserinfoExtra {
		out[k] = v
	}
	writeJSON(w, http.StatusOK, out)
}
