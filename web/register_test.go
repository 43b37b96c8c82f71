package web_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/internal/notify"
	"github.com/latchkeyid/latchkey/internal/notify/email"
	"github.com/latchkeyid/latchkey/internal/ratelimit"
	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/storage"
	"github.com/latchkeyid/latchkey/web/i18n"
)

// translatedSender mails through mp with the texts translated by the
// pages' catalog, as cmd wires it.
func translatedSender(t *testing.T, mp *testenv.Mailpit, clk clock.Clock) *email.Sender {
	t.Helper()
	cat, err := i18n.New()
	if err != nil {
		t.Fatal(err)
	}
	s, err := email.New(email.Options{Host: mp.SMTPHost, Port: mp.SMTPPort, TLS: email.TLSNone, From: "Latchkey <id@example.com>",
		Translator: cat, Clock: clk, Rand: rand.Reader, Retry: notify.Retry{Attempts: 2, Initial: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// withRegistration is withAccounts with self-registration on, mails in
// the request's language, limits.registrationPerIP at ipLimit an hour
// and limits.registrationPerAddress at 3 an hour.
func withRegistration(t *testing.T, mp *testenv.Mailpit, ipLimit int) func(*broker.Options) {
	return func(o *broker.Options) {
		withAccounts(t, mp, o.Store.(storage.Durable))(o)
		o.Accounts.Mailer = translatedSender(t, mp, o.Clock)
		o.Accounts.Registration = broker.RegistrationOptions{Enabled: true, RequireVerifiedEmail: true}
		o.Limits.Rules.RegistrationIP = ratelimit.Rule{Name: ratelimit.NameRegistrationIP, Limit: ipLimit, Window: time.Hour}
		o.Limits.Rules.RegistrationAddress = ratelimit.Rule{Name: ratelimit.NameRegistrationAddress, Limit: 3, Window: time.Hour}
	}
}

// mailText is a mail's text part with LF line ends and no final newline.
func mailText(m testenv.MailpitMessage) string {
	return strings.TrimRight(strings.ReplaceAll(m.Text, "\r\n", "\n"), "\n")
}

// registerForm opens authURL in b, follows the login page's "Create an
// account" link and returns the login page's and the form's hidden fields.
func registerForm(t *testing.T, f *fixture, b *browser, authURL string) (login, form url.Values) {
	t.Helper()
	_, page := b.get(authURL)
	login = hidden(t, page)
	if !contains(page, `<a id="register" href="/account/register?req=`+login.Get("req")+`">`) {
		t.Fatalf("no registration link:\n%s", page)
	}
	resp, page := b.get(f.issuer + "/account/register?req=" + login.Get("req"))
	if resp.StatusCode != 200 || !contains(page, `name="confirm" type="password" autocomplete="new-password"`) {
		t.Fatalf("register page: %d\n%s", resp.StatusCode, page)
	}
	assertHTMLHeaders(t, resp.Header)
	return login, hidden(t, page)
}

func register(b *browser, f *fixture, form url.Values, username, address, password, confirm string) (*http.Response, string) {
	v := cloneValues(form)
	v.Set("username", username)
	v.Set("email", address)
	v.Set("password", password)
	v.Set("confirm", confirm)
	return b.post(f.issuer+"/account/register", v)
}

func TestRegistrationOffByDefault(t *testing.T) {
	mp := testenv.StartMailpit(t)
	f := newFixtureOn(t, backends{options: func(o *broker.Options) { withAccounts(t, mp, o.Store.(storage.Durable))(o) }})
	f.addClient(storage.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}}, "app-secret")
	b := f.browser()
	_, page := b.get(f.rp("app", "app-secret", "https://app.example/cb", "openid").AuthCodeURL("s", oauthS256()...))
	login := hidden(t, page)
	if !contains(page, `id="forgot-password"`) || contains(page, `id="register"`) || contains(page, "Create an account") {
		t.Fatalf("login page:\n%s", page)
	}
	resp, page := b.get(f.issuer + "/account/register?req=" + login.Get("req"))
	assertErrorPage(t, resp, page, 404, "Not found", "You cannot create an account here.")
	resp, page = register(b, f, login, "newuser", "new@example.com", "a long new password", "a long new password")
	assertErrorPage(t, resp, page, 404, "Not found", "You cannot create an account here.")
	if _, err := f.db.GetUserByUsername(context.Background(), "newuser"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("user created: %v", err)
	}
}

// Registration is on, but the client allows no local password form:
// no link, and the page is not there for its requests.
func TestRegistrationOnlyWithThePasswordForm(t *testing.T) {
	mp := testenv.StartMailpit(t)
	f := newFixtureOn(t, backends{options: withRegistration(t, mp, 10)})
	f.addClient(storage.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}, AllowedConnectors: []string{"github"}}, "app-secret")
	b := f.browser()
	resp, page := b.get(f.rp("app", "app-secret", "https://app.example/cb", "openid").AuthCodeURL("s", oauthS256()...))
	if contains(page, `id="register"`) || !contains(page, "No sign-in method is available for this application.") {
		t.Fatalf("login page:\n%s", page)
	}
	resp, page = b.get(f.issuer + "/account/register?req=" + resp.Request.URL.Query().Get("req"))
	assertErrorPage(t, resp, page, 404, "Not found", "You cannot create an account here.")
}

