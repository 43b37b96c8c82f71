package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// upstreamOP is a minimal OpenID provider for the federated login
// scenario: discovery, JWKS (one ES256 key), an authorization endpoint
// that signs the browser in at once (no login page: the scenario measures
// Latchkey, not an upstream's password check) and a token endpoint that
// checks the client secret and PKCE and returns an ES256 ID token. It
// runs inside the load driver, on the load generator's core, on
// 127.0.0.1 only; codes are single use and live 60 s.
type upstreamOP struct {
	issuer, clientID, secret string
	signer                   jose.Signer
	jwks                     []byte
	discovery                []byte
	srv                      *http.Server

	mu    sync.Mutex
	codes map[string]upstreamCode
	next  int
}

type upstreamCode struct {
	sub, nonce, challenge, redirect string
	expires                         time.Time
}

// startUpstream serves the upstream OP on addr (host:port on loopback)
// until close.
func startUpstream(addr, clientID, secret string) (*upstreamOP, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || net.ParseIP(host) == nil || !net.ParseIP(host).IsLoopback() {
		return nil, fmt.Errorf("-upstream %q: want a loopback host:port", addr)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "up1"}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, err
	}
	op := &upstreamOP{issuer: "http://" + addr, clientID: clientID, secret: secret, signer: signer, codes: map[string]upstreamCode{}}
	op.jwks, _ = json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "up1", Algorithm: "ES256", Use: "sig"}}})
	op.discovery, _ = json.Marshal(map[string]any{
		"issuer": op.issuer, "authorization_endpoint": op.issuer + "/authorize", "token_endpoint": op.issuer + "/token",
		"jwks_uri": op.issuer + "/jwks", "response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
		"id_token_signing_alg_values_supported": []string{"ES256"}, "token_endpoint_auth_methods_supported": []string{"client_secret_basic"},
		"code_challenge_methods_supported": []string{"S256"}, "scopes_supported": []string{"openid", "profile", "email"},
	})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) { op.json(w, 200, op.discovery) })
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) { op.json(w, 200, op.jwks) })
	mux.HandleFunc("GET /authorize", op.authorize)
	mux.HandleFunc("POST /token", op.token)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("upstream: listen: %w", err)
	}
	op.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = op.srv.Serve(ln) }()
	return op, nil
}

func (op *upstreamOP) close() { _ = op.srv.Close() }

func (op *upstreamOP) json(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (op *upstreamOP) fail(w http.ResponseWriter, code, desc string) {
	b, _ := json.Marshal(map[string]string{"error": code, "error_description": desc})
	op.json(w, 400, b)
}

// authorize signs the browser in at once and sends it back with a code.
// The user is picked here, round robin over upstreamUsers: a pool of
// returning users (the first login of each creates its Latchkey user,
// later ones find the link).
func (op *upstreamOP) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch {
	case q.Get("client_id") != op.clientID || q.Get("response_type") != "code":
		http.Error(w, "unknown client or response_type", 400)
		return
	case q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("state") == "":
		http.Error(w, "PKCE S256 and state are required", 400)
		return
	case !strings.HasPrefix(q.Get("redirect_uri"), "http://127.0.0.1:"):
		http.Error(w, "redirect_uri not registered", 400)
		return
	}
	code := random(24)
	op.mu.Lock()
	now := time.Now()
	if len(op.codes) > 100_000 {
		for k, c := range op.codes {
			if now.After(c.expires) {
				delete(op.codes, k)
			}
		}
	}
	op.next++
	op.codes[code] = upstreamCode{sub: fmt.Sprintf("fed-%d", op.next%upstreamUsers), nonce: q.Get("nonce"), challenge: q.Get("code_challenge"),
		redirect: q.Get("redirect_uri"), expires: now.Add(time.Minute)}
	op.mu.Unlock()
	u, _ := url.Parse(q.Get("redirect_uri"))
	v := u.Query()
	v.Set("code", code)
	v.Set("state", q.Get("state"))
	u.RawQuery = v.Encode()
	w.Header().Set("Location", u.String())
	w.WriteHeader(http.StatusFound)
}

