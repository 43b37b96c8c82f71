package web_test

import (
	"testing"
	"time"

	"golang.org/x/oauth2"

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