func TestRegistrationLimitPerIP(t *testing.T) {
	mp := testenv.StartMailpit(t)
	f := newFixtureOn(t, backends{options: withRegistration(t, mp, 1)})
	f.addClient(storage.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}}, "app-secret")
	b := f.browser()
	_, form := registerForm(t, f, b, f.rp("app", "app-secret", "https://app.example/cb", "openid").AuthCodeURL("s", oauthS256()...))
	if resp, page := register(b, f, form, "first", "first@example.com", "a long new password", "a long new password"); resp.StatusCode != 200 {
		t.Fatalf("first: %d\n%s", resp.StatusCode, page)
	}
	resp, page := register(b, f, form, "second", "second@example.com", "a long new password", "a long new password")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" ||
		!contains(page, `<p class="error" role="alert" id="register-error">Too many attempts. Please wait `) ||
		!contains(page, `value="second@example.com"`) {
		t.Fatalf("over the limit: %d %q\n%s", resp.StatusCode, resp.Header.Get("Retry-After"), page)
	}
	f.broker.WaitAccountMail()
	if _, err := f.db.GetUserByUsername(context.Background(), "second"); !errors.Is(err, storage.ErrNotFound) || mp.Count("second@example.com") != 0 {
		t.Fatalf("second registration went through: %v", err)
	}
}

func TestRegistration(t *testing.T) { registration(t, backends{}) }

// The same on PostgreSQL and Redis: users in PostgreSQL, limits, links
// and the sign-in request in Redis.
func TestRegistrationOnPostgresAndRedis(t *testing.T) {
	registration(t, backends{postgres: true, redis: true})
}