func (op *upstreamOP) token(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	}
	if !ok || id != op.clientID || subtle.ConstantTimeCompare([]byte(secret), []byte(op.secret)) != 1 {
		op.fail(w, "invalid_client", "client authentication failed")
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "authorization_code" {
		op.fail(w, "invalid_request", "want grant_type=authorization_code")
		return
	}
	op.mu.Lock()
	c, found := op.codes[r.PostForm.Get("code")]
	delete(op.codes, r.PostForm.Get("code"))
	op.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	switch {
	case !found || time.Now().After(c.expires):
		op.fail(w, "invalid_grant", "unknown or expired code")
		return
	case base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge:
		op.fail(w, "invalid_grant", "PKCE verification failed")
		return
	case r.PostForm.Get("redirect_uri") != c.redirect:
		op.fail(w, "invalid_grant", "redirect_uri differs")
		return
	}
	now := time.Now()
	claims, _ := json.Marshal(map[string]any{
		"iss": op.issuer, "sub": c.sub, "aud": op.clientID, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"nonce": c.nonce, "email": c.sub + "@upstream.example", "email_verified": true, "name": "Upstream " + c.sub,
	})
	jws, err := op.signer.Sign(claims)
	var idt string
	if err == nil {
		idt, err = jws.CompactSerialize()
	}
	if err != nil {
		http.Error(w, "sign: "+err.Error(), 500)
		return
	}
	b, _ := json.Marshal(map[string]any{"access_token": random(24), "token_type": "Bearer", "expires_in": 300, "id_token": idt})
	op.json(w, 200, b)
}

// upstreamUsers is how many distinct upstream users sign in.
const upstreamUsers = 64

// federatedLogin is a browser signing in from scratch through the upstream
// connector: the app may sign in only through it, so Latchkey's login step
// sends the browser upstream without a chooser page; the upstream sends it back
// to /callback/{id}, where Latchkey redeems the upstream code (a request
// from the server to the upstream's token endpoint, and its JWKS once),
// verifies the ES256 ID token, links the user, starts the session and
// redirects to the app with a code; then the app's code exchange.
func federatedLogin(e *env, c, up *conn, rec *stepTimes) (tokenResponse, error) {
	clear(c.cookies)
	a := newAuthorization(e.creds.Upstream.AppClient, e.fedAuth, e.creds.RedirectURI)
	step := rec.timer()
	resp, err := a.begin(e, c, step, 303)
	if err != nil {
		return tokenResponse{}, err
	}
	upPath, ok := strings.CutPrefix(resp.location, "http://"+up.host)
	if !ok || !strings.HasPrefix(upPath, "/authorize?") {
		return tokenResponse{}, fmt.Errorf("GET /login: redirected to %q, not upstream", resp.location)
	}
	// The upstream's answer (on the load core) is not a step of its own.
	resp, err = up.do(&request{method: "GET", path: upPath, wantBody: true})
	if err := expect("upstream GET /authorize", resp, err, 302); err != nil {
		return tokenResponse{}, err
	}
	cbPath, ok := strings.CutPrefix(resp.location, e.base)
	if !ok || !strings.HasPrefix(cbPath, "/callback/") {
		return tokenResponse{}, fmt.Errorf("upstream redirected to %q, not Latchkey's callback", resp.location)
	}
	t0 := time.Now()
	resp, err = c.do(&request{method: "GET", path: cbPath, cookies: true, wantBody: true})
	step(2, t0)
	if err := expect("GET /callback", resp, err, 303); err != nil {
		return tokenResponse{}, err
	}
	return a.redeem(c, "GET /callback", resp.location, func(t0 time.Time) { step(3, t0) })
}
