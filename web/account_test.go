package web_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/internal/ratelimit"
	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/providers/local"
	"github.com/latchkeyid/latchkey/storage"
)

// withAccounts turns on the account e-mail flows, mailing through mp,
// with a breached-password list and limits.recoveryPerAccount at 3/h.
func withAccounts(t *testing.T, mp *testenv.Mailpit, db storage.Durable) func(*broker.Options) {
	return func(o *broker.Options) {
		pol := &local.PasswordPolicy{}
		if _, err := pol.LoadBreached(strings.NewReader("correct horse battery\n")); err != nil {
			t.Fatal(err)
		}
		o.Accounts = &broker.AccountOptions{Users: db, Mailer: mailpitSender(t, mp, o.Clock),
			Hasher: local.NewHasher(testHashParams, 2, time.Second, nil), Policy: pol, LinkKey: bytes.Repeat([]byte{5}, 32)}
		o.Limits.Rules.RecoveryAccount = ratelimit.Rule{Name: ratelimit.NameRecoveryAccount, Limit: 3, Window: time.Hour}
	}
}

var linkRe = regexp.MustCompile(`(http://127\.0\.0\.1:[0-9]+/account/[a-z-]+\?token=[A-Za-z0-9_.%-]+)`)

// mailedLink returns the link of the newest mail to addr.
func mailedLink(t *testing.T, mp *testenv.Mailpit, addr, subject string) (string, string) {
	t.Helper()
	m := mp.Latest(addr)
	l := linkRe.FindStringSubmatch(m.Text)
	if m.Subject != subject || l == nil || !strings.Contains(m.HTML, `href="`+strings.ReplaceAll(l[1], "&", "&amp;")+`"`) {
		t.Fatalf("mail %q:\n%s\n%s", m.Subject, m.Text, m.HTML)
	}
	u, _ := url.Parse(l[1])
	return l[1], u.Query().Get("token")
}

var tokenFieldRe = regexp.MustCompile(`name="token" value="([^"]+)"`)
var csrfFieldRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func field(t *testing.T, re *regexp.Regexp, page string) string {
	t.Helper()
	m := re.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no %s in page:\n%s", re, page)
	}
	return m[1]
}

func TestAccountEmailVerification(t *testing.T) {
	mp := testenv.StartMailpit(t)
	var f *fixture
	f = newFixtureOn(t, backends{options: func(o *broker.Options) { withAccounts(t, mp, o.Store.(storage.Durable))(o) }})
	f.addUser(storage.User{Username: "alice", Email: "alice@example.com"}, "correct horse")
	ctx := context.Background()

	// On creation (the CLI does this): a link to the account's address.
	if err := f.broker.SendEmailVerification(ctx, "u-alice", "", broker.RequestMeta{}); err != nil {
		t.Fatal(err)
	}
	link, token := mailedLink(t, mp, "alice@example.com", "Confirm your e-mail address for Latchkey")
	b := f.browser()
	// Opening the link shows a form; it does not use the link yet.
	resp, page := b.get(link)
	if resp.StatusCode != 200 || !contains(page, "Confirm <strong>a••••@example.com</strong>") {
		t.Fatalf("verify page: %d\n%s", resp.StatusCode, page)
	}
	assertHTMLHeaders(t, resp.Header)
	if u, _ := f.db.GetUser(ctx, "u-alice"); u.EmailVerified {
		t.Fatal("verified by a GET")
	}
	// A forged token (other signature) is refused without a lookup.
	resp, page = b.post(f.issuer+"/account/verify-email", url.Values{"token": {token[:len(token)-2] + "AA"}})
	assertErrorPage(t, resp, page, 400, "Link not valid", "This link is not valid any more: it was used already or has expired. Ask for a new one.")
	resp, page = b.post(f.issuer+"/account/verify-email", url.Values{"token": {field(t, tokenFieldRe, page0(b, link))}})
	if resp.StatusCode != 200 || !contains(page, "Your e-mail address is confirmed.") {
		t.Fatalf("confirm: %d\n%s", resp.StatusCode, page)
	}
	if u, _ := f.db.GetUser(ctx, "u-alice"); !u.EmailVerified || u.Email != "alice@example.com" {
		t.Fatalf("user %+v", u)
	}
	// Single use.
	resp, page = b.post(f.issuer+"/account/verify-email", url.Values{"token": {token}})
	assertErrorPage(t, resp, page, 400, "Link not valid", "This link is not valid any more: it was used already or has expired. Ask for a new one.")
	// Expiry: a new link, 24h and a second later, is void.
	f.broker.SendEmailVerification(ctx, "u-alice", "", broker.RequestMeta{})
	_, token2 := mailedLink(t, mp, "alice@example.com", "Confirm your e-mail address for Latchkey")
	f.clock.Advance(24*time.Hour + time.Second)
	resp, page = b.post(f.issuer+"/account/verify-email", url.Values{"token": {token2}})
	assertErrorPage(t, resp, page, 400, "Link not valid", "This link is not valid any more: it was used already or has expired. Ask for a new one.")
	if len(f.events(t, "user.email.verified")) != 1 || len(f.events(t, "user.email.verification_sent")) != 2 {
		t.Fatal("events")
	}
	assertNoSecretsLogged(t, f, []string{token, token2})
}