func registration(t *testing.T, be backends) {
	mp := testenv.StartMailpit(t)
	be.options = withRegistration(t, mp, 20)
	f := newFixtureOn(t, be)
	f.addUser(storage.User{Username: "bob", Email: "bob@example.com", EmailVerified: true}, "bob's password")
	f.addClient(storage.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}}, "app-secret")
	conf := f.rp("app", "app-secret", "https://app.example/cb", "openid")
	ctx := context.Background()
	const password = "a long new password"

	b := f.browser()
	login, form := registerForm(t, f, b, conf.AuthCodeURL("s", oauthS256()...))
	reqID := login.Get("req")

	// No CSRF token: refused.
	bad := cloneValues(form)
	bad.Set("csrf", "x")
	resp, page := b.post(f.issuer+"/account/register", bad)
	assertErrorPage(t, resp, page, 400, "Form expired", "The form was not valid for this sign-in. Go back to the application and start again.")

	// Every bad field: the form again with its message; nothing stored,
	// counted or sent, and the password is not shown back.
	for _, tc := range []struct{ username, address, password, confirm, field, msg string }{
		{"", "new@example.com", password, password, "username", "Choose a username of 1 to 64 characters: letters, digits, '.', '_', '-' or '@'."},
		{"new user", "new@example.com", password, password, "username", "Choose a username of 1 to 64 characters: letters, digits, '.', '_', '-' or '@'."},
		{strings.Repeat("n", 65), "new@example.com", password, password, "username", "Choose a username of 1 to 64 characters: letters, digits, '.', '_', '-' or '@'."},
		{"newuser", "not an address", password, password, "email", "Enter an e-mail address such as name@example.com."},
		{"newuser", "new@example.com", "short", "short", "password", "Password refused: use at least 8 characters."},
		{"newuser", "new@example.com", "correct horse battery", "correct horse battery", "password", "Password refused: this password appears in a list of leaked passwords; choose another."},
		{"newuser", "new@example.com", "new@example.com", "new@example.com", "password", "Password refused: do not use your username or e-mail address as the password."},
		{"newuser", "new@example.com", password, "a long new passwort", "confirm", "The two passwords are not the same."},
	} {
		resp, page := register(b, f, form, tc.username, tc.address, tc.password, tc.confirm)
		want := `<p class="error" id="` + tc.field + `-error">` + tc.msg + `</p>`
		if resp.StatusCode != 400 || !contains(page, want) || !contains(page, `aria-describedby="`+tc.field+`-error"`) ||
			strings.Count(page, `class="error" id=`) != 1 || strings.Contains(page, tc.password) && tc.password != tc.address {
			t.Fatalf("%s %q: %d, want %s\n%s", tc.field, tc.username+"/"+tc.password, resp.StatusCode, want, page)
		}
	}
	// Several at once: each field says its own.
	resp, page = register(b, f, form, "", "nope", "short", "other")
	if resp.StatusCode != 400 || strings.Count(page, `class="error" id=`) != 3 {
		t.Fatalf("three errors: %d\n%s", resp.StatusCode, page)
	}
	if _, err := f.db.GetUserByUsername(ctx, "newuser"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("user stored by a refused form: %v", err)
	}

	// A good form: the account, unverified, and a verification link.
	resp, sent := register(b, f, form, "NewUser", "new@example.com", password, password)
	wantSent := `<p class="notice" role="status" id="register-sent">We sent a message to <strong>n••@example.com</strong>. Open the link in it to confirm your address, then sign in.</p>`
	if resp.StatusCode != 200 || !contains(sent, wantSent) {
		t.Fatalf("registered: %d\n%s", resp.StatusCode, sent)
	}
	f.broker.WaitAccountMail()
	u, err := f.db.GetUserByUsername(ctx, "newuser")
	if err != nil || u.Email != "new@example.com" || u.EmailVerified || u.PasswordHash == "" || u.Disabled {
		t.Fatalf("user %+v %v", u, err)
	}
	_, token := mailedLink(t, mp, "new@example.com", "Confirm your e-mail address for Latchkey")
	if ev := f.events(t, "user.registered"); len(ev) != 1 || ev[0].UserID != u.ID || ev[0].Actor != "user:"+u.ID || ev[0].Data["username"] != "newuser" {
		t.Fatalf("user.registered events %+v", ev)
	}

	// No enumeration: a taken username, a fresh account and a taken
	// address get the same page, byte for byte; the mails say the rest.
	_, p1 := register(b, f, form, "bob", "dave@example.com", password, password)
	f.broker.WaitAccountMail()
	m := mp.Latest("dave@example.com")
	wantTaken := "Hello,\n\nSomeone, probably you, tried to create a Latchkey account with this e-mail address and the username bob. " +
		"That username is taken, so no account was created.\n\nTo create your account, register again with another username.\n\n" +
		"If it was not you, ignore this message."
	if m.Subject != "Your Latchkey account was not created" || mailText(m) != wantTaken {
		t.Fatalf("username taken mail %q:\n%q", m.Subject, mailText(m))
	}
	_, p2 := register(b, f, form, "dave", "dave@example.com", password, password)
	f.broker.WaitAccountMail()
	mailedLink(t, mp, "dave@example.com", "Confirm your e-mail address for Latchkey")
	_, p3 := register(b, f, form, "erin", "dave@example.com", password, password)
	f.broker.WaitAccountMail()
	if p1 != p2 || p2 != p3 {
		t.Fatalf("the answers differ:\n%s\n---\n%s\n---\n%s", p1, p2, p3)
	}
	m = mp.Latest("dave@example.com")
	wantExisting := "Hello dave,\n\nSomeone tried to create a new Latchkey account with this e-mail address. It already belongs to your account, " +
		"so no new account was created.\n\nIf it was you: sign in as dave, or choose a new password if you forgot it:\n\n" +
		f.issuer + "/account/forgot\n\nIf it was not you, ignore this message: nothing changed on your account."
	if m.Subject != "Someone tried to register with your address at Latchkey" || mailText(m) != wantExisting {
		t.Fatalf("existing address mail %q:\n%q", m.Subject, mailText(m))
	}
	if _, err := f.db.GetUserByUsername(ctx, "erin"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("erin created: %v", err)
	}
	if ev := f.events(t, "user.registration.refused"); len(ev) != 2 {
		t.Fatalf("user.registration.refused events %+v", ev)
	}
	// Per address, 3 an hour (counted for every address alike).
	resp, page = register(b, f, form, "frank", "dave@example.com", password, password)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !contains(page, "Too many attempts. Please wait") {
		t.Fatalf("per address: %d\n%s", resp.StatusCode, page)
	}

	// Signing in before the address is confirmed: refused, with a new
	// link (Keycloak's "verify email"); a wrong password says nothing more.
	resp, page = b.submitLogin(login, "newuser", "wrong password")
	if resp.StatusCode != 200 || !contains(page, "Incorrect username or password.") {
		t.Fatalf("wrong password: %d\n%s", resp.StatusCode, page)
	}
	resp, page = b.submitLogin(login, "newuser", password)
	if resp.StatusCode != http.StatusForbidden || !contains(page, `<p class="error" role="alert" id="login-error">Confirm your e-mail address first. We sent a new link to your address: open it, then sign in.</p>`) {
		t.Fatalf("unverified sign-in: %d\n%s", resp.StatusCode, page)
	}
	if s, _ := f.broker.Sessions(ctx, u.ID); len(s) != 0 || b.cookie("latchkey_session") != "" {
		t.Fatalf("signed in before confirming: %d sessions", len(s))
	}
	f.broker.WaitAccountMail()
	if n := mp.Count("new@example.com"); n != 2 {
		t.Fatalf("%d mails to the new address, want 2", n)
	}
	if ev := f.events(t, "user.login.refused"); len(ev) != 1 || ev[0].UserID != u.ID || ev[0].Data["reason"] != "email_not_verified" {
		t.Fatalf("user.login.refused events %+v", ev)
	}

	// The link: the address is confirmed, and the sign-in goes on.
	link2, token2 := mailedLink(t, mp, "new@example.com", "Confirm your e-mail address for Latchkey")
	resp, page = b.post(f.issuer+"/account/verify-email", url.Values{"token": {field(t, tokenFieldRe, page0(b, link2))}})
	if resp.StatusCode != 200 || !contains(page, "Your e-mail address is confirmed.") ||
		!contains(page, `<a id="continue-sign-in" href="/login?req=`+reqID+`">Continue signing in</a>`) {
		t.Fatalf("confirm: %d\n%s", resp.StatusCode, page)
	}
	if u, _ := f.db.GetUser(ctx, u.ID); !u.EmailVerified {
		t.Fatal("not verified")
	}
	resp, page = b.get(f.issuer + "/login?req=" + reqID)
	if resp.StatusCode != 200 {
		t.Fatalf("login page again: %d\n%s", resp.StatusCode, page)
	}
	resp, page = b.submitLogin(hidden(t, page), "newuser", password)
	if q := callback(t, resp, page, "https://app.example/cb"); q.Get("code") == "" || q.Get("state") != "s" {
		t.Fatalf("callback %v", q)
	}
	assertNoSecretsLogged(t, f, []string{token, token2, password})
}

