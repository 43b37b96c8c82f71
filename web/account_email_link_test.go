package web_test

import (
	"net/url"
	"testing"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/storage"
)

// TestSupersededEmailLinkRefused: a change-of-address link is valid only
// while the account still has the address it had when the link was
// sent. A mistyped address's owner, whose link the user replaced with a
// second change, cannot take the address over later (and with it the
// password reset); nor can an old link move a changed address back.
func TestSupersededEmailLinkRefused(t *testing.T) {
	mp := testenv.StartMailpit(t)
	f := newFixtureOn(t, backends{options: func(o *broker.Options) { withAccounts(t, mp, o.Store.(storage.Durable))(o) }})
	f.addUser(storage.User{ID: "u-bob", Username: "bob", Email: "bob@example.com", EmailVerified: true}, "bob's password")
	f.addClient(storage.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}}, "app-secret")
	b := f.browser()
	f.signedIn(t, b, f.rp("app", "app-secret", "https://app.example/cb", "openid"), "bob", "bob's password")
	csrf := b.accountCSRF()
	change := func(addr string) string {
		t.Helper()
		resp, page := b.post(f.issuer+"/account/email", url.Values{"csrf": {csrf}, "current": {"bob's password"}, "email": {addr}})
		if resp.StatusCode != 200 {
			t.Fatalf("change to %s: %d\n%s", addr, resp.StatusCode, page)
		}
		link, _ := mailedLink(t, mp, addr, "Confirm your e-mail address for Latchkey")
		return link
	}
	confirm := func(link string) {
		t.Helper()
		b.post(f.issuer+"/account/verify-email", url.Values{"token": {field(t, tokenFieldRe, page0(b, link))}})
	}
	// A reset link mailed to the old address, before the change.
	fb := f.browser()
	_, fpage := fb.get(f.issuer + "/account/forgot")
	fb.post(f.issuer+"/account/forgot", url.Values{"csrf": {field(t, csrfFieldRe, fpage)}, "email": {"bob@example.com"}})
	f.broker.WaitAccountMail()
	reset, _ := mailedLink(t, mp, "bob@example.com", "Reset your Latchkey password")
	typo := change("bob@exampel.com") // mistyped: someone else's mailbox
	right := change("bob@example.org")
	confirm(right)
	if u, _ := f.db.GetUser(t.Context(), "u-bob"); u.Email != "bob@example.org" || !u.EmailVerified {
		t.Fatalf("after the right link: %+v", u)
	}
	// The typo's owner opens their link later.
	resp, page := b.get(typo)
	assertErrorPage(t, resp, page, 400, "Link not valid", "This link is not valid any more: it was used already or has expired. Ask for a new one.")
	resp, page = b.post(f.issuer+"/account/verify-email", url.Values{"token": {tokenOf(t, typo)}})
	assertErrorPage(t, resp, page, 400, "Link not valid", "This link is not valid any more: it was used already or has expired. Ask for a new one.")
	if u, _ := f.db.GetUser(t.Context(), "u-bob"); u.Email != "bob@example.org" {
		t.Fatalf("the superseded link changed the address: %+v", u)
	}
	// The old address's reset link no longer sets the password.
	resp, page = b.get(reset)
	assertErrorPage(t, resp, page, 400, "Link not valid", "This link is not valid any more: it was used already or has expired. Ask for a new one.")
	resp, page = b.post(f.issuer+"/account/reset", url.Values{"token": {tokenOf(t, reset)}, "password": {"the old mailbox's pick"}, "confirm": {"the old mailbox's pick"}})
	assertErrorPage(t, resp, page, 400, "Link not valid", "This link is not valid any more: it was used already or has expired. Ask for a new one.")
}

func tokenOf(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("token")
}