// page0 fetches a page and returns its body.
func page0(b *browser, u string) string {
	_, page := b.get(u)
	return page
}

func TestAccountPasswordReset(t *testing.T) { passwordReset(t, backends{}) }

// The same on PostgreSQL and Redis: link tokens taken from Redis.
func TestAccountPasswordResetOnPostgresAndRedis(t *testing.T) {
	passwordReset(t, backends{postgres: true, redis: true})
}

func passwordReset(t *testing.T, be backends) {
	mp := testenv.StartMailpit(t)
	be.options = func(o *broker.Options) { withAccounts(t, mp, o.Store.(storage.Durable))(o) }
	f := newFixtureOn(t, be)
	f.addUser(storage.User{Username: "alice", Email: "alice@example.com", EmailVerified: true}, "old password 1")
	f.addClient(storage.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}}, "app-secret")
	conf := f.rp("app", "app-secret", "https://app.example/cb", "openid")
	ctx := context.Background()

	// Alice is signed in on another device.
	other := f.browser()
	f.signedIn(t, other, conf, "alice", "old password 1")

	// The login page links to the reset.
	b := f.browser()
	_, login := b.get(conf.AuthCodeURL("s", oauthS256()...))
	if !contains(login, `id="forgot-password" href="/account/forgot"`) {
		t.Fatalf("no forgot-password link:\n%s", login)
	}
	resp, page := b.get(f.issuer + "/account/forgot")
	if resp.StatusCode != 200 {
		t.Fatalf("forgot: %d", resp.StatusCode)
	}
	csrf := field(t, csrfFieldRe, page)
	// No CSRF token: refused.
	resp, page = b.post(f.issuer+"/account/forgot", url.Values{"email": {"alice@example.com"}})
	assertErrorPage(t, resp, page, 400, "Form expired", "The form was not valid. Open the page again.")

	// An unknown address and a known one get the same answer.
	_, unknown := b.post(f.issuer+"/account/forgot", url.Values{"csrf": {csrf}, "email": {"nobody@example.com"}})
	resp, known := b.post(f.issuer+"/account/forgot", url.Values{"csrf": {csrf}, "email": {"Alice@Example.com"}})
	if resp.StatusCode != 200 || unknown != known || !contains(known, "If an account with that address exists, we sent it a link") {
		t.Fatalf("answers differ or wrong:\n%s\n---\n%s", unknown, known)
	}
	f.broker.WaitAccountMail()
	if mp.Count("nobody@example.com") != 0 {
		t.Fatal("mail to an unknown address")
	}
	link, token := mailedLink(t, mp, "alice@example.com", "Reset your Latchkey password")

	resp, page = b.get(link)
	if resp.StatusCode != 200 || !contains(page, "Choose a new password for <strong>alice</strong>") {
		t.Fatalf("reset page: %d\n%s", resp.StatusCode, page)
	}
	tests := []struct{ password, confirm, msg string }{
		{"short", "short", "Password refused: use at least 8 characters."},
		{"correct horse battery", "correct horse battery", "Password refused: this password appears in a list of leaked passwords; choose another."},
		{"alice@example.com", "alice@example.com", "Password refused: do not use your username or e-mail address as the password."},
		{"a new long password", "a new long passwort", "The two new passwords are not the same."},
	}
	for _, tc := range tests {
		resp, page = b.post(f.issuer+"/account/reset", url.Values{"token": {token}, "password": {tc.password}, "confirm": {tc.confirm}})
		if resp.StatusCode != 400 || !contains(page, tc.msg) {
			t.Fatalf("%q: %d\n%s", tc.password, resp.StatusCode, page)
		}
	}
	resp, page = b.post(f.issuer+"/account/reset", url.Values{"token": {token}, "password": {"a new long password"}, "confirm": {"a new long password"}})
	if resp.StatusCode != 200 || !contains(page, "Your password is changed, and you are signed out everywhere.") {
		t.Fatalf("reset: %d\n%s", resp.StatusCode, page)
	}
	if s, _ := f.broker.Sessions(ctx, "u-alice"); len(s) != 0 {
		t.Fatalf("%d sessions left after the reset", len(s))
	}
	resp, page = b.post(f.issuer+"/account/reset", url.Values{"token": {token}, "password": {"another long one"}, "confirm": {"another long one"}})
	assertErrorPage(t, resp, page, 400, "Link not valid", "This link is not valid any more: it was used already or has expired. Ask for a new one.")
	// The new password signs in; the old one does not.
	f.signedIn(t, f.browser(), conf, "alice", "a new long password")
	b4 := f.browser()
	resp, page = b4.submitLogin(b4.loginForm(conf.AuthCodeURL("s", oauthS256()...)), "alice", "old password 1")
	if resp.StatusCode != 200 || !contains(page, "Incorrect username or password.") {
		t.Fatalf("old password: %d\n%s", resp.StatusCode, page)
	}

	// Per address: 3 requests an hour (2 so far for alice), for every
	// address alike.
	var statuses []int
	for range 3 {
		resp, _ = b.post(f.issuer+"/account/forgot", url.Values{"csrf": {csrf}, "email": {"alice@example.com"}})
		statuses = append(statuses, resp.StatusCode)
	}
	if statuses[0] != 200 || statuses[1] != 200 || statuses[2] != http.StatusTooManyRequests {
		t.Fatalf("statuses %v", statuses)
	}
	f.broker.WaitAccountMail()
	if len(f.events(t, "user.password.reset")) != 1 {
		t.Fatal("no user.password.reset event")
	}
	assertNoSecretsLogged(t, f, []string{token, "a new long password", "old password 1"})
}

