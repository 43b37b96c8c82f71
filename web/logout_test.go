package web_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/storage"
)

// logoutURL is the end_session_endpoint with parameters (pairs).
func (f *fixture) logoutURL(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return f.issuer + "/logout?" + v.Encode()
}

// confirmPage checks that resp is the sign-out confirmation and returns
// its hidden fields.
func confirmPage(t *testing.T, resp *http.Response, page string) url.Values {
	t.Helper()
	if resp.StatusCode != 200 || !strings.Contains(page, `action="/logout/confirm"`) {
		t.Fatalf("want the sign-out confirmation, got %d (Location %q)\n%s", resp.StatusCode, resp.Header.Get("Location"), page)
	}
	assertHTMLHeaders(t, resp.Header)
	return hidden(t, page)
}

// signedOutPage checks the "signed out" page without front-channel
// frames.
func signedOutPage(t *testing.T, resp *http.Response, page string) {
	t.Helper()
	if resp.StatusCode != 200 || !strings.Contains(page, "<h1>Signed out</h1>") || strings.Contains(page, "<iframe") {
		t.Fatalf("want the signed-out page, got %d (Location %q)\n%s", resp.StatusCode, resp.Header.Get("Location"), page)
	}
	assertHTMLHeaders(t, resp.Header)
}

// assertRedirect: a 303 to exactly want.
func assertRedirect(t *testing.T, resp *http.Response, page, want string) {
	t.Helper()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
		t.Fatalf("want 303 to %s, got %d %q\n%s", want, resp.StatusCode, resp.Header.Get("Location"), page)
	}
	assertHeaders(t, resp.Header, map[string]string{"Cache-Control": "no-store"})
}

const logoutErrTitle = "Sign-out not possible"

