package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// creds is what bench/run.sh made with the CLI (a JSON file, -creds).
type creds struct {
	CCClient    string   `json:"cc_client"`
	CCSecret    string   `json:"cc_secret"`
	CCScope     string   `json:"cc_scope"`
	AppClient   string   `json:"app_client"`
	AppSecret   string   `json:"app_secret"`
	RedirectURI string   `json:"redirect_uri"`
	Users       []string `json:"users"`
	Password    string   `json:"password"`
	// FastUsers have the same password, hashed with tiny argon2id
	// parameters (load cheaphash), so a login costs what it costs
	// without the password hash.
	FastUsers []string `json:"fast_users"`
	// Upstream is the OpenID provider the driver serves itself for the
	// federated login scenario, and the connector that points at it.
	Upstream struct {
		Addr         string `json:"addr"` // 127.0.0.1:port
		Connector    string `json:"connector"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
		// AppClient may sign in only through the upstream.
		AppClient string `json:"app_client"`
		AppSecret string `json:"app_secret"`
	} `json:"upstream"`
}

// env is what every scenario needs.
type env struct {
	addr, host string // host:port to dial; Host header
	base       string // http://host
	creds      creds
	ccAuth     string // Authorization header value
	appAuth    string
	fedAuth    string
	nextUser   atomic.Uint64
}

// upstreamConn is a connection to the driver's own upstream OP.
func (e *env) upstreamConn() *conn { return newConn(e.creds.Upstream.Addr, e.creds.Upstream.Addr) }

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

func (e *env) conn() *conn { return newConn(e.addr, e.host) }

// user picks the next user, round robin; fast picks from FastUsers.
func (e *env) user(fast bool) string {
	u := e.creds.Users
	if fast {
		u = e.creds.FastUsers
	}
	return u[int(e.nextUser.Add(1)-1)%len(u)]
}

// scenario is one workload. An op is one request, or for login one whole
// browser login (four requests).
type scenario struct {
	name string
	// what an op is, the requests it makes, and the ES256 signatures
	// and verifications the server computes for it (the crypto limit).
	unit                       string
	requests                   int
	signs, verifies, passwords int
	target                     string
	// setup runs once; newWorker makes the state of one worker (its own
	// connection, its own refresh token chain).
	setup     func(e *env) error
	newWorker func(e *env) (worker, error)
	// steps names the requests of an op whose latencies are also kept.
	steps []string
}

// worker runs ops; timings of steps go to rec (nil: not recorded).
type worker interface {
	op(rec *stepTimes) error
}

type stepTimes struct{ d [4]time.Duration }

type workerFunc func(rec *stepTimes) error

func (f workerFunc) op(rec *stepTimes) error { return f(rec) }

func scenarios() []*scenario {
	var ccToken string
	return []*scenario{
		{
			name: "discovery", unit: "request", requests: 1, target: ">= 15,000/s",
			newWorker: func(e *env) (worker, error) {
				c := e.conn()
				r := &request{method: "GET", path: "/.well-known/openid-configuration"}
				return workerFunc(func(*stepTimes) error {
					resp, err := c.do(r)
					return expect("discovery", resp, err, 200)
				}), nil
			},
		},
		{
			name: "jwks", unit: "request", requests: 1, target: ">= 15,000/s",
			newWorker: func(e *env) (worker, error) {
				c := e.conn()
				r := &request{method: "GET", path: "/keys"}
				return workerFunc(func(*stepTimes) error {
					resp, err := c.do(r)
					return expect("jwks", resp, err, 200)
				}), nil
			},
		},
		{
			name: "client_credentials", unit: "request", requests: 1, signs: 1, target: ">= 50% of raw ES256 signing",
			newWorker: func(e *env) (worker, error) {
				c := e.conn()
				r := &request{method: "POST", path: "/token", wantBody: true,
					header: [][2]string{{"Authorization", e.ccAuth}},
					body:   []byte(url.Values{"grant_type": {"client_credentials"}, "scope": {e.creds.CCScope}}.Encode())}
				return workerFunc(func(*stepTimes) error {
					resp, err := c.do(r)
					if err := expect("client_credentials", resp, err, 200); err != nil {
						return err
					}
					if !bytes.Contains(resp.body, []byte(`"access_token"`)) {
						return fmt.Errorf("client_credentials: no access_token in %s", resp.body)
					}
					return nil
				}), nil
			},
		},
		{
			name: "introspection", unit: "request", requests: 1, verifies: 1, target: ">= 5,000/s",
			setup: func(e *env) error {
				tok, err := clientCredentialsToken(e)
				ccToken = tok
				return err
			},
			newWorker: func(e *env) (worker, error) {
				c := e.conn()
				r := &request{method: "POST", path: "/introspect", wantBody: true,
					header: [][2]string{{"Authorization", e.ccAuth}},
					body:   []byte(url.Values{"token": {ccToken}}.Encode())}
				return workerFunc(func(*stepTimes) error {
					resp, err := c.do(r)
					if err := expect("introspection", resp, err, 200); err != nil {
						return err
					}
					if !bytes.Contains(resp.body, []byte(`"active":true`)) {
						return fmt.Errorf("introspection: token not active: %s", resp.body)
					}
					return nil
				}), nil
			},
		},
		{
			name: "refresh", unit: "request", requests: 1, signs: 2, target: ">= 1,500/s",
			newWorker: func(e *env) (worker, error) {
				c := e.conn()
				tokens, err := login(e, c, nil, len(e.creds.FastUsers) > 0)
				if err != nil {
					return nil, fmt.Errorf("login for a refresh token: %w", err)
				}
				rt := tokens.RefreshToken
				return workerFunc(func(*stepTimes) error {
					next, err := refresh(e, c, rt)
					if err != nil {
						return err
					}
					rt = next
					return nil
				}), nil
			},
		},
		{
			name: "login", unit: "login", requests: 4, signs: 2, passwords: 1, target: "argon2id behind its bound",
			steps: []string{"GET /authorize", "GET /login", "POST /login", "POST /token"},
			newWorker: func(e *env) (worker, error) {
				c := e.conn()
				return workerFunc(func(rec *stepTimes) error {
					_, err := login(e, c, rec, false)
					return err
				}), nil
			},
		},
		{
			name: "login_fasthash", unit: "login", requests: 4, signs: 2, target: "<= 2 ms CPU without the hash",
			steps: []string{"GET /authorize", "GET /login", "POST /login", "POST /token"},
			newWorker: func(e *env) (worker, error) {
				if len(e.creds.FastUsers) == 0 {
					return nil, errors.New("no fast_users in -creds (load cheaphash)")
				}
				c := e.conn()
				return workerFunc(func(rec *stepTimes) error {
					_, err := login(e, c, rec, true)
					return err
				}), nil
			},
		},
		{
			name: "login_federated", unit: "login", requests: 4, signs: 2, verifies: 1, target: ">= 300/s",
			steps: []string{"GET /authorize", "GET /login", "GET /callback", "POST /token"},
			newWorker: func(e *env) (worker, error) {
				if e.creds.Upstream.Addr == "" {
					return nil, errors.New("no upstream in -creds (bench/run.sh configures one)")
				}
				c, up := e.conn(), e.upstreamConn()
				return workerFunc(func(rec *stepTimes) error {
					_, err := federatedLogin(e, c, up, rec)
					return err
				}), nil
			},
		},
	}
}

// tokenResponse is the token endpoint's answer.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	IDToken      string `json:"id_token"`
	RefreshToken string `json:"refresh_token"`
}

func clientCredentialsToken(e *env) (string, error) {
	c := e.conn()
	defer c.close()
	resp, err := c.do(&request{method: "POST", path: "/token", wantBody: true,
		header: [][2]string{{"Authorization", e.ccAuth}},
		body:   []byte(url.Values{"grant_type": {"client_credentials"}, "scope": {e.creds.CCScope}}.Encode())})
	if err := expect("client_credentials", resp, err, 200); err != nil {
		return "", err
	}
	var t tokenResponse
	if err := json.Unmarshal(resp.body, &t); err != nil || t.AccessToken == "" {
		return "", fmt.Errorf("client_credentials: %v: %s", err, resp.body)
	}
	return t.AccessToken, nil
}

func refresh(e *env, c *conn, rt string) (string, error) {
	resp, err := c.do(&request{method: "POST", path: "/token", wantBody: true,
		header: [][2]string{{"Authorization", e.appAuth}},
		body:   []byte(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}.Encode())})
	if err := expect("refresh", resp, err, 200); err != nil {
		return "", err
	}
	var t tokenResponse
	if err := json.Unmarshal(resp.body, &t); err != nil || t.RefreshToken == "" || t.AccessToken == "" {
		return "", fmt.Errorf("refresh: %v: %s", err, resp.body)
	}
	return t.RefreshToken, nil
}

var hiddenRE = regexp.MustCompile(`name="(req|csrf)" value="([^"]*)"`)

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// login is a browser signing in from scratch (no cookies): the app's
// authorization request with PKCE, our login page, the password form, the
// redirect back with the code, and the app's code exchange.
func login(e *env, c *conn, rec *stepTimes, fast bool) (tokenResponse, error) {
	clear(c.cookies)
	a := newAuthorization(e.creds.AppClient, e.appAuth, e.creds.RedirectURI)
	step := rec.timer()

	resp, err := a.begin(e, c, step, 200)
	if err != nil {
		return tokenResponse{}, err
	}
	form := url.Values{}
	for _, m := range hiddenRE.FindAllSubmatch(resp.body, -1) {
		form.Set(string(m[1]), string(m[2]))
	}
	if form.Get("req") == "" || form.Get("csrf") == "" {
		return tokenResponse{}, fmt.Errorf("GET /login: no req/csrf fields: %w", errNoField)
	}
	form.Set("username", e.user(fast))
	form.Set("password", e.creds.Password)

	t0 := time.Now()
	resp, err = c.do(&request{method: "POST", path: "/login", cookies: true, wantBody: true, body: []byte(form.Encode())})
	step(2, t0)
	if err := expect("POST /login", resp, err, 303); err != nil {
		return tokenResponse{}, err
	}
	return a.redeem(c, "POST /login", resp.location, func(t0 time.Time) { step(3, t0) })
}

