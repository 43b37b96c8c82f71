package web_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/providers/providertest"
	"github.com/latchkeyid/latchkey/storage"
)

// TestLinkedConnectorDoesNotRewriteTheProfile: a user that federation
// created (no password) takes its profile from the identity it was
// created with. A service the user links later from /account signs in
// but does not replace the e-mail address, its verified flag, the name
// or the groups with its own claims: otherwise linking any open
// connector would let a user choose their own groups and address (and
// a "verified" address would then take over another person's first
// sign-in through a trustEmail connector).
func TestLinkedConnectorDoesNotRewriteTheProfile(t *testing.T) {
	mp := testenv.StartMailpit(t)
	f := newFixtureOn(t, backends{options: func(o *broker.Options) { withAccounts(t, mp, o.Store.(storage.Durable))(o) }})
	f.addClient(storage.Client{ID: "app", Name: "The App", RedirectURIs: []string{appCB}}, appSecret)
	if err := f.broker.EnsureAccountClient(t.Context()); err != nil {
		t.Fatal(err)
	}
	corp := f.addOIDCConnector("up", "Corp", false)
	social := f.addOIDCConnector("social", "Social", false)
	social.AddUser(providertest.User{Subject: "s-1", Claims: map[string]any{
		"email": "ceo@example.com", "email_verified": true, "name": "Someone Else", "groups": []any{"finance-admins"},
	}})
	social.LoginAs("s-1")
	_ = corp
	conf := f.rp("app", appSecret, appCB, "openid", "email", "profile")

	// First sign-in through corp: a new user, its profile from corp.
	b := f.fedBrowser()
	resp, page := b.startUpstream(conf.AuthCodeURL("s", oauthS256()...))
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
		t.Fatalf("corp sign-in: %d at %s\n%s", resp.StatusCode, resp.Request.URL, page)
	}
	ident, err := f.db.GetIdentity(t.Context(), "up", providertest.Alice().Subject)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := f.db.GetUser(t.Context(), ident.UserID)
	if before.Email != "alice@example.com" || !slices.Equal(before.Groups, []string{"staff", "admins"}) {
		t.Fatalf("user from corp: %+v", before)
	}

	// Link social from /account (a minute later), then sign in through it.
	f.clock.Advance(time.Minute)
	csrf := b.accountCSRF()
	resp, page = b.get(b.startLink(url.Values{"csrf": {csrf}, "connector": {"social"}}))
	assertAccountResult(t, resp, page, "The service is linked to your account.")
	s := f.fedBrowser()
	resp, page = s.get(conf.AuthCodeURL("s", oauthS256()...))
	form := hidden(t, page)
	form.Set("connector", "social")
	resp, page = s.post(f.issuer+"/login/upstream", form)
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
		t.Fatalf("social sign-in: %d at %s\n%s", resp.StatusCode, resp.Request.URL, page)
	}
	if es := f.events(t, "user.login.succeeded"); es[len(es)-1].UserID != before.ID || es[len(es)-1].ConnectorID != "social" {
		t.Fatalf("social signed in %+v", es[len(es)-1])
	}
	after, _ := f.db.GetUser(t.Context(), before.ID)
	if after.Email != before.Email || after.EmailVerified != before.EmailVerified || after.Name != before.Name || !slices.Equal(after.Groups, before.Groups) {
		t.Fatalf("the linked service rewrote the profile:\nbefore %+v\nafter  %+v", before, after)
	}
	// The first identity still keeps it up to date.
	corp.SetClaim(providertest.Alice().Subject, "name", "Alice Renamed")
	c := f.fedBrowser()
	c.startUpstream(conf.AuthCodeURL("s", oauthS256()...))
	if u, _ := f.db.GetUser(t.Context(), before.ID); u.Name != "Alice Renamed" {
		t.Fatalf("corp's login did not update the profile: %+v", u)
	}
}
