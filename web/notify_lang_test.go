package web_test

import (
	"bytes"
	"crypto/rand"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/internal/notify"
	"github.com/latchkeyid/latchkey/internal/notify/sms"
	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/mfa"
	"github.com/latchkeyid/latchkey/mfa/otp"
	"github.com/latchkeyid/latchkey/storage"
	"github.com/latchkeyid/latchkey/web/i18n"
)

// withTranslatedOTP adds the SMS factor (Twilio at tw) and the e-mail
// factor (mailpit) with their texts translated, as cmd wires them.
func withTranslatedOTP(t *testing.T, tw *twilioFake, mp *testenv.Mailpit) func(*broker.Options) {
	return func(o *broker.Options) {
		cat, err := i18n.New()
		if err != nil {
			t.Fatal(err)
		}
		key := bytes.Repeat([]byte{9}, 32)
		tsend, err := sms.NewTwilio(sms.TwilioOptions{BaseURL: tw.srv.URL, AccountSID: "ACtest", AuthToken: "twilio-token", From: "+15005550006",
			HTTPClient: loopbackClient(), Retry: notify.Retry{Attempts: 2, Initial: time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		for typ, d := range map[string]otp.Deliverer{
			mfa.TypeSMS:   otp.SMS{Sender: tsend, Translator: cat},
			mfa.TypeEmail: otp.Email{Sender: translatedSender(t, mp, o.Clock)},
		} {
			f, err := otp.New(otp.Options{Type: typ, Deliver: d, Key: key, Clock: o.Clock, Rand: rand.Reader})
			if err != nil {
				t.Fatal(err)
			}
			o.MFA.Factors[typ] = f
		}
	}
}

// The one-time codes go out in the language of the page that asked for
// them: SMS in German, e-mail in French when enrolling, in Japanese when
// signing in later.
func TestOTPTextsInTheRequestLanguage(t *testing.T) {
	mp := testenv.StartMailpit(t)
	tw := newTwilioFake(t)
	f := newFixtureOn(t, backends{options: withTranslatedOTP(t, tw, mp)})
	f.addUser(storage.User{Username: "alice", Email: "alice@example.com"}, "correct horse")
	f.addUser(storage.User{Username: "bob", Email: "bob@example.com", EmailVerified: true}, "battery staple")
	f.addClient(storage.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}}, "app-secret")

	enroll := func(lang, user, password, factor, address string) (*browser, string) {
		t.Helper()
		b := f.browser()
		b.setCookie("latchkey_lang", lang)
		_, _, page := f.mfaFlow(b, mfa.ACRMFA)
		resp, page := b.submitLogin(hidden(t, page), user, password)
		if resp.Request.URL.Path != "/mfa/enroll" {
			t.Fatalf("want the enrollment page, got %s\n%s", resp.Request.URL, page)
		}
		form := hidden(t, page)
		form.Set("factor", factor)
		form.Set("address", address)
		if resp, page = b.post(f.issuer+"/mfa/otp/enroll", form); resp.StatusCode != 200 {
			t.Fatalf("enroll %s: %d\n%s", factor, resp.StatusCode, page)
		}
		return b, page
	}

	enroll("de", "alice", "correct horse", "sms", "+49 151 12345678")
	tw.mu.Lock()
	m := tw.msgs[len(tw.msgs)-1]
	tw.mu.Unlock()
	if !regexp.MustCompile(`^[0-9]{6} ist Ihr Code für Latchkey\. Er läuft in 5 Minuten ab\.$`).MatchString(m.Body) || m.To != "+4915112345678" {
		t.Fatalf("de text %q to %q", m.Body, m.To)
	}

	b, page := enroll("fr", "bob", "battery staple", "email", "bob@example.com")
	mail := mp.Latest("bob@example.com")
	code := regexp.MustCompile(`    ([0-9]{6})\n`).FindStringSubmatch(mailText(mail))
	if code == nil || mail.Subject != "Votre code de vérification Latchkey" || mailText(mail) != "Votre code de vérification Latchkey est :\n\n    "+code[1]+
		"\n\nIl est valable 5 minutes. Si vous n’avez pas essayé de vous connecter, ignorez ce message et pensez à changer votre mot de passe." {
		t.Fatalf("fr mail %q:\n%q", mail.Subject, mailText(mail))
	}
	confirm := hidden(t, page)
	confirm.Set("code", code[1])
	if resp, page := b.post(f.issuer+"/mfa/otp/enroll/confirm", confirm); resp.StatusCode != 200 {
		t.Fatalf("confirm: %d\n%s", resp.StatusCode, page)
	}

	// Signing in later from a Japanese page: the challenge's code in ja.
	f.clock.Advance(10*time.Minute + time.Second)
	b2 := f.browser()
	b2.setCookie("latchkey_lang", "ja")
	_, _, page = f.mfaFlow(b2, mfa.ACRMFA)
	resp, page := b2.submitLogin(hidden(t, page), "bob", "battery staple")
	if resp.Request.URL.Query().Get("factor") != "email" {
		t.Fatalf("want the e-mail code page, got %s\n%s", resp.Request.URL, page)
	}
	ch := hidden(t, page)
	ch.Set("factor", "email")
	if resp, page = b2.post(f.issuer+"/mfa/otp/send", ch); resp.StatusCode != 200 {
		t.Fatalf("send: %d\n%s", resp.StatusCode, page)
	}
	mail = mp.Latest("bob@example.com")
	code = regexp.MustCompile(`    ([0-9]{6})\n`).FindStringSubmatch(mailText(mail))
	if code == nil || mail.Subject != "Latchkey の確認コード" || mailText(mail) != "Latchkey の確認コード:\n\n    "+code[1]+
		"\n\n有効期間は 5 分です。サインインしようとしていない場合は、このメッセージを無視し、パスワードの変更をご検討ください。" {
		t.Fatalf("ja mail %q:\n%q", mail.Subject, mailText(mail))
	}
}

// Every text of the built-in mail templates and of the SMS has a message
// in every language.
func TestEveryMailMessageInEveryLanguage(t *testing.T) {
	c, err := i18n.New()
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{otp.SMSText, "1 minute", "1 hour", "{{.N}} hours", "{{.N}} minutes"}
	tRe := regexp.MustCompile(`\{\{t "((?:[^"\\]|\\.)*)"`)
	dir := filepath.Join("..", "internal", "notify", "email", "templates", "en")
	files, err := fs.Glob(os.DirFS(dir), "*.*")
	if err != nil || len(files) < 10 {
		t.Fatalf("templates: %v %v", files, err)
	}
	for _, name := range files {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range tRe.FindAllStringSubmatch(string(data), -1) {
			ids = append(ids, m[1])
		}
	}
	if len(ids) < 30 {
		t.Fatalf("found only %d message ids", len(ids))
	}
	for _, l := range i18n.Languages {
		for _, id := range ids {
			if !c.Lookup(l, id) {
				t.Errorf("%s: no message %q", l.Code, id)
			}
		}
	}
}