// authorization is one authorization code + PKCE request of an app.
type authorization struct {
	client, auth, redirectURI string
	verifier, state, nonce    string
}

func newAuthorization(client, auth, redirectURI string) *authorization {
	return &authorization{client: client, auth: auth, redirectURI: redirectURI,
		verifier: random(32), state: random(12), nonce: random(12)}
}

// path is the /authorize request (PKCE S256).
func (a *authorization) path() string {
	sum := sha256.Sum256([]byte(a.verifier))
	q := url.Values{
		"response_type": {"code"}, "client_id": {a.client}, "redirect_uri": {a.redirectURI},
		"scope": {"openid profile email offline_access"}, "state": {a.state}, "nonce": {a.nonce},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	return "/authorize?" + q.Encode()
}

// begin sends the browser to /authorize and follows its redirect to the
// login step, which must answer loginStatus (steps 0 and 1).
func (a *authorization) begin(e *env, c *conn, step func(int, time.Time), loginStatus int) (response, error) {
	t0 := time.Now()
	resp, err := c.do(&request{method: "GET", path: a.path(), cookies: true, wantBody: true})
	step(0, t0)
	if err := expect("GET /authorize", resp, err, 303); err != nil {
		return response{}, err
	}
	loginPath, ok := strings.CutPrefix(resp.location, e.base)
	if !strings.HasPrefix(loginPath, "/login?") {
		return response{}, fmt.Errorf("GET /authorize: redirected to %q, not the login step (%v)", resp.location, ok)
	}
	t0 = time.Now()
	resp, err = c.do(&request{method: "GET", path: loginPath, cookies: true, wantBody: true})
	step(1, t0)
	if err := expect("GET /login", resp, err, loginStatus); err != nil {
		return response{}, err
	}
	return resp, nil
}

// redeem takes the code from the redirect to the app (location, the answer
// to what) and exchanges it as the app does; timed is called with the
// exchange's start when it has its answer.
func (a *authorization) redeem(c *conn, what, location string, timed func(time.Time)) (tokenResponse, error) {
	cb, err := url.Parse(location)
	if err != nil || !strings.HasPrefix(location, a.redirectURI+"?") {
		return tokenResponse{}, fmt.Errorf("%s: redirected to %q, not the app", what, location)
	}
	code := cb.Query().Get("code")
	if code == "" || cb.Query().Get("state") != a.state {
		return tokenResponse{}, fmt.Errorf("%s: callback without code or with another state: %s", what, cb.RawQuery)
	}
	t0 := time.Now()
	resp, err := c.do(&request{method: "POST", path: "/token", wantBody: true,
		header: [][2]string{{"Authorization", a.auth}},
		body: []byte(url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {a.redirectURI}, "code_verifier": {a.verifier}}.Encode())})
	timed(t0)
	if err := expect("POST /token (code)", resp, err, 200); err != nil {
		return tokenResponse{}, err
	}
	var t tokenResponse
	if err := json.Unmarshal(resp.body, &t); err != nil || t.IDToken == "" || t.RefreshToken == "" {
		return tokenResponse{}, fmt.Errorf("POST /token (code): %v: %s", err, resp.body)
	}
	return t, nil
}