func TestAccountChangePasswordAndEmail(t *testing.T) {
	mp := testenv.StartMailpit(t)
	f := newFixtureOn(t, backends{options: func(o *broker.Options) { withAccounts(t, mp, o.Store.(storage.Durable))(o) }})
	f.addUser(storage.User{Username: "bob", Email: "bob@example.com", EmailVerified: true}, "bob's password")
	f.addClient(storage.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}}, "app-secret")
	conf := f.rp("app", "app-secret", "https://app.example/cb", "openid")
	ctx := context.Background()

	// Without a session: a sign-in (account_link_test.go).
	resp, page := f.browser().getRaw(f.issuer + "/account")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), f.issuer+"/authorize?") {
		t.Fatalf("GET /account without a session: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	b, other := f.browser(), f.browser()
	f.signedIn(t, b, conf, "bob", "bob's password")
	f.signedIn(t, other, conf, "bob", "bob's password")
	resp, page = b.get(f.issuer + "/account")
	if resp.StatusCode != 200 || !contains(page, "Signed in as <strong>bob</strong> · bob@example.com (confirmed)") {
		t.Fatalf("account page: %d\n%s", resp.StatusCode, page)
	}
	csrf := field(t, csrfFieldRe, page)
	resp, page = b.post(f.issuer+"/account/password", url.Values{"csrf": {"x"}, "current": {"bob's password"}, "password": {"a brand new one"}, "confirm": {"a brand new one"}})
	assertErrorPage(t, resp, page, 400, "Form expired", "The form was not valid. Open the account page again.")
	for _, tc := range []struct{ current, password, msg string }{
		{"wrong", "a brand new one", "The current password is not correct."},
		{"bob's password", "bob", "Password refused: use at least 8 characters."},
	} {
		resp, page = b.post(f.issuer+"/account/password", url.Values{"csrf": {csrf}, "current": {tc.current}, "password": {tc.password}, "confirm": {tc.password}})
		if resp.StatusCode != 400 || !contains(page, tc.msg) {
			t.Fatalf("%q: %d\n%s", tc.msg, resp.StatusCode, page)
		}
	}
	resp, page = b.post(f.issuer+"/account/password", url.Values{"csrf": {csrf}, "current": {"bob's password"}, "password": {"a brand new one"}, "confirm": {"a brand new one"}})
	if resp.StatusCode != 200 || !contains(page, "Your password is changed. You were signed out on your other devices.") {
		t.Fatalf("change: %d\n%s", resp.StatusCode, page)
	}
	if s, _ := f.broker.Sessions(ctx, "u-bob"); len(s) != 1 {
		t.Fatalf("%d sessions, want this one only", len(s))
	}
	if resp, _ = other.getRaw(f.issuer + "/account"); resp.StatusCode != http.StatusSeeOther { // a sign-in starts
		t.Fatalf("the other device still signed in: %d", resp.StatusCode)
	}

	// Change of address: a link to the new address; the old stays until
	// the link is used.
	resp, page = b.post(f.issuer+"/account/email", url.Values{"csrf": {csrf}, "current": {"a brand new one"}, "email": {"not an address"}})
	if resp.StatusCode != 400 || !contains(page, "Enter an e-mail address such as name@example.com.") {
		t.Fatalf("bad address: %d\n%s", resp.StatusCode, page)
	}
	resp, page = b.post(f.issuer+"/account/email", url.Values{"csrf": {csrf}, "current": {"a brand new one"}, "email": {"robert@example.org"}})
	if resp.StatusCode != 200 || !contains(page, "We sent a link to r•••••@example.org. Your address changes when you open it.") {
		t.Fatalf("change email: %d\n%s", resp.StatusCode, page)
	}
	if u, _ := f.db.GetUser(ctx, "u-bob"); u.Email != "bob@example.com" || !u.EmailVerified {
		t.Fatalf("changed before the link: %+v", u)
	}
	link, token := mailedLink(t, mp, "robert@example.org", "Confirm your e-mail address for Latchkey")
	resp, page = b.post(f.issuer+"/account/verify-email", url.Values{"token": {field(t, tokenFieldRe, page0(b, link))}})
	if resp.StatusCode != 200 {
		t.Fatalf("confirm: %d\n%s", resp.StatusCode, page)
	}
	if u, _ := f.db.GetUser(ctx, "u-bob"); u.Email != "robert@example.org" || !u.EmailVerified {
		t.Fatalf("after the link: %+v", u)
	}
	assertNoSecretsLogged(t, f, []string{token, "a brand new one", "bob's password"})
}

func oauthS256() []oauth2.AuthCodeOption {
	return []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(oauth2.GenerateVerifier())}
}

