package web_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/internal/httpclient"
	"github.com/latchkeyid/latchkey/internal/notify"
	"github.com/latchkeyid/latchkey/internal/notify/email"
	"github.com/latchkeyid/latchkey/internal/notify/sms"
	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/mfa"
	"github.com/latchkeyid/latchkey/mfa/otp"
	"github.com/latchkeyid/latchkey/storage"
)

// twilioFake is a local server that checks requests exactly as Twilio
// documents its Messages resource and keeps the messages.
type twilioFake struct {
	t    *testing.T
	srv  *httptest.Server
	mu   sync.Mutex
	msgs []sms.Message
}

// failTo is a number the fake refuses (400), as Twilio does invalid ones.
const failTo = "+15005550001"

func newTwilioFake(t *testing.T) *twilioFake {
	tw := &twilioFake{t: t}
	tw.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if r.Method != http.MethodPost || r.URL.Path != "/2010-04-01/Accounts/ACtest/Messages.json" || !ok || u != "ACtest" || p != "twilio-token" ||
			r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			t.Errorf("not a Twilio Messages request: %s %s %v", r.Method, r.URL.Path, r.Header)
			w.WriteHeader(400)
			return
		}
		r.ParseForm()
		if r.PostForm.Get("From") != "+15005550006" || len(r.PostForm) != 3 {
			t.Errorf("form %v", r.PostForm)
		}
		to := r.PostForm.Get("To")
		if to == failTo {
			w.WriteHeader(400)
			io.WriteString(w, `{"code":21211,"message":"invalid To","status":400}`)
			return
		}
		tw.mu.Lock()
		tw.msgs = append(tw.msgs, sms.Message{To: to, Body: r.PostForm.Get("Body")})
		tw.mu.Unlock()
		w.WriteHeader(201)
		io.WriteString(w, `{"sid":"SM1","status":"queued"}`)
	}))
	t.Cleanup(tw.srv.Close)
	return tw
}

var smsCodeRe = regexp.MustCompile(`^([0-9]{6}) is your Latchkey code\. It expires in 5 minutes\.$`)

// last returns the code of the newest message, checking its text and
// recipient.
func (tw *twilioFake) last(to string) string {
	tw.t.Helper()
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if len(tw.msgs) == 0 {
		tw.t.Fatal("no text message sent")
	}
	m := tw.msgs[len(tw.msgs)-1]
	c := smsCodeRe.FindStringSubmatch(m.Body)
	if m.To != to || c == nil {
		tw.t.Fatalf("message %q to %q", m.Body, m.To)
	}
	return c[1]
}

func (tw *twilioFake) count() int {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	return len(tw.msgs)
}