// The mails speak the language of the page that caused them: the sign-in
// request's ui_locales, else the language cookie (switcher).
func TestAccountMailsInTheRequestLanguage(t *testing.T) {
	mp := testenv.StartMailpit(t)
	f := newFixtureOn(t, backends{options: withRegistration(t, mp, 20)})
	f.addUser(storage.User{Username: "bob", Email: "bob@example.com", EmailVerified: true}, "bob's password")
	f.addClient(storage.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}}, "app-secret")
	conf := f.rp("app", "app-secret", "https://app.example/cb", "openid")
	const password = "a long new password"

	// Verification, ui_locales=es.
	b := f.browser()
	_, form := registerForm(t, f, b, conf.AuthCodeURL("s", append(oauthS256(), oauth2.SetAuthURLParam("ui_locales", "es-MX"))...))
	if resp, page := register(b, f, form, "nuevo", "nuevo@example.com", password, password); resp.StatusCode != 200 ||
		!contains(page, "Hemos enviado un mensaje a <strong>n••••@example.com</strong>.") {
		t.Fatalf("es: %d\n%s", resp.StatusCode, page)
	}
	f.broker.WaitAccountMail()
	link, _ := mailedLink(t, mp, "nuevo@example.com", "Confirme su dirección de correo electrónico para Latchkey")
	m := mp.Latest("nuevo@example.com")
	want := "Hola, nuevo:\n\nConfirme que esta es su dirección de correo electrónico para Latchkey abriendo este enlace:\n\n" + link +
		"\n\nEl enlace funciona una vez, durante 24 horas. Si no lo ha pedido, ignore este mensaje."
	if mailText(m) != want || !strings.Contains(m.HTML, `<html lang="es">`) || !strings.Contains(m.HTML, ">Confirmar mi dirección de correo electrónico</a>") {
		t.Fatalf("es mail:\n%q\n%s", mailText(m), m.HTML)
	}

	// A taken username, the switcher's cookie de.
	b = f.browser()
	b.setCookie("latchkey_lang", "de")
	_, form = registerForm(t, f, b, conf.AuthCodeURL("s", oauthS256()...))
	if resp, page := register(b, f, form, "bob", "neu@example.com", password, "other"); resp.StatusCode != 400 ||
		!contains(page, `<p class="error" id="confirm-error">Die beiden Passwörter stimmen nicht überein.</p>`) {
		t.Fatalf("de field error: %d\n%s", resp.StatusCode, page)
	}
	if resp, page := register(b, f, form, "bob", "neu@example.com", password, password); resp.StatusCode != 200 ||
		!contains(page, "<h1>Konto erstellen</h1>") || !contains(page, "Wir haben eine Nachricht an <strong>n••@example.com</strong> gesendet.") {
		t.Fatalf("de page: %d\n%s", resp.StatusCode, page)
	}
	f.broker.WaitAccountMail()
	m = mp.Latest("neu@example.com")
	want = "Hallo,\n\nJemand, wahrscheinlich Sie, hat versucht, mit dieser E-Mail-Adresse und dem Benutzernamen bob ein Konto bei Latchkey zu erstellen. " +
		"Dieser Benutzername ist vergeben, daher wurde kein Konto erstellt.\n\nUm Ihr Konto zu erstellen, registrieren Sie sich erneut mit einem anderen Benutzernamen.\n\n" +
		"Wenn Sie das nicht waren, ignorieren Sie diese Nachricht."
	if m.Subject != "Ihr Konto bei Latchkey wurde nicht erstellt" || mailText(m) != want {
		t.Fatalf("de mail %q:\n%q", m.Subject, mailText(m))
	}

	// A taken address, ja: the owner's mail.
	b = f.browser()
	b.setCookie("latchkey_lang", "ja")
	_, form = registerForm(t, f, b, conf.AuthCodeURL("s", oauthS256()...))
	register(b, f, form, "someone", "bob@example.com", password, password)
	f.broker.WaitAccountMail()
	m = mp.Latest("bob@example.com")
	want = "bob 様\n\nこのメールアドレスで Latchkey の新しいアカウントを作成しようとした人がいます。このアドレスはすでにあなたのアカウントのものなので、新しいアカウントは作成されていません。\n\n" +
		"ご本人の場合は bob としてサインインしてください。パスワードを忘れた場合は、新しいパスワードを設定してください:\n\n" + f.issuer + "/account/forgot\n\n" +
		"心当たりがない場合は、このメッセージを無視してください。アカウントには何も変更されていません。"
	if m.Subject != "あなたのアドレスで Latchkey への登録が試みられました" || mailText(m) != want {
		t.Fatalf("ja mail %q:\n%q", m.Subject, mailText(m))
	}

	// Password reset, fr.
	b = f.browser()
	b.setCookie("latchkey_lang", "fr")
	_, page := b.get(f.issuer + "/account/forgot")
	b.post(f.issuer+"/account/forgot", url.Values{"csrf": {field(t, csrfFieldRe, page)}, "email": {"bob@example.com"}})
	f.broker.WaitAccountMail()
	link, _ = mailedLink(t, mp, "bob@example.com", "Réinitialisez votre mot de passe Latchkey")
	want = "Bonjour bob,\n\nQuelqu’un a demandé la réinitialisation du mot de passe de votre compte Latchkey. Pour choisir un nouveau mot de passe, ouvrez ce lien :\n\n" +
		link + "\n\nLe lien fonctionne une fois, pendant 1 heure. Choisir un nouveau mot de passe vous déconnecte partout ailleurs. " +
		"Si vous n’avez rien demandé, ignorez ce message : votre mot de passe ne change pas."
	if m = mp.Latest("bob@example.com"); mailText(m) != want {
		t.Fatalf("fr mail:\n%q", mailText(m))
	}
}