// TestResetOfAnUnconfirmedAddressDropsWhatASquatterSetUp: an account made
// with someone else's address (never confirmed) got a second factor and a
// linked service; the address's owner resets the password: the reset
// confirms the address and removes both (account pre-hijacking). A
// confirmed account's reset keeps its factors.
func TestResetOfAnUnconfirmedAddressDropsWhatASquatterSetUp(t *testing.T) {
	mp := testenv.StartMailpit(t)
	f := newFixtureOn(t, backends{options: func(o *broker.Options) { withAccounts(t, mp, o.Store.(storage.Durable))(o) }})
	ctx := context.Background()
	f.addUser(storage.User{ID: "u-sq", Username: "victim", Email: "victim@example.com"}, "squatter's password")
	f.addUser(storage.User{ID: "u-ok", Username: "carol", Email: "carol@example.com", EmailVerified: true}, "carol's password")
	for _, c := range []storage.MFACredential{
		{ID: "totp-sq", UserID: "u-sq", Type: "totp", Label: "squatter's phone", Data: []byte("sealed")},
		{ID: "totp-ok", UserID: "u-ok", Type: "totp", Label: "carol's phone", Data: []byte("sealed")},
	} {
		if err := f.db.CreateMFACredential(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.db.CreateIdentity(ctx, storage.Identity{ConnectorID: "github", Subject: "gh-squatter", UserID: "u-sq"}); err != nil {
		t.Fatal(err)
	}
	b := f.browser()
	for _, who := range []string{"victim@example.com", "carol@example.com"} {
		_, page := b.get(f.issuer + "/account/forgot")
		b.post(f.issuer+"/account/forgot", url.Values{"csrf": {field(t, csrfFieldRe, page)}, "email": {who}})
		f.broker.WaitAccountMail()
		_, token := mailedLink(t, mp, who, "Reset your Latchkey password")
		resp, page := b.post(f.issuer+"/account/reset", url.Values{"token": {token}, "password": {"owner's new password"}, "confirm": {"owner's new password"}})
		if resp.StatusCode != 200 || !contains(page, "Your password is changed") {
			t.Fatalf("reset %s: %d\n%s", who, resp.StatusCode, page)
		}
	}
	if u, _ := f.db.GetUser(ctx, "u-sq"); !u.EmailVerified {
		t.Fatal("the reset did not confirm the address")
	}
	if creds, _ := f.db.ListMFACredentials(ctx, "u-sq"); len(creds) != 0 {
		t.Fatalf("the squatter's factors are left: %+v", creds)
	}
	if ids, _ := f.db.ListUserIdentities(ctx, "u-sq"); len(ids) != 0 {
		t.Fatalf("the squatter's linked service is left: %+v", ids)
	}
	if creds, _ := f.db.ListMFACredentials(ctx, "u-ok"); len(creds) != 1 {
		t.Fatalf("a confirmed account's reset removed its factors: %+v", creds)
	}
	removed, unlinked := f.events(t, "mfa.removed"), f.events(t, "identity.unlinked")
	if len(removed) != 1 || removed[0].Data["credential_id"] != "totp-sq" || removed[0].Data["reason"] != "unconfirmed_address_reset" ||
		len(unlinked) != 1 || unlinked[0].Data["connector_id"] != "github" {
		t.Fatalf("events: removed %+v unlinked %+v", removed, unlinked)
	}
}

// TestAccountPageWithoutMail: without notify.email the account page is
// there (sign-in, sessions, password change); what needs mail is not:
// no "forgot password" link, /account/forgot 404, no address change.
func TestAccountPageWithoutMail(t *testing.T) {
	f := newFixtureOn(t, backends{options: func(o *broker.Options) {
		o.Accounts = &broker.AccountOptions{Users: o.Store.(storage.Durable), Hasher: local.NewHasher(testHashParams, 2, time.Second, nil),
			LinkKey: bytes.Repeat([]byte{5}, 32)}
	}})
	f.addUser(storage.User{Username: "alice", Email: "alice@example.com", EmailVerified: true}, "alice's password")
	f.addClient(storage.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}}, "app-secret")
	conf := f.rp("app", "app-secret", "https://app.example/cb", "openid")
	b := f.browser()
	_, login := b.get(conf.AuthCodeURL("s", oauthS256()...))
	if contains(login, "forgot-password") {
		t.Fatalf("a forgot-password link without mail:\n%s", login)
	}
	f.signedIn(t, b, conf, "alice", "alice's password")
	resp, page := b.get(f.issuer + "/account")
	if resp.StatusCode != 200 || !contains(page, `action="/account/password"`) || !contains(page, `id="sessions"`) || contains(page, `action="/account/email"`) {
		t.Fatalf("account page: %d\n%s", resp.StatusCode, page)
	}
	csrf := field(t, csrfFieldRe, page)
	resp, page = b.post(f.issuer+"/account/email", url.Values{"csrf": {csrf}, "email": {"new@example.com"}, "current": {"alice's password"}})
	if resp.StatusCode != 404 || !contains(page, "Changing the e-mail address is not available here.") {
		t.Fatalf("address change without mail: %d\n%s", resp.StatusCode, page)
	}
	resp, page = b.post(f.issuer+"/account/password", url.Values{"csrf": {csrf}, "current": {"alice's password"}, "password": {"a brand new password"}, "confirm": {"a brand new password"}})
	if resp.StatusCode != 200 || !contains(page, "Your password is changed") {
		t.Fatalf("password change without mail: %d\n%s", resp.StatusCode, page)
	}
	resp, _ = b.get(f.issuer + "/account/forgot")
	if resp.StatusCode != 404 {
		t.Fatalf("forgot page without mail: %d", resp.StatusCode)
	}
}