func loopbackClient() *http.Client {
	return httpclient.New(httpclient.Options{AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
}

// withOTP adds the SMS factor (Twilio at tw) and, when mp is set, the
// e-mail factor (SMTP to mailpit) to the fixture's factors.
func withOTP(t *testing.T, tw *twilioFake, mp *testenv.Mailpit) func(*broker.Options) {
	return func(o *broker.Options) {
		key := bytes.Repeat([]byte{9}, 32)
		tsend, err := sms.NewTwilio(sms.TwilioOptions{BaseURL: tw.srv.URL, AccountSID: "ACtest", AuthToken: "twilio-token", From: "+15005550006",
			HTTPClient: loopbackClient(), Retry: notify.Retry{Attempts: 2, Initial: time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		f, err := otp.New(otp.Options{Type: mfa.TypeSMS, Deliver: otp.SMS{Sender: tsend}, Key: key, Clock: o.Clock, Rand: rand.Reader})
		if err != nil {
			t.Fatal(err)
		}
		o.MFA.Factors[mfa.TypeSMS] = f
		if mp == nil {
			return
		}
		f, err = otp.New(otp.Options{Type: mfa.TypeEmail, Deliver: otp.Email{Sender: mailpitSender(t, mp, o.Clock)}, Key: key, Clock: o.Clock, Rand: rand.Reader})
		if err != nil {
			t.Fatal(err)
		}
		o.MFA.Factors[mfa.TypeEmail] = f
	}
}

func mailpitSender(t *testing.T, mp *testenv.Mailpit, clk clock.Clock) *email.Sender {
	t.Helper()
	s, err := email.New(email.Options{Host: mp.SMTPHost, Port: mp.SMTPPort, TLS: email.TLSNone, From: "Latchkey <id@example.com>",
		Clock: clk, Rand: rand.Reader, Retry: notify.Retry{Attempts: 2, Initial: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func wrongCode(code string) string {
	if code == "000000" {
		return "111111"
	}
	return "000000"
}

func TestOTPSMSEnrollAndChallenge(t *testing.T) { otpSMSFlow(t, backends{}) }

// The same on PostgreSQL and Redis, as in production: the challenge
// state, attempt counter and limits live in Redis.
func TestOTPSMSOnPostgresAndRedis(t *testing.T) { otpSMSFlow(t, backends{postgres: true, redis: true}) }

func otpSMSFlow(t *testing.T, be backends) {
	tw := newTwilioFake(t)
	be.options = withOTP(t, tw, nil)
	f := newFixtureOn(t, be)
	f.addUser(storage.User{Username: "alice", Email: "alice@example.com"}, "correct horse")
	f.addClient(storage.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}}, "app-secret")
	var secrets []string

	// acr_values=mfa with nothing enrolled: the TOTP page offers SMS.
	b := f.browser()
	m, _, page := f.mfaFlow(b, mfa.ACRMFA)
	resp, page := b.submitLogin(hidden(t, page), "alice", "correct horse")
	if resp.Request.URL.Path != "/mfa/enroll" || !contains(page, `id="enroll-sms"`) {
		t.Fatalf("want the enrollment page with an SMS link, got %s\n%s", resp.Request.URL, page)
	}
	form := hidden(t, page)
	resp, page = b.get(f.issuer + "/mfa/otp/enroll?req=" + form.Get("req") + "&factor=sms")
	if resp.StatusCode != 200 || !contains(page, `name="address" type="tel"`) {
		t.Fatalf("enroll form: %d\n%s", resp.StatusCode, page)
	}
	assertHTMLHeaders(t, resp.Header)

	// A number not in E.164: the form again, the rule said, nothing sent.
	form.Set("factor", "sms")
	form.Set("address", "0151 12345678")
	resp, page = b.post(f.issuer+"/mfa/otp/enroll", form)
	if resp.StatusCode != 400 || !contains(page, "Enter the number in international format, starting with + and the country code, e.g. +49 151 23456789.") || tw.count() != 0 {
		t.Fatalf("bad number: %d\n%s", resp.StatusCode, page)
	}
	// A number the provider refuses: a clear message and an event.
	form.Set("address", failTo)
	resp, page = b.post(f.issuer+"/mfa/otp/enroll", form)
	if resp.StatusCode != 503 || !contains(page, "We could not send the code right now; try again in a moment or use another method.") {
		t.Fatalf("refused number: %d\n%s", resp.StatusCode, page)
	}
	if ev := f.events(t, "mfa.otp.send_failed"); len(ev) != 1 || ev[0].Data["error"] != "otp: the code could not be sent: notify: send failed: sms via twilio: twilio answered 400" {
		t.Fatalf("send_failed events %+v", ev)
	}

	form.Set("address", "+49 151 12345678")
	resp, page = b.post(f.issuer+"/mfa/otp/enroll", form)
	if resp.StatusCode != 200 || !contains(page, "We sent a 6-digit code to <strong>+49•••••••••78</strong>") {
		t.Fatalf("code sent page: %d\n%s", resp.StatusCode, page)
	}
	code := tw.last("+4915112345678")
	secrets = append(secrets, code)
	confirm := hidden(t, page)
	confirm.Set("code", wrongCode(code))
	resp, page = b.post(f.issuer+"/mfa/otp/enroll/confirm", confirm)
	if resp.StatusCode != 400 || !contains(page, "That code is not valid") {
		t.Fatalf("wrong code: %d\n%s", resp.StatusCode, page)
	}
	confirm.Set("code", code)
	resp, page = b.post(f.issuer+"/mfa/otp/enroll/confirm", confirm)
	codes := recoveryRe.FindAllStringSubmatch(page, -1)
	if resp.StatusCode != 200 || len(codes) == 0 {
		t.Fatalf("want recovery codes: %d\n%s", resp.StatusCode, page)
	}
	for _, c := range codes {
		secrets = append(secrets, c[1])
	}
	resp, page = b.post(f.issuer+"/mfa/continue", hidden(t, page))
	if acr, amr := claimsOf(t, m.idToken(resp, page)); acr != mfa.ACRMFA || !slices.Equal(amr, []string{"pwd", "sms", "mfa"}) {
		t.Fatalf("after enrollment: acr %q amr %q", acr, amr)
	}
	creds, _ := f.db.ListMFACredentials(t.Context(), "u-alice")
	i := slices.IndexFunc(creds, func(c mfa.Credential) bool { return c.Type == mfa.TypeSMS })
	if len(creds) != 2 || i < 0 || creds[i].Label != "+49•••••••••78" || bytes.Contains(creds[i].Data, []byte("pending")) {
		t.Fatalf("credentials %v", creds)
	}

	// A new browser: password, then the code page (SMS before recovery).
	f.clock.Advance(10*time.Minute + time.Second) // two windows of the factor limit: a fresh budget
	b2 := f.browser()
	m, _, page = f.mfaFlow(b2, mfa.ACRMFA)
	resp, page = b2.submitLogin(hidden(t, page), "alice", "correct horse")
	if resp.Request.URL.Path != "/mfa/otp" || resp.Request.URL.Query().Get("factor") != "sms" ||
		!contains(page, "We will send a 6-digit code to <strong>+49•••••••••78</strong>") || !contains(page, `id="use-recovery"`) {
		t.Fatalf("want the SMS page, got %s\n%s", resp.Request.URL, page)
	}
	ch := hidden(t, page)
	ch.Set("factor", "sms")
	resp, page = b2.post(f.issuer+"/mfa/otp/send", ch)
	if resp.StatusCode != 200 || !contains(page, "We sent a 6-digit code") {
		t.Fatalf("send: %d\n%s", resp.StatusCode, page)
	}
	code = tw.last("+4915112345678")
	secrets = append(secrets, code)
	// Four wrong answers are refused; the fifth voids the code (the
	// factor limit, 5 per 5 minutes, allows exactly these five).
	ch.Set("code", wrongCode(code))
	for i := 1; i <= otp.MaxAttempts; i++ {
		resp, page = b2.post(f.issuer+"/mfa/otp", ch)
		want := "That code is not valid"
		if i == otp.MaxAttempts {
			want = "There is no valid code for this sign-in; send a new code."
		}
		if resp.StatusCode != 400 || !contains(page, want) {
			t.Fatalf("wrong answer %d: %d\n%s", i, resp.StatusCode, page)
		}
	}
	// The sixth check in the window is over the factor limit.
	ch.Set("code", code)
	resp, page = b2.post(f.issuer+"/mfa/otp", ch)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("over the limit: %d\n%s", resp.StatusCode, page)
	}

	// A fresh sign-in after two windows of the factor limit: a code
	// before any was sent is refused; then send, answer, signed in.
	f.clock.Advance(10*time.Minute + time.Second)
	b2 = f.browser()
	m, _, page = f.mfaFlow(b2, mfa.ACRMFA)
	_, page = b2.submitLogin(hidden(t, page), "alice", "correct horse")
	ch = hidden(t, page)
	ch.Set("factor", "sms")
	ch.Set("code", "123456")
	resp, page = b2.post(f.issuer+"/mfa/otp", ch)
	if resp.StatusCode != 400 || !contains(page, "There is no valid code for this sign-in; send a new code.") {
		t.Fatalf("no code yet: %d\n%s", resp.StatusCode, page)
	}
	b2.post(f.issuer+"/mfa/otp/send", ch)
	code = tw.last("+4915112345678")
	secrets = append(secrets, code)
	ch.Set("code", code)
	old := b2.cookie("latchkey_session")
	resp, page = b2.post(f.issuer+"/mfa/otp", ch)
	if acr, amr := claimsOf(t, m.idToken(resp, page)); acr != mfa.ACRMFA || !slices.Equal(amr, []string{"pwd", "sms", "mfa"}) {
		t.Fatalf("after the SMS code: acr %q amr %q", acr, amr)
	}
	if b2.cookie("latchkey_session") == old {
		t.Fatal("the session cookie did not rotate")
	}
	if n := len(f.events(t, "mfa.otp.sent")); n != 3 {
		t.Fatalf("mfa.otp.sent events = %d, want 3", n)
	}

	// Sends are limited per account (limits.otpSendPerAccount, 5 / 15m):
	// after two windows, five sends, then 429.
	f.clock.Advance(30*time.Minute + time.Second)
	b3 := f.browser()
	_, _, page = f.mfaFlow(b3, mfa.ACRMFA)
	_, page = b3.submitLogin(hidden(t, page), "alice", "correct horse")
	ch = hidden(t, page)
	ch.Set("factor", "sms")
	statuses := []int{}
	for range 6 {
		resp, _ = b3.post(f.issuer+"/mfa/otp/send", ch)
		statuses = append(statuses, resp.StatusCode)
	}
	if !slices.Equal(statuses, []int{200, 200, 200, 200, 200, 429}) {
		t.Fatalf("send statuses %v", statuses)
	}

	assertNoSecretsLogged(t, f, append(secrets, "+4915112345678", "4915112345678", "151 12345678", failTo))
}

// assertNoSecretsLogged checks the server's log and the audit events.
func assertNoSecretsLogged(t *testing.T, f *fixture, secrets []string) {
	t.Helper()
	logs := f.logs.String()
	evs, err := f.db.ListEvents(t.Context(), storage.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	events, err := json.Marshal(evs)
	if err != nil {
		t.Fatal(err)
	}
	if logs == "" {
		t.Fatal("no logs captured")
	}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		if strings.Contains(logs, s) {
			t.Errorf("a secret (%d chars) appears in the logs", len(s))
		}
		if bytes.Contains(events, []byte(s)) {
			t.Errorf("a secret (%d chars) appears in the audit events", len(s))
		}
	}
}

// contains looks for s in a page's text (html/template writes + as &#43;).
func contains(page, s string) bool { return strings.Contains(html.UnescapeString(page), s) }

var mailCodeRe = regexp.MustCompile(`verification code is:\s+([0-9]{6})\s`)

func TestOTPEmailEnroll(t *testing.T) {
	mp := testenv.StartMailpit(t)
	tw := newTwilioFake(t)
	f := newFixtureOn(t, backends{options: withOTP(t, tw, mp)})
	f.addUser(storage.User{Username: "bob", Email: "bob@example.com", EmailVerified: true}, "battery staple")
	f.addClient(storage.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}}, "app-secret")

	b := f.browser()
	m, _, page := f.mfaFlow(b, mfa.ACRMFA)
	resp, page := b.submitLogin(hidden(t, page), "bob", "battery staple")
	if resp.Request.URL.Path != "/mfa/enroll" || !contains(page, `id="enroll-email"`) {
		t.Fatalf("want the enrollment page with an e-mail link, got %s\n%s", resp.Request.URL, page)
	}
	form := hidden(t, page)
	resp, page = b.get(f.issuer + "/mfa/otp/enroll?req=" + form.Get("req") + "&factor=email")
	if resp.StatusCode != 200 || !contains(page, `type="email" autocomplete="email" value="bob@example.com"`) {
		t.Fatalf("enroll form: %d\n%s", resp.StatusCode, page)
	}
	form.Set("factor", "email")
	form.Set("address", "bob@example.com")
	resp, page = b.post(f.issuer+"/mfa/otp/enroll", form)
	if resp.StatusCode != 200 || !contains(page, "We sent a 6-digit code to <strong>b••@example.com</strong>") {
		t.Fatalf("code sent page: %d\n%s", resp.StatusCode, page)
	}
	msg := mp.Latest("bob@example.com")
	c := mailCodeRe.FindStringSubmatch(msg.Text)
	if msg.Subject != "Your Latchkey verification code" || c == nil || !strings.Contains(msg.HTML, ">"+c[1]+"</p>") {
		t.Fatalf("mail %q:\n%s\n%s", msg.Subject, msg.Text, msg.HTML)
	}
	confirm := hidden(t, page)
	confirm.Set("code", c[1])
	resp, page = b.post(f.issuer+"/mfa/otp/enroll/confirm", confirm)
	if resp.StatusCode != 200 || len(recoveryRe.FindAllStringSubmatch(page, -1)) == 0 {
		t.Fatalf("want recovery codes: %d\n%s", resp.StatusCode, page)
	}
	resp, page = b.post(f.issuer+"/mfa/continue", hidden(t, page))
	if acr, amr := claimsOf(t, m.idToken(resp, page)); acr != mfa.ACRMFA || !slices.Equal(amr, []string{"pwd", "mail", "mfa"}) {
		t.Fatalf("after enrollment: acr %q amr %q", acr, amr)
	}

	// The challenge: the code goes to the enrolled address.
	f.clock.Advance(10*time.Minute + time.Second)
	b2 := f.browser()
	m, _, page = f.mfaFlow(b2, mfa.ACRMFA)
	resp, page = b2.submitLogin(hidden(t, page), "bob", "battery staple")
	if resp.Request.URL.Query().Get("factor") != "email" {
		t.Fatalf("want the e-mail code page, got %s", resp.Request.URL)
	}
	ch := hidden(t, page)
	ch.Set("factor", "email")
	b2.post(f.issuer+"/mfa/otp/send", ch)
	c2 := mailCodeRe.FindStringSubmatch(mp.Latest("bob@example.com").Text)
	if c2 == nil {
		t.Fatal("no code mailed")
	}
	ch.Set("code", c2[1])
	resp, page = b2.post(f.issuer+"/mfa/otp", ch)
	if _, amr := claimsOf(t, m.idToken(resp, page)); !slices.Equal(amr, []string{"pwd", "mail", "mfa"}) {
		t.Fatalf("after the e-mail code: amr %q", amr)
	}
	assertNoSecretsLogged(t, f, []string{c[1], c2[1]})
}
