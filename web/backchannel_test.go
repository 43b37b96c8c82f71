package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/storage"
)

// joseDir holds the npm package that verifies logout tokens with
// panva/jose (package.json pins jose exactly; package-lock.json locks it).
const joseDir = "testdata/jose"

// ensureJose returns the path of node with jose installed in joseDir.
func ensureJose(t *testing.T) string {
	t.Helper()
	return ensureNodePackage(t, joseDir)
}

// ensureNodePackage returns the path of node with the npm package in dir
// installed (testenv.NodePackage).
func ensureNodePackage(t *testing.T, dir string) string {
	t.Helper()
	return testenv.NodePackage(t, dir)
}

// joseVerify checks a logout token with jose against the fixture's JWKS
// (fetched by jose over HTTP) and returns its protected header and claims.
func joseVerify(t *testing.T, node string, f *fixture, audience, tok string) (header, claims map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "verify-logout-token.mjs", f.issuer+"/keys", f.issuer, audience)
	cmd.Dir = joseDir
	cmd.Stdin = strings.NewReader(tok)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("jose refused the logout token for %s: %v\n%s%s", audience, err, out, stderr.String())
	}
	var res struct {
		Header  map[string]any `json:"header"`
		Payload map[string]any `json:"payload"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("jose output %q: %v", out, err)
	}
	return res.Header, res.Payload
}

// joseRefuses checks that jose refuses tok for audience with code.
func joseRefuses(t *testing.T, node string, f *fixture, audience, tok, code string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "verify-logout-token.mjs", f.issuer+"/keys", f.issuer, audience)
	cmd.Dir = joseDir
	cmd.Stdin = strings.NewReader(tok)
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.HasPrefix(string(out), "invalid logout token: "+code+": ") {
		t.Errorf("jose for %s: %v %q, want a refusal with %s", audience, err, out, code)
	}
}

// receiver is a relying party's back-channel logout endpoint on
// 127.0.0.1: it records every POST and answers the statuses given in
// turn (the last one from then on).
type receiver struct {
	srv      *httptest.Server
	mu       sync.Mutex
	got      []delivery
	statuses []int
}

type delivery struct {
	method, contentType string
	form                url.Values
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	t.Helper()
	r := &receiver{statuses: statuses}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		form, _ := url.ParseQuery(string(body))
		r.mu.Lock()
		r.got = append(r.got, delivery{req.Method, req.Header.Get("Content-Type"), form})
		status := r.statuses[min(len(r.got), len(r.statuses))-1]
		r.mu.Unlock()
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

// TestBackchannelLogout: signing out sends every client of the session
// with a backchannel_logout_uri a logout token, which jose verifies
// against our JWKS (signature with the client's alg, typ logout+jwt, iss,
// aud, events, sid and sub, no nonce); a failing client is retried with
// backoff; a client that refuses is not, and the failure is audited.
func TestBackchannelLogout(t *testing.T) {
	node := ensureJose(t)
	for _, tc := range storeCases {
		t.Run(tc.name, func(t *testing.T) {
			f := newSessionFixture(t, tc.be)
			rsRecv := newReceiver(t, http.StatusOK)
			esRecv := newReceiver(t, http.StatusServiceUnavailable, http.StatusServiceUnavailable, http.StatusOK)
			refusing := newReceiver(t, http.StatusBadRequest)
			add := func(id, alg, uri string) {
				f.addClient(storage.Client{ID: id, RedirectURIs: []string{"https://" + id + ".example/cb"}, IDTokenSignedAlg: alg, BackchannelLogoutURI: uri}, id+"-secret")
			}
			add("bc-rs", "", rsRecv.srv.URL+"/backchannel")
			add("bc-es", "ES256", esRecv.srv.URL+"/backchannel?tenant=1")
			add("bc-refuses", "EdDSA", refusing.srv.URL+"/backchannel")
			add("bc-unused", "", rsRecv.srv.URL+"/unused")
			b := f.browser()
			tok, c := f.signedIn(t, b, f.rp("bc-rs", "bc-rs-secret", "https://bc-rs.example/cb", "openid"), "alice", alicePassword)
			for _, id := range []string{"bc-es", "bc-refuses", "app"} {
				cb := "https://" + id + ".example/cb"
				secret := id + "-secret"
				if id == "app" {
					cb, secret = appCB, appSecret
				}
				f.ridden(t, b, f.rp(id, secret, cb, "openid"))
			}
			sid := c["sid"].(string)

			start := time.Now()
			resp, page := b.getRaw(f.logoutURL("id_token_hint", tok.Extra("id_token").(string)))
			signedOutPage(t, resp, page)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			if err := f.broker.WaitLogoutDeliveries(ctx); err != nil {
				t.Fatal(err)
			}

			var tokens []string
			for _, rc := range []struct {
				name     string
				recv     *receiver
				client   string
				alg      string
				attempts int
			}{
				{"default alg", rsRecv, "bc-rs", "RS256", 1},
				{"ES256, fails twice first", esRecv, "bc-es", "ES256", 3},
				{"refuses", refusing, "bc-refuses", "EdDSA", 1},
			} {
				t.Run(rc.name, func(t *testing.T) {
					got := rc.recv.deliveries()
					if len(got) != rc.attempts {
						t.Fatalf("%d deliveries, want %d", len(got), rc.attempts)
					}
					for i, d := range got {
						if d.method != http.MethodPost || d.contentType != "application/x-www-form-urlencoded" || len(d.form) != 1 || len(d.form["logout_token"]) != 1 {
							t.Fatalf("delivery %d: %s %q %v", i, d.method, d.contentType, d.form)
						}
						if d.form.Get("logout_token") != got[0].form.Get("logout_token") {
							t.Errorf("attempt %d sent another token", i+1)
						}
					}
					lt := got[0].form.Get("logout_token")
					tokens = append(tokens, lt)
					header, claims := joseVerify(t, node, f, rc.client, lt)
					if header["alg"] != rc.alg || header["typ"] != "logout+jwt" {
						t.Errorf("header = %v", header)
					}
					iat, _ := claims["iat"].(float64)
					jti, _ := claims["jti"].(string)
					want := map[string]any{
						"iss": f.issuer, "aud": rc.client, "iat": iat, "exp": iat + 120, "jti": jti,
						"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
						"sub":    "u-alice", "sid": sid,
					}
					if !reflect.DeepEqual(claims, want) || jti == "" || iat != float64(f.clock.Now().Unix()) {
						t.Errorf("claims = %v, want %v", claims, want)
					}
				})
			}
			// Two retries waited 20 ms and 40 ms (the fixture's backoff).
			if d := time.Since(start); d < 60*time.Millisecond {
				t.Errorf("the retries did not back off: all done in %v", d)
			}
			failed := f.events(t, "logout.backchannel_failed")
			if len(failed) != 1 || failed[0].ClientID != "bc-refuses" || failed[0].UserID != "u-alice" ||
				failed[0].Data["sid"] != sid || failed[0].Data["error"] != "HTTP 400" {
				t.Errorf("logout.backchannel_failed events = %+v", failed)
			}
			logs := f.logs.String()
			for _, lt := range tokens {
				if strings.Contains(logs, lt) {
					t.Fatal("a logout token appears in the logs")
				}
			}
			if strings.Contains(logs, b.cookie("latchkey_auth")) {
				t.Fatal("a cookie value appears in the logs")
			}
			// The check is not a rubber stamp: the wrong audience, or a
			// token of ours that is not a logout token, is refused.
			joseRefuses(t, node, f, "bc-es", tokens[0], "ERR_JWT_CLAIM_VALIDATION_FAILED")
			joseRefuses(t, node, f, "bc-rs", tok.Extra("id_token").(string), "ERR_JWT_CLAIM_VALIDATION_FAILED")
		})
	}
}