// timer records step i's latency from t0 (nothing when rec is nil).
func (rec *stepTimes) timer() func(i int, t0 time.Time) {
	return func(i int, t0 time.Time) {
		if rec != nil {
			rec.d[i] = time.Since(t0)
		}
	}
}

// jwtAlg is the alg of a compact JWS's header.
func jwtAlg(tok string) string {
	head, _, _ := strings.Cut(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return ""
	}
	var h struct{ Alg string }
	_ = json.Unmarshal(raw, &h)
	return h.Alg
}

// checkSetup makes sure the run measures what it says: the app's ID
// tokens and every access token are ES256.
func checkSetup(e *env) error {
	c := e.conn()
	defer c.close()
	t, err := login(e, c, nil, false)
	if err != nil {
		return err
	}
	if a := jwtAlg(t.IDToken); a != "ES256" {
		return fmt.Errorf("the app's ID token is %s, not ES256: register id_token_signed_response_alg ES256", a)
	}
	if a := jwtAlg(t.AccessToken); a != "ES256" {
		return fmt.Errorf("access tokens are %s, not ES256", a)
	}
	cc, err := clientCredentialsToken(e)
	if err != nil {
		return err
	}
	if a := jwtAlg(cc); a != "ES256" {
		return fmt.Errorf("client_credentials access tokens are %s, not ES256", a)
	}
	return nil
}

