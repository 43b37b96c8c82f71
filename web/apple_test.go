package web_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/providers/providertest"
	"github.com/latchkeyid/latchkey/storage"
)

// TestAppleRefreshKeepsName: Apple sends the user's name only at the
// first authorization, never at refresh; a downstream refresh that
// refreshes upstream keeps the name from the first login in the user and
// the new ID token. (The browser side of the form_post callback is
// TestAppleFormPostInChromium; here a Go client posts the form.)
func TestAppleRefreshKeepsName(t *testing.T) {
	f, fake := appleFixture(t, backends{})
	f.addClient(storage.Client{ID: "app", RedirectURIs: []string{appCB}}, appSecret)
	conf := f.rp("app", appSecret, appCB, "openid", "profile", "email", "offline_access")
	b := f.fedBrowser()
	verifier := oauth2.GenerateVerifier()
	resp, page := b.get(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("connector_id", "apple")))
	action, fields, err := providertest.ParseFormPost([]byte(page))
	if err != nil || !strings.HasPrefix(resp.Request.URL.String(), fake.URL) || fields.Get("user") == "" {
		t.Fatalf("want the fake Apple's form_post page with the user field, got %d at %s (%v)\n%s", resp.StatusCode, resp.Request.URL, err, page)
	}
	resp, page = b.post(action, fields)
	tok, err := conf.Exchange(t.Context(), callback(t, resp, page, appCB).Get("code"), oauth2.VerifierOption(verifier))
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("exchange: %v (refresh token %t)", err, tok != nil && tok.RefreshToken != "")
	}
	_, _, claims := f.idToken(t, "app", tok)
	refreshes := fake.Requests(providertest.TokenPath)
	f.clock.Advance(time.Minute)
	tok2, err := conf.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Unix(1, 0)}).Token()
	if err != nil {
		t.Fatalf("downstream refresh: %v", err)
	}
	if fake.Requests(providertest.TokenPath) != refreshes+1 {
		t.Fatalf("the downstream refresh did not refresh at Apple (%d token requests before, %d after)", refreshes, fake.Requests(providertest.TokenPath))
	}
	_, _, claims2 := f.idToken(t, "app", tok2)
	for _, k := range []string{"sub", "name", "email", "email_verified"} {
		if !reflect.DeepEqual(claims2[k], claims[k]) {
			t.Errorf("after the refresh %s = %#v, want %#v", k, claims2[k], claims[k])
		}
	}
	if u, err := f.db.GetUser(t.Context(), claims["sub"].(string)); err != nil || u.Name != "Alice Example" || u.Email != appleRelay {
		t.Errorf("after the refresh the user is %+v (%v), want the name Alice Example kept", u, err)
	}
	if claims["name"] != "Alice Example" || claims["email"] != appleRelay {
		t.Errorf("first login: name %v email %v", claims["name"], claims["email"])
	}
}
