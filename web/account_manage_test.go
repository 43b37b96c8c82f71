package web_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/mfa"
	"github.com/latchkeyid/latchkey/mfa/recovery"
	"github.com/latchkeyid/latchkey/session"
	"github.com/latchkeyid/latchkey/storage"
)

var sidFieldRe = regexp.MustCompile(`name="sid" value="([^"o][^"]*)"`)

// enrollRecovery stores a set of recovery codes for userID and returns them.
func enrollRecovery(t *testing.T, f *fixture, userID string) (storage.MFACredential, []string) {
	t.Helper()
	rf := recovery.New(recovery.Options{Clock: f.clock})
	e, err := rf.BeginEnrollment(t.Context(), mfa.EnrollmentRequest{UserID: userID, Label: "recovery codes"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := rf.FinishEnrollment(t.Context(), e.Pending, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.db.CreateMFACredential(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	return c, e.Codes
}

func TestAccountSelfService(t *testing.T) { accountSelfService(t, backends{}) }

// The same on PostgreSQL and Redis (sessions in Redis).
func TestAccountSelfServiceOnPostgresAndRedis(t *testing.T) {
	accountSelfService(t, backends{postgres: true, redis: true})
}

func accountSelfService(t *testing.T, be backends) {
	mp := testenv.StartMailpit(t)
	be.options = func(o *broker.Options) { withAccounts(t, mp, o.Store.(storage.Durable))(o) }
	f := newFixtureOn(t, be)
	f.addUser(storage.User{Username: "bob", Email: "bob@example.com", EmailVerified: true}, "bob's password")
	f.addUser(storage.User{Username: "eve", Email: "eve@example.com", EmailVerified: true}, "eve's password")
	f.addClient(storage.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}}, "app-secret")
	conf := f.rp("app", "app-secret", "https://app.example/cb", "openid")
	ctx := context.Background()

	b, other, third, eve := f.browser(), f.browser(), f.browser(), f.browser()
	f.signedIn(t, b, conf, "bob", "bob's password")
	f.signedIn(t, other, conf, "bob", "bob's password")
	f.signedIn(t, third, conf, "bob", "bob's password")
	f.signedIn(t, eve, conf, "eve", "eve's password")
	resp, page := b.get(f.issuer + "/account")
	if resp.StatusCode != 200 || !contains(page, "(this device)") {
		t.Fatalf("account page: %d\n%s", resp.StatusCode, page)
	}
	csrf := field(t, csrfFieldRe, page)
	sids := sidFieldRe.FindAllStringSubmatch(page, -1)
	if len(sids) != 2 {
		t.Fatalf("%d other sessions listed, want 2\n%s", len(sids), page)
	}
	eveSessions, _ := f.broker.Sessions(ctx, "u-eve")

	// Profile: the name, trimmed; bad names and a bad CSRF token refused.
	for _, bad := range []string{"  ", strings.Repeat("n", 129), "Bob\x00Builder", "Bob\nBuilder"} {
		resp, page = b.post(f.issuer+"/account/profile", url.Values{"csrf": {csrf}, "name": {bad}})
		if resp.StatusCode != 400 || !contains(page, "Enter a name of 1 to 128 characters.") {
			t.Fatalf("name %q: %d\n%s", bad, resp.StatusCode, page)
		}
	}
	resp, page = b.post(f.issuer+"/account/profile", url.Values{"csrf": {"x"}, "name": {"Mallory"}})
	assertErrorPage(t, resp, page, 400, "Form expired", "The form was not valid. Open the account page again.")
	resp, page = b.post(f.issuer+"/account/profile", url.Values{"csrf": {csrf}, "name": {"  Bob Builder "}})
	if u, _ := f.db.GetUser(ctx, "u-bob"); resp.StatusCode != 200 || !contains(page, "Your name is saved.") || !contains(page, `value="Bob Builder"`) || u.Name != "Bob Builder" {
		t.Fatalf("name: %d %q\n%s", resp.StatusCode, u.Name, page)
	}
	if es := f.events(t, "user.profile.updated"); len(es) != 1 || es[0].Actor != "user:u-bob" {
		t.Fatalf("user.profile.updated: %+v", es)
	}

	// Sessions: CSRF refused; another user's session refused; end one;
	// end all others.
	resp, page = b.post(f.issuer+"/account/sessions/end", url.Values{"csrf": {"x"}, "sid": {sids[0][1]}})
	assertErrorPage(t, resp, page, 400, "Form expired", "The form was not valid. Open the account page again.")
	resp, page = b.post(f.issuer+"/account/sessions/end", url.Values{"csrf": {csrf}, "sid": {eveSessions[0].SID}})
	if resp.StatusCode != 404 || !contains(page, "That item is not on your account.") {
		t.Fatalf("eve's session: %d\n%s", resp.StatusCode, page)
	}
	if s, _ := f.broker.Sessions(ctx, "u-eve"); len(s) != 1 {
		t.Fatal("eve's session ended")
	}
	if s, _ := f.broker.Sessions(ctx, "u-bob"); len(s) != 3 {
		t.Fatalf("%d sessions after refusals, want 3", len(s))
	}
	resp, page = b.post(f.issuer+"/account/sessions/end", url.Values{"csrf": {csrf}, "sid": {sids[0][1]}})
	if resp.StatusCode != 200 || !contains(page, "The session is ended.") {
		t.Fatalf("end one: %d\n%s", resp.StatusCode, page)
	}
	if s, _ := f.broker.Sessions(ctx, "u-bob"); len(s) != 2 || slices.ContainsFunc(s, func(x session.Session) bool { return x.SID == sids[0][1] }) {
		t.Fatalf("after ending one: %d sessions", len(s))
	}
	resp, page = b.post(f.issuer+"/account/sessions/end", url.Values{"csrf": {csrf}, "sid": {"others"}})
	if resp.StatusCode != 200 || !contains(page, "You were signed out on your other devices.") {
		t.Fatalf("end others: %d\n%s", resp.StatusCode, page)
	}
	if s, _ := f.broker.Sessions(ctx, "u-bob"); len(s) != 1 {
		t.Fatalf("after ending others: %d sessions, want 1", len(s))
	}
	for _, br := range []*browser{other, third} {
		if resp, _ = br.getRaw(f.issuer + "/account"); resp.StatusCode != http.StatusSeeOther { // a sign-in starts
			t.Fatalf("an ended device still signed in: %d", resp.StatusCode)
		}
	}
	n := 0
	for _, e := range f.events(t, "session.ended") {
		if e.UserID == "u-bob" {
			if e.Actor != "user:u-bob" {
				t.Fatalf("session.ended by %q", e.Actor)
			}
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d session.ended events of bob, want 2", n)
	}

	// Linked identities: unlink needs a fresh sign-in or the password;
	// the last way in is refused.
	for _, id := range []storage.Identity{
		{ConnectorID: "github", Subject: "gh-1", UserID: "u-bob", Email: "bob@github.example"},
		{ConnectorID: "github", Subject: "gh-eve", UserID: "u-eve"},
	} {
		if err := f.db.CreateIdentity(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	resp, page = b.get(f.issuer + "/account")
	if !contains(page, "github · bob@github.example") {
		t.Fatalf("identity not listed:\n%s", page)
	}
	f.clock.Advance(broker.FreshAuthWindow + time.Minute)
	resp, page = b.post(f.issuer+"/account/identities/unlink", url.Values{"csrf": {csrf}, "connector": {"github"}})
	if resp.StatusCode != 400 || !contains(page, "For this change, enter your current password; without a password here, sign out and sign in again first.") {
		t.Fatalf("stale unlink: %d\n%s", resp.StatusCode, page)
	}
	resp, page = b.post(f.issuer+"/account/identities/unlink", url.Values{"csrf": {csrf}, "connector": {"github"}, "current": {"wrong"}})
	if resp.StatusCode != 400 || !contains(page, "The current password is not correct.") {
		t.Fatalf("wrong password: %d\n%s", resp.StatusCode, page)
	}
	if ids, _ := f.db.ListUserIdentities(ctx, "u-bob"); len(ids) != 1 {
		t.Fatal("unlinked without a fresh authentication")
	}
	resp, page = b.post(f.issuer+"/account/identities/unlink", url.Values{"csrf": {csrf}, "connector": {"github"}, "current": {"bob's password"}})
	if resp.StatusCode != 200 || !contains(page, "The service is unlinked from your account.") {
		t.Fatalf("unlink: %d\n%s", resp.StatusCode, page)
	}
	if ids, _ := f.db.ListUserIdentities(ctx, "u-bob"); len(ids) != 0 {
		t.Fatalf("still linked: %v", ids)
	}
	if ids, _ := f.db.ListUserIdentities(ctx, "u-eve"); len(ids) != 1 {
		t.Fatal("eve's identity touched")
	}
	if es := f.events(t, "identity.unlinked"); len(es) != 1 || es[0].Actor != "user:u-bob" || es[0].ConnectorID != "github" || es[0].IP != "127.0.0.1" {
		t.Fatalf("identity.unlinked: %+v", es)
	}
	// The last way in: a user without a password and one identity.
	fed := f.addUser(storage.User{Username: "fed", Email: "fed@example.com"}, "")
	if err := f.db.CreateIdentity(ctx, storage.Identity{ConnectorID: "github", Subject: "gh-fed", UserID: fed.ID}); err != nil {
		t.Fatal(err)
	}
	if err := f.db.UpdateUser(ctx, fed.ID, func(u storage.User) (storage.User, error) { u.PasswordHash = ""; return u, nil }); err != nil {
		t.Fatal(err)
	}
	fedCookie, _, err := session.NewStore(f.eph, session.Options{Clock: f.clock}).Create(ctx, fed.ID, "github", []string{"fed"})
	if err != nil {
		t.Fatal(err)
	}
	fb := f.browser()
	fb.setCookie("latchkey_session", fedCookie)
	resp, page = fb.get(f.issuer + "/account")
	fcsrf := field(t, csrfFieldRe, page)
	resp, page = fb.post(f.issuer+"/account/identities/unlink", url.Values{"csrf": {fcsrf}, "connector": {"github"}})
	if resp.StatusCode != 400 || !contains(page, "This is your last way to sign in: set a password or link another service first.") {
		t.Fatalf("last way in: %d\n%s", resp.StatusCode, page)
	}
	if ids, _ := f.db.ListUserIdentities(ctx, fed.ID); len(ids) != 1 {
		t.Fatal("last way in removed")
	}

	// Second factors: rename, another user's refused, recovery codes
	// regenerated once, remove needs a fresh authentication.
	cred, oldCodes := enrollRecovery(t, f, "u-bob")
	eveCred, _ := enrollRecovery(t, f, "u-eve")
	resp, page = b.post(f.issuer+"/account/factors/rename", url.Values{"csrf": {csrf}, "id": {cred.ID}, "label": {"  paper in the drawer "}})
	if resp.StatusCode != 200 || !contains(page, "The second factor is renamed.") || !contains(page, "Recovery codes · paper in the drawer") {
		t.Fatalf("rename: %d\n%s", resp.StatusCode, page)
	}
	resp, page = b.post(f.issuer+"/account/factors/rename", url.Values{"csrf": {csrf}, "id": {cred.ID}, "label": {" "}})
	if resp.StatusCode != 400 || !contains(page, "Enter a name of 1 to 64 characters.") {
		t.Fatalf("empty label: %d\n%s", resp.StatusCode, page)
	}
	for _, path := range []string{"/account/factors/rename", "/account/factors/remove"} {
		resp, page = b.post(f.issuer+path, url.Values{"csrf": {csrf}, "id": {eveCred.ID}, "label": {"mine"}, "current": {"bob's password"}})
		if resp.StatusCode != 404 || !contains(page, "That item is not on your account.") {
			t.Fatalf("%s eve's factor: %d\n%s", path, resp.StatusCode, page)
		}
		resp, page = b.post(f.issuer+path, url.Values{"csrf": {"x"}, "id": {cred.ID}, "label": {"mine"}, "current": {"bob's password"}})
		assertErrorPage(t, resp, page, 400, "Form expired", "The form was not valid. Open the account page again.")
	}
	if c, err := f.db.GetMFACredential(ctx, eveCred.ID); err != nil || c.Label != "recovery codes" {
		t.Fatalf("eve's factor changed: %v %+v", err, c)
	}
	resp, page = b.post(f.issuer+"/account/recovery", url.Values{"csrf": {csrf}})
	if resp.StatusCode != 400 || !contains(page, "For this change, enter your current password") {
		t.Fatalf("stale regenerate: %d\n%s", resp.StatusCode, page)
	}
	resp, page = b.post(f.issuer+"/account/recovery", url.Values{"csrf": {csrf}, "current": {"bob's password"}})
	codes := recoveryRe.FindAllStringSubmatch(page, -1)
	if resp.StatusCode != 200 || !contains(page, "Here are your new recovery codes.") || len(codes) != len(oldCodes) || codes[0][1] == oldCodes[0] {
		t.Fatalf("regenerate: %d\n%s", resp.StatusCode, page)
	}
	if _, page = b.get(f.issuer + "/account"); recoveryRe.MatchString(page) {
		t.Fatal("recovery codes shown again")
	}
	if len(f.events(t, "mfa.recovery.regenerated")) != 1 || len(f.events(t, "mfa.renamed")) != 1 {
		t.Fatal("no mfa events")
	}
	resp, page = b.post(f.issuer+"/account/factors/remove", url.Values{"csrf": {csrf}, "id": {cred.ID}})
	if resp.StatusCode != 400 || !contains(page, "For this change, enter your current password") {
		t.Fatalf("stale remove: %d\n%s", resp.StatusCode, page)
	}
	resp, page = b.post(f.issuer+"/account/factors/remove", url.Values{"csrf": {csrf}, "id": {cred.ID}, "current": {"bob's password"}})
	if resp.StatusCode != 200 || !contains(page, "The second factor is removed.") || !contains(page, "No second factor is set up.") {
		t.Fatalf("remove: %d\n%s", resp.StatusCode, page)
	}
	if _, err := f.db.GetMFACredential(ctx, cred.ID); err == nil {
		t.Fatal("factor not removed")
	}
	if es := f.events(t, "mfa.removed"); len(es) != 1 || es[0].Actor != "user:u-bob" {
		t.Fatalf("mfa.removed: %+v", es)
	}
	// Removing the last factor other than recovery codes removes the codes
	// too; with another factor left they stay.
	cred, _ = enrollRecovery(t, f, "u-bob")
	keys := []storage.MFACredential{{ID: "totp-1", UserID: "u-bob", Type: "totp", Label: "phone", Data: []byte("sealed")}, {ID: "totp-2", UserID: "u-bob", Type: "totp", Label: "tablet", Data: []byte("sealed")}}
	for _, k := range keys {
		if err := f.db.CreateMFACredential(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	resp, page = b.post(f.issuer+"/account/factors/remove", url.Values{"csrf": {csrf}, "id": {"totp-1"}, "current": {"bob's password"}})
	if left, _ := f.db.ListMFACredentials(ctx, "u-bob"); resp.StatusCode != 200 || !contains(page, "The second factor is removed.") || len(left) != 2 {
		t.Fatalf("remove one of two: %d %+v\n%s", resp.StatusCode, left, page)
	}
	resp, page = b.post(f.issuer+"/account/factors/remove", url.Values{"csrf": {csrf}, "id": {"totp-2"}, "current": {"bob's password"}})
	if left, _ := f.db.ListMFACredentials(ctx, "u-bob"); resp.StatusCode != 200 || len(left) != 0 ||
		!contains(page, "The second factor is removed. It was your last one, so your recovery codes are removed too.") {
		t.Fatalf("remove the last: %d %+v\n%s", resp.StatusCode, left, page)
	}
	if es := f.events(t, "mfa.removed"); len(es) != 4 || es[3].Data["credential_id"] != cred.ID || es[3].Data["reason"] != "last_factor_removed" {
		t.Fatalf("mfa.removed: %+v", es)
	}

	// Apps with consent: revoke deletes the consent and revokes that
	// client's refresh tokens for the user; another user's is refused.
	f.addClient(storage.Client{ID: "third", Name: "Third Party App", RedirectURIs: []string{"https://third.example/cb"}}, "third-secret")
	now := f.clock.Now()
	for _, c := range []storage.Consent{{UserID: "u-bob", ClientID: "third", Scopes: []string{"openid", "email"}}, {UserID: "u-eve", ClientID: "third", Scopes: []string{"openid"}}} {
		if err := f.db.PutConsent(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []storage.RefreshToken{{Hash: "rt-bob", FamilyID: "fam-bob", ClientID: "third", UserID: "u-bob", IssuedAt: now, FamilyCreatedAt: now},
		{Hash: "rt-eve", FamilyID: "fam-eve", ClientID: "third", UserID: "u-eve", IssuedAt: now, FamilyCreatedAt: now}} {
		if err := f.db.CreateRefreshToken(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	_, page = b.get(f.issuer + "/account")
	if !contains(page, "Third Party App · openid, email") {
		t.Fatalf("app not listed:\n%s", page)
	}
	resp, page = b.post(f.issuer+"/account/apps/revoke", url.Values{"csrf": {"x"}, "client": {"third"}})
	assertErrorPage(t, resp, page, 400, "Form expired", "The form was not valid. Open the account page again.")
	resp, page = b.post(f.issuer+"/account/apps/revoke", url.Values{"csrf": {csrf}, "client": {"app"}})
	if resp.StatusCode != 404 || !contains(page, "That item is not on your account.") {
		t.Fatalf("no consent to app: %d\n%s", resp.StatusCode, page)
	}
	resp, page = b.post(f.issuer+"/account/apps/revoke", url.Values{"csrf": {csrf}, "client": {"third"}})
	if resp.StatusCode != 200 || !contains(page, "The application no longer has access to your account.") || !contains(page, "No application has access to your account.") {
		t.Fatalf("revoke: %d\n%s", resp.StatusCode, page)
	}
	if _, err := f.db.GetConsent(ctx, "u-bob", "third"); err == nil {
		t.Fatal("consent not deleted")
	}
	if _, err := f.db.GetConsent(ctx, "u-eve", "third"); err != nil {
		t.Fatalf("eve's consent: %v", err)
	}
	if r, _ := f.db.GetRefreshToken(ctx, "rt-bob"); r.RevokedAt.IsZero() {
		t.Fatal("bob's refresh token not revoked")
	}
	if r, _ := f.db.GetRefreshToken(ctx, "rt-eve"); !r.RevokedAt.IsZero() {
		t.Fatal("eve's refresh token revoked")
	}
	if es := f.events(t, "consent.revoked"); len(es) != 1 || es[0].Actor != "user:u-bob" || es[0].ClientID != "third" || es[0].Data["refresh_tokens_revoked"] != float64(1) {
		t.Fatalf("consent.revoked: %+v", es)
	}

	// Recent security events: the newest first, with their time.
	_, page = b.get(f.issuer + "/account")
	if !contains(page, `<tr data-type="consent.revoked"><td>App access revoked</td>`) || !contains(page, `<tr data-type="mfa.removed"><td>Second factor removed</td>`) ||
		!contains(page, `<tr data-type="session.ended"><td>Session ended</td>`) || strings.Index(page, "App access revoked") > strings.Index(page, "Session ended") {
		t.Fatalf("events not listed:\n%s", page)
	}
	secrets := append([]string{"bob's password"}, oldCodes...)
	for _, c := range codes {
		secrets = append(secrets, c[1])
	}
	assertNoSecretsLogged(t, f, secrets)
}