// graceResult is the 20-parallel-refreshes check.
type graceResult struct {
	Rounds, Parallel, Errors, Mismatches int
	FirstError                           string `json:",omitempty"`
}

// graceRace presents one refresh token from parallel connections at once,
// rounds times, each round with a new family: every answer must be 200
// with the same successor (the grace window, DESIGN-NOTES.md).
func graceRace(e *env, rounds, parallel int) (graceResult, error) {
	res := graceResult{Rounds: rounds, Parallel: parallel}
	conns := make([]*conn, parallel)
	for i := range conns {
		conns[i] = e.conn()
		defer conns[i].close()
	}
	for range rounds {
		t, err := login(e, conns[0], nil, len(e.creds.FastUsers) > 0)
		if err != nil {
			return res, err
		}
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			seen  = map[string]bool{}
			start = make(chan struct{})
		)
		for _, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				next, err := refresh(e, c, t.RefreshToken)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					res.Errors++
					if res.FirstError == "" {
						res.FirstError = err.Error()
					}
					return
				}
				seen[next] = true
			}()
		}
		close(start)
		wg.Wait()
		if len(seen) > 1 {
			res.Mismatches++
		}
	}
	if res.Errors > 0 || res.Mismatches > 0 {
		return res, errors.New("refreshes inside the grace window failed")
	}
	return res, nil
}
