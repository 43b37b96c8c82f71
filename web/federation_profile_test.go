package web_test

import (
	"net/url"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/providers/providertest"
	"github.com/latchkeyid/latchkey/storage"
)

// TestUpstreamRefreshSyncsProfileAtOnce: a downstream refresh that
// refreshes upstream issues its ID token from the profile it just synced
// (a name changed upstream shows in that very refresh, not one later).
func TestUpstreamRefreshSyncsProfileAtOnce(t *testing.T) {
	f := newFixtureOn(t, backends{})
	f.addClient(storage.Client{ID: "app", Name: "The App", RedirectURIs: []string{appCB}}, appSecret)
	up := f.addOIDCConnector("up", "Upstream", false)
	conf := f.rp("app", appSecret, appCB, "openid", "email", "profile", "offline_access")
	b := f.fedBrowser()
	verifier := oauth2.GenerateVerifier()
	resp, page := b.startUpstream(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)))
	tok, err := conf.Exchange(t.Context(), callback(t, resp, page, appCB).Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if _, _, c := f.idToken(t, "app", tok); c["name"] != "Alice Example" {
		t.Fatalf("first login: name %v", c["name"])
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	up.SetClaim("248289761001", "name", "Alice Renamed")
	next, err := conf.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Unix(1, 0)}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if _, _, c := f.idToken(t, "app", next); c["name"] != "Alice Renamed" {
		t.Errorf("ID token of the refresh that synced the profile: name %v, want Alice Renamed", c["name"])
	}
}

// TestUpstreamRefreshWaiterSeesProfile: two downstream refreshes under
// one session (two apps) at once refresh upstream once; the one that
// waited for the other also issues from the profile just synced.
func TestUpstreamRefreshWaiterSeesProfile(t *testing.T) {
	f := newFixtureOn(t, backends{})
	f.addClient(storage.Client{ID: "app", Name: "The App", RedirectURIs: []string{appCB}}, appSecret)
	f.addClient(storage.Client{ID: "app2", Name: "The Other App", RedirectURIs: []string{appCB}}, appSecret)
	up := f.addOIDCConnector("up", "Upstream", false)
	b := f.fedBrowser()
	tokens := map[string]*oauth2.Token{}
	confs := map[string]*oauth2.Config{}
	for _, id := range []string{"app", "app2"} {
		conf := f.rp(id, appSecret, appCB, "openid", "profile", "offline_access")
		verifier := oauth2.GenerateVerifier()
		authURL := conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier))
		var q url.Values
		if id == "app" {
			resp, page := b.startUpstream(authURL)
			q = callback(t, resp, page, appCB)
		} else {
			resp, page := b.get(authURL) // rides the session
			q = callback(t, resp, page, appCB)
		}
		tok, err := conf.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil || tok.RefreshToken == "" {
			t.Fatalf("%s: exchange: %v (refresh token %t)", id, err, tok != nil && tok.RefreshToken != "")
		}
		tokens[id], confs[id] = tok, conf
	}
	up.SetClaim("248289761001", "name", "Alice Renamed")
	up.SetBehavior(providertest.Behavior{Faults: map[string]providertest.Fault{providertest.TokenPath: {Delay: time.Second}}})
	before := up.Requests(providertest.TokenPath)
	refresh := func(id string) (*oauth2.Token, error) {
		return confs[id].TokenSource(t.Context(), &oauth2.Token{RefreshToken: tokens[id].RefreshToken, Expiry: time.Unix(1, 0)}).Token()
	}
	type result struct {
		tok *oauth2.Token
		err error
	}
	first := make(chan result, 1)
	go func() { tok, err := refresh("app"); first <- result{tok, err} }()
	// The second starts while the first is inside the upstream call.
	for i := 0; up.Requests(providertest.TokenPath) == before; i++ {
		if i > 1000 {
			t.Fatal("the first refresh never reached the upstream")
		}
		time.Sleep(5 * time.Millisecond)
	}
	second, err := refresh("app2")
	if err != nil {
		t.Fatalf("app2 refresh: %v", err)
	}
	r := <-first
	if r.err != nil {
		t.Fatalf("app refresh: %v", r.err)
	}
	if n := up.Requests(providertest.TokenPath) - before; n != 1 {
		t.Errorf("upstream token requests during the two refreshes: %d, want 1", n)
	}
	for id, tok := range map[string]*oauth2.Token{"app": r.tok, "app2": second} {
		if _, _, c := f.idToken(t, id, tok); c["name"] != "Alice Renamed" {
			t.Errorf("%s: name %v, want Alice Renamed", id, c["name"])
		}
	}
}