// TestRPInitiatedLogout: the end_session_endpoint (RP-Initiated Logout
// 1.0) on every store.
func TestRPInitiatedLogout(t *testing.T) {
	for _, tc := range storeCases {
		t.Run(tc.name, func(t *testing.T) {
			f := newSessionFixture(t, tc.be)
			f.addClient(storage.Client{ID: "other", RedirectURIs: []string{"https://other.example/cb"}, PostLogoutRedirectURIs: []string{"https://other.example/bye"}}, "other-secret")
			conf := f.rp("app", appSecret, appCB, "openid")
			other := f.rp("other", "other-secret", "https://other.example/cb", "openid")

			// A valid hint, a registered redirect and state: signed out at
			// once, back to the app with the state.
			t.Run("hint", func(t *testing.T) {
				b := f.browser()
				tok, c := f.signedIn(t, b, conf, "alice", alicePassword)
				hint := tok.Extra("id_token").(string)
				resp, page := b.getRaw(f.logoutURL("id_token_hint", hint, "post_logout_redirect_uri", appBye, "state", "s&t=1", "ui_locales", "fr"))
				assertRedirect(t, resp, page, appBye+"?state=s%26t%3D1")
				if got := setCookieHeader(resp, "latchkey_session"); got != "latchkey_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax" {
					t.Errorf("session cookie not cleared: %q", got)
				}
				assertParams(t, noneAnswer(t, b, conf), loginRequired(f))
				es := f.events(t, "session.ended")
				last := es[len(es)-1]
				if last.UserID != "u-alice" || last.Actor != "user:u-alice" || last.Data["sid"] != c["sid"] || last.Data["reason"] != "logout" ||
					!reflect.DeepEqual(last.Data["clients"], []any{"app"}) {
					t.Errorf("session.ended = %+v", last)
				}
				// The same hint again: the session is gone; signed out.
				resp, page = b.getRaw(f.logoutURL("id_token_hint", hint, "post_logout_redirect_uri", appBye))
				assertRedirect(t, resp, page, appBye)
			})

			// POST works as GET; without a redirect the signed-out page.
			t.Run("post without redirect", func(t *testing.T) {
				b := f.browser()
				tok, _ := f.signedIn(t, b, conf, "alice", alicePassword)
				// A cross-site form POST carries no SameSite=Lax cookie: the
				// POST answers 303 to a GET on our origin, which does.
				req, err := http.NewRequest(http.MethodPost, f.issuer+"/logout", strings.NewReader(url.Values{"id_token_hint": {tok.Extra("id_token").(string)}}.Encode()))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				resp, page := doRequest(t, req) // no cookies at all
				resume := resp.Header.Get("Location")
				if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resume, "/logout?resume=") {
					t.Fatalf("POST /logout: %d %q", resp.StatusCode, resume)
				}
				if strings.Contains(resume, "id_token_hint") {
					t.Error("the hint is in the redirect URL")
				}
				resp, page = b.get(f.issuer + resume)
				signedOutPage(t, resp, page)
				if !strings.Contains(page, "You have signed out of <strong>The App</strong>") {
					t.Errorf("signed-out page does not name the app:\n%s", page)
				}
				assertParams(t, noneAnswer(t, b, conf), loginRequired(f))
				resp, page = b.get(f.issuer + resume)
				assertErrorPage(t, resp, page, 400, "Sign-out expired", "The sign-out request has expired or was already completed. Go back to the application and sign out again.")
				// Through the browser (following the redirect) too.
				tok, _ = f.signedIn(t, b, conf, "alice", alicePassword)
				resp, page = b.post(f.issuer+"/logout", url.Values{"id_token_hint": {tok.Extra("id_token").(string)}, "post_logout_redirect_uri": {appBye}})
				assertRedirect(t, resp, page, appBye)
			})

			// An expired hint still identifies the session.
			t.Run("expired hint", func(t *testing.T) {
				b := f.browser()
				tok, _ := f.signedIn(t, b, conf, "alice", alicePassword)
				f.clock.Advance(2 * time.Hour)
				resp, page := b.getRaw(f.logoutURL("id_token_hint", tok.Extra("id_token").(string), "post_logout_redirect_uri", appBye))
				assertRedirect(t, resp, page, appBye)
				assertParams(t, noneAnswer(t, b, conf), loginRequired(f))
			})

			// Errors are pages, never redirects; the session lives on.
			t.Run("refused", func(t *testing.T) {
				b := f.browser()
				tok, _ := f.signedIn(t, b, conf, "alice", alicePassword)
				hint := tok.Extra("id_token").(string)
				f.ridden(t, b, other)
				parts := strings.Split(hint, ".")
				forged := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))
				for _, rc := range []struct {
					name, url, msg string
				}{
					{"unregistered redirect", f.logoutURL("id_token_hint", hint, "post_logout_redirect_uri", "https://evil.example/bye", "state", "x"),
						"The address to return to after signing out is not registered for this application."},
					{"another client's redirect", f.logoutURL("id_token_hint", hint, "post_logout_redirect_uri", "https://other.example/bye"),
						"The address to return to after signing out is not registered for this application."},
					{"redirect with trailing slash", f.logoutURL("client_id", "app", "post_logout_redirect_uri", appBye+"/"),
						"The address to return to after signing out is not registered for this application."},
					{"redirect without a client", f.logoutURL("post_logout_redirect_uri", appBye),
						"The sign-out request is not valid: it names an address to return to but not the application (send client_id or id_token_hint)."},
					{"client_id not the hint's", f.logoutURL("id_token_hint", hint, "client_id", "other", "post_logout_redirect_uri", "https://other.example/bye"),
						"The sign-out request is not valid: client_id does not match the ID token."},
					{"forged hint", f.logoutURL("id_token_hint", forged, "post_logout_redirect_uri", appBye),
						"The sign-out request is not valid: the application sent an ID token this server cannot confirm."},
					{"access token as hint", f.logoutURL("id_token_hint", tok.AccessToken),
						"The sign-out request is not valid: the application sent an ID token this server cannot confirm."},
					{"unknown client", f.logoutURL("client_id", "nope", "post_logout_redirect_uri", appBye),
						"The application that sent you here is not registered."},
				} {
					t.Run(rc.name, func(t *testing.T) {
						resp, page := b.getRaw(rc.url)
						assertErrorPage(t, resp, page, 400, logoutErrTitle, rc.msg)
					})
				}
				resp, page := b.getRaw(f.issuer + "/logout?state=a&state=b")
				assertErrorPage(t, resp, page, 400, "Invalid request", "The sign-out request repeats a parameter.")
				f.ridden(t, b, conf) // still signed in
			})

			// No hint: a confirmation page; its form is bound to this
			// browser and single use.
			t.Run("confirmation", func(t *testing.T) {
				b := f.browser()
				f.signedIn(t, b, conf, "alice", alicePassword)
				resp, page := b.get(f.logoutURL("client_id", "app", "post_logout_redirect_uri", appBye, "state", "st8"))
				form := confirmPage(t, resp, page)
				if !strings.Contains(page, "You are signed in as <strong>alice</strong>. <strong>The App</strong> asks to sign you out.") {
					t.Errorf("confirmation text:\n%s", page)
				}

				forged := cloneValues(form)
				forged.Set("csrf", "x")
				forged.Set("action", "logout")
				resp, page = b.post(f.issuer+"/logout/confirm", forged)
				assertErrorPage(t, resp, page, 400, "Form expired", "The sign-out form was not valid. Go back to the application and sign out again.")
				// Another browser (no binding cookie), even with the form.
				form.Set("action", "logout")
				elsewhere := f.browser()
				resp, page = elsewhere.post(f.issuer+"/logout/confirm", form)
				assertErrorPage(t, resp, page, 400, "Form expired", "The sign-out form was not valid. Go back to the application and sign out again.")
				f.ridden(t, b, conf) // still signed in

				resp, page = b.post(f.issuer+"/logout/confirm", form)
				assertRedirect(t, resp, page, appBye+"?state=st8")
				assertParams(t, noneAnswer(t, b, conf), loginRequired(f))
				resp, page = b.post(f.issuer+"/logout/confirm", form)
				assertErrorPage(t, resp, page, 400, "Sign-out expired", "The sign-out request has expired or was already completed. Go back to the application and sign out again.")
			})

			t.Run("stay signed in", func(t *testing.T) {
				b := f.browser()
				f.signedIn(t, b, conf, "alice", alicePassword)
				resp, page := b.get(f.issuer + "/logout")
				form := confirmPage(t, resp, page)
				if !strings.Contains(page, "You are signed in as <strong>alice</strong>.</p>") {
					t.Errorf("confirmation without a client:\n%s", page)
				}
				form.Set("action", "stay")
				resp, page = b.post(f.issuer+"/logout/confirm", form)
				assertErrorPage(t, resp, page, 200, "You are still signed in", "You chose not to sign out. You can close this page.")
				f.ridden(t, b, conf)
			})

			// A hint of a session that is no longer this browser's (stale):
			// ask.
			t.Run("stale hint", func(t *testing.T) {
				b := f.browser()
				tok, _ := f.signedIn(t, b, conf, "alice", alicePassword)
				old := tok.Extra("id_token").(string)
				resp, page := b.getRaw(f.logoutURL("id_token_hint", old))
				signedOutPage(t, resp, page)
				f.signedIn(t, b, conf, "alice", alicePassword) // a new session
				resp, page = b.get(f.logoutURL("id_token_hint", old, "post_logout_redirect_uri", appBye))
				form := confirmPage(t, resp, page)
				form.Set("action", "logout")
				resp, page = b.post(f.issuer+"/logout/confirm", form)
				assertRedirect(t, resp, page, appBye)
			})

			// A browser without a session is signed out already.
			t.Run("no session", func(t *testing.T) {
				b := f.browser()
				resp, page := b.getRaw(f.logoutURL("client_id", "app", "post_logout_redirect_uri", appBye, "state", "z"))
				assertRedirect(t, resp, page, appBye+"?state=z")
				resp, page = b.getRaw(f.issuer + "/logout")
				signedOutPage(t, resp, page)
			})
		})
	}
}

// setCookieHeader returns the Set-Cookie line for name, "" if none.
func setCookieHeader(resp *http.Response, name string) string {
	for _, sc := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, name+"=") {
			return sc
		}
	}
	return ""
}

var iframeRE = regexp.MustCompile(`<iframe class="frontchannel" src="([^"]*)"`)

// TestFrontChannelLogout: the signed-out page frames every signed-in
// client's frontchannel_logout_uri with iss and sid; its CSP allows
// exactly those origins as frames and is never framed itself.
func TestFrontChannelLogout(t *testing.T) {
	f := newSessionFixture(t, backends{})
	const oneCB, twoCB = "https://one.example/cb", "https://two.example:8443/cb"
	f.addClient(storage.Client{ID: "one", RedirectURIs: []string{oneCB}, PostLogoutRedirectURIs: []string{"https://one.example/bye"},
		FrontchannelLogoutURI: "https://one.example/fc?app=1"}, "one-secret")
	f.addClient(storage.Client{ID: "two", RedirectURIs: []string{twoCB}, FrontchannelLogoutURI: "https://two.example:8443/fc"}, "two-secret")
	f.addClient(storage.Client{ID: "unused", RedirectURIs: []string{"https://unused.example/cb"}, FrontchannelLogoutURI: "https://unused.example/fc"}, "u-secret")
	one := f.rp("one", "one-secret", oneCB, "openid")
	two := f.rp("two", "two-secret", twoCB, "openid")
	app := f.rp("app", appSecret, appCB, "openid")

	for _, tc := range []struct {
		name, redirect string
		csp            string
	}{
		{"with redirect", "https://one.example/bye",
			"default-src 'none'; style-src 'self'; img-src 'self' data:; frame-src https://one.example https://two.example:8443; script-src 'sha256-" + signedOutScriptHash + "'; frame-ancestors 'none'; base-uri 'none'"},
		{"without redirect", "",
			"default-src 'none'; style-src 'self'; img-src 'self' data:; frame-src https://one.example https://two.example:8443; frame-ancestors 'none'; base-uri 'none'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := f.browser()
			tok, c := f.signedIn(t, b, one, "alice", alicePassword)
			f.ridden(t, b, app)
			f.ridden(t, b, two)
			sid := c["sid"].(string)
			params := []string{"id_token_hint", tok.Extra("id_token").(string), "state", "s1"}
			if tc.redirect != "" {
				params = append(params, "post_logout_redirect_uri", tc.redirect)
			}
			resp, page := b.getRaw(f.logoutURL(params...))
			if resp.StatusCode != 200 {
				t.Fatalf("logout: %d %q\n%s", resp.StatusCode, resp.Header.Get("Location"), page)
			}
			assertHeaders(t, resp.Header, map[string]string{"Content-Security-Policy": tc.csp, "X-Frame-Options": "DENY",
				"Cache-Control": "no-store", "Content-Type": "text/html; charset=utf-8"})
			var srcs []string
			for _, m := range iframeRE.FindAllStringSubmatch(page, -1) {
				srcs = append(srcs, m[1])
			}
			iss := url.QueryEscape(f.issuer)
			want := []string{
				"https://one.example/fc?app=1&amp;iss=" + iss + "&amp;sid=" + sid,
				"https://two.example:8443/fc?iss=" + iss + "&amp;sid=" + sid,
			}
			if !reflect.DeepEqual(srcs, want) {
				t.Errorf("iframes = %q, want %q", srcs, want)
			}
			hasContinue := strings.Contains(page, `<a id="continue" href="https://one.example/bye?state=s1">Continue</a>`)
			hasScript := strings.Contains(page, "<script>"+signedOutScript+"</script>")
			if hasContinue != (tc.redirect != "") || hasScript != (tc.redirect != "") {
				t.Errorf("continue link %v, script %v; want %v\n%s", hasContinue, hasScript, tc.redirect != "", page)
			}
			assertParams(t, noneAnswer(t, b, app), loginRequired(f))
		})
	}
}

// signedOutScript is web/logout.go's script, which the CSP allows by hash.
const signedOutScript = `(function(){var d=false;function go(){if(d)return;d=true;var l=document.getElementById("continue");if(l)location.replace(l.href)}window.addEventListener("load",go);setTimeout(go,5000)})();`

var signedOutScriptHash = sha256B64(signedOutScript)

// TestSessionBoundRefreshTokens: ending a session revokes the refresh
// tokens of clients with session_bound_refresh_tokens, and only those.
func TestSessionBoundRefreshTokens(t *testing.T) {
	for _, tc := range storeCases {
		t.Run(tc.name, func(t *testing.T) {
			f := newSessionFixture(t, tc.be)
			const boundCB, freeCB = "https://bound.example/cb", "https://free.example/cb"
			f.addClient(storage.Client{ID: "bound", RedirectURIs: []string{boundCB}, SessionBoundRefresh: true}, "bound-secret")
			f.addClient(storage.Client{ID: "free", RedirectURIs: []string{freeCB}}, "free-secret")
			bound := f.rp("bound", "bound-secret", boundCB, "openid", "offline_access")
			free := f.rp("free", "free-secret", freeCB, "openid", "offline_access")
			b := f.browser()
			boundTok, c := f.signedIn(t, b, bound, "alice", alicePassword)
			freeTok, _ := f.ridden(t, b, free)
			if boundTok.RefreshToken == "" || freeTok.RefreshToken == "" {
				t.Fatal("no refresh tokens")
			}
			// Both refresh while the session lives.
			refresh := func(conf *oauth2.Config, rt string) (*oauth2.Token, error) {
				return conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: rt, Expiry: time.Now().Add(-time.Hour)}).Token()
			}
			next, err := refresh(bound, boundTok.RefreshToken)
			if err != nil {
				t.Fatalf("refresh while signed in: %v", err)
			}

			resp, page := b.getRaw(f.logoutURL("id_token_hint", boundTok.Extra("id_token").(string)))
			signedOutPage(t, resp, page)
			_, err = refresh(bound, next.RefreshToken)
			assertRetrieveError(t, err, 400, "invalid_grant", "the refresh token is invalid, expired or revoked")
			if _, err := refresh(free, freeTok.RefreshToken); err != nil {
				t.Errorf("the free client's refresh token stopped working: %v", err)
			}
			rec, err := f.db.GetRefreshToken(t.Context(), sha256Hex(next.RefreshToken))
			if err != nil || rec.RevokedAt.IsZero() || rec.SID != c["sid"] {
				t.Errorf("bound token after logout: %+v, %v", rec, err)
			}
			// The first token (rotated) and its successor.
			es := f.events(t, "session.ended")
			if len(es) != 1 || es[0].Data["refresh_tokens_revoked"] != float64(2) {
				t.Errorf("session.ended = %+v", es)
			}
		})
	}
}

// TestEndedSessionEndsAccessTokens: ending a session (logout) stops every
// access token issued under it at /introspect and /userinfo, for every
// client of the session; a token a surviving (not session-bound) refresh
// token mints afterwards works, and the other browser's tokens are not
// touched.
func TestEndedSessionEndsAccessTokens(t *testing.T) {
	for _, tc := range storeCases {
		t.Run(tc.name, func(t *testing.T) {
			f := newSessionFixture(t, tc.be)
			const freeCB = "https://free.example/cb"
			f.addClient(storage.Client{ID: "free", RedirectURIs: []string{freeCB}}, "free-secret")
			free := f.rp("free", "free-secret", freeCB, "openid", "offline_access")
			app := f.rp("app", appSecret, appCB, "openid")
			b, other := f.browser(), f.browser()
			appTok, _ := f.signedIn(t, b, app, "alice", alicePassword)
			freeTok, _ := f.ridden(t, b, free)
			otherTok, _ := f.signedIn(t, other, app, "alice", alicePassword)
			introspect := func(tok string) bool {
				t.Helper()
				req, _ := http.NewRequest(http.MethodPost, f.issuer+"/introspect", strings.NewReader(url.Values{"token": {tok}}.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth("app", appSecret)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var out struct {
					Active bool `json:"active"`
				}
				if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
					t.Fatalf("introspect: HTTP %d, %v", resp.StatusCode, err)
				}
				return out.Active
			}
			if !introspect(appTok.AccessToken) || !introspect(otherTok.AccessToken) {
				t.Fatal("access tokens inactive before logout")
			}
			resp, page := b.getRaw(f.logoutURL("id_token_hint", appTok.Extra("id_token").(string)))
			signedOutPage(t, resp, page)

			if introspect(appTok.AccessToken) {
				t.Error("the app's access token is active after logout")
			}
			for _, tok := range []string{appTok.AccessToken, freeTok.AccessToken} {
				resp, body := bearerGet(t, f.issuer+"/userinfo", tok)
				assertBearerError(t, resp, body, 401, "invalid_token", "the access token was revoked")
			}
			if !introspect(otherTok.AccessToken) {
				t.Error("the other browser's access token stopped working")
			}
			// The free client's refresh token survives logout; what it
			// mints after the session ended works.
			f.clock.Advance(2 * time.Second)
			next, err := free.TokenSource(context.Background(), &oauth2.Token{RefreshToken: freeTok.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token()
			if err != nil {
				t.Fatalf("refresh after logout: %v", err)
			}
			if resp, body := bearerGet(t, f.issuer+"/userinfo", next.AccessToken); resp.StatusCode != 200 {
				t.Errorf("userinfo with the token minted after logout: HTTP %d %s", resp.StatusCode, body)
			}
		})
	}
}

// TestSessionBoundRefreshExpiredSession: a session that merely expired
// (idle) also stops its session-bound refresh tokens.
func TestSessionBoundRefreshExpiredSession(t *testing.T) {
	f := newSessionFixture(t, backends{})
	f.addClient(storage.Client{ID: "bound", RedirectURIs: []string{"https://bound.example/cb"}, SessionBoundRefresh: true}, "bound-secret")
	bound := f.rp("bound", "bound-secret", "https://bound.example/cb", "openid", "offline_access")
	tok, _ := f.signedIn(t, f.browser(), bound, "alice", alicePassword)
	f.clock.Advance(25 * time.Hour)
	_, err := bound.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token()
	assertRetrieveError(t, err, 400, "invalid_grant", "the refresh token is invalid, expired or revoked")
}

// TestDisableUserEndsSessions: disabling a user ends every session of
// theirs (what `latchkey users disable` calls): the next authorization
// request shows the sign-in form, their tokens stop working.
func TestDisableUserEndsSessions(t *testing.T) {
	for _, tc := range storeCases {
		t.Run(tc.name, func(t *testing.T) {
			f := newSessionFixture(t, tc.be)
			f.addClient(storage.Client{ID: "bound", RedirectURIs: []string{"https://bound.example/cb"}, SessionBoundRefresh: true}, "bound-secret")
			bound := f.rp("bound", "bound-secret", "https://bound.example/cb", "openid", "offline_access")
			conf := f.rp("app", appSecret, appCB, "openid")
			b1, b2, bobs := f.browser(), f.browser(), f.browser()
			tok, _ := f.signedIn(t, b1, bound, "alice", alicePassword)
			f.signedIn(t, b2, conf, "alice", alicePassword)
			f.signedIn(t, bobs, conf, "bob", bobPassword)

			f.setDisabled("u-alice", true)
			n, err := f.broker.EndSessions(t.Context(), "u-alice", broker.ReasonUserDisabled, "cli")
			if err != nil || n != 2 {
				t.Fatalf("EndSessions = %d, %v; want 2", n, err)
			}
			f.setDisabled("u-alice", false) // the session is gone, not just refused
			for _, b := range []*browser{b1, b2} {
				b.loginForm(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
			}
			f.ridden(t, bobs, conf) // bob is not touched
			f.setDisabled("u-alice", true)
			// The access token names an ended session.
			resp, body := bearerGet(t, f.issuer+"/userinfo", tok.AccessToken)
			assertBearerError(t, resp, body, 401, "invalid_token", "the access token was revoked")
			rec, err := f.db.GetRefreshToken(t.Context(), sha256Hex(tok.RefreshToken))
			if err != nil || rec.RevokedAt.IsZero() {
				t.Errorf("session-bound refresh token after disabling: %+v %v", rec, err)
			}
			var reasons []any
			for _, e := range f.events(t, "session.ended") {
				reasons = append(reasons, e.Data["reason"], e.Actor)
			}
			if want := []any{"user_disabled", "cli", "user_disabled", "cli"}; !reflect.DeepEqual(reasons, want) {
				t.Errorf("session.ended reasons %v, want %v", reasons, want)
			}
			if n, err := f.broker.EndSessions(t.Context(), "u-alice", broker.ReasonUserDisabled, "cli"); err != nil || n != 0 {
				t.Errorf("EndSessions again = %d, %v", n, err)
			}
		})
	}
}

// TestDiscoveryLogout: discovery lists the end_session_endpoint and both
// channel logouts with session support.
func TestDiscoveryLogout(t *testing.T) {
	f := newFixture(t)
	_, body := doRequest(t, mustRequest(t, http.MethodGet, f.issuer+"/.well-known/openid-configuration"))
	var md map[string]any
	if err := json.Unmarshal([]byte(body), &md); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"end_session_endpoint": f.issuer + "/logout", "backchannel_logout_supported": true,
		"backchannel_logout_session_supported": true, "frontchannel_logout_supported": true, "frontchannel_logout_session_supported": true}
	for k, v := range want {
		if md[k] != v {
			t.Errorf("%s = %v, want %v", k, md[k], v)
		}
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func sha256B64(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.StdEncoding.EncodeToString(sum[:])
}

func mustRequest(t *testing.T, method, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
