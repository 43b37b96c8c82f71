package email_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/internal/notify"
	"github.com/latchkeyid/latchkey/internal/notify/email"
	"github.com/latchkeyid/latchkey/internal/testenv"
)

func sender(t *testing.T, o email.Options) *email.Sender {
	t.Helper()
	o.From = "Latchkey <id@example.com>"
	o.Clock, o.Rand = clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)), rand.Reader
	o.Retry = notify.Retry{Attempts: 2, Initial: time.Millisecond}
	s, err := email.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSendPlainToMailpit(t *testing.T) {
	mp := testenv.StartMailpit(t)
	s := sender(t, email.Options{Host: mp.SMTPHost, Port: mp.SMTPPort, TLS: email.TLSNone})
	err := s.Send(context.Background(), email.Message{To: "alice@example.org", Lang: "en-GB", Template: email.TemplateOTP,
		Data: map[string]any{"Product": "Latchkey", "Code": "123456", "ValidFor": "5 minutes"}})
	if err != nil {
		t.Fatal(err)
	}
	m := mp.Latest("alice@example.org")
	if m.Subject != "Your Latchkey verification code" {
		t.Errorf("subject %q", m.Subject)
	}
	if !strings.Contains(m.Text, "    123456\r\n") && !strings.Contains(m.Text, "    123456\n") {
		t.Errorf("text %q", m.Text)
	}
	if !strings.Contains(m.HTML, ">123456</p>") {
		t.Errorf("html %q", m.HTML)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600)
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certFile, keyFile, pool
}

func TestSendSTARTTLSWithAuth(t *testing.T) {
	cert, key, pool := selfSigned(t)
	mp := testenv.StartMailpit(t, "--smtp-tls-cert", cert, "--smtp-tls-key", key, "--smtp-require-starttls", "--smtp-auth-accept-any")
	s := sender(t, email.Options{Host: mp.SMTPHost, Port: mp.SMTPPort, RootCAs: pool, Username: "u", Password: "p"})
	err := s.Send(context.Background(), email.Message{To: "bob@example.org", Template: email.TemplateResetPassword,
		Data: map[string]any{"Product": "Latchkey", "Name": "Bob", "Link": "https://id.example/account/reset?token=abc", "ValidFor": "1 hour"}})
	if err != nil {
		t.Fatal(err)
	}
	if m := mp.Latest("bob@example.org"); m.Subject != "Reset your Latchkey password" || !strings.Contains(m.Text, "https://id.example/account/reset?token=abc") {
		t.Errorf("message %q %q", m.Subject, m.Text)
	}

	// Without the CA the certificate is refused: TLS is really checked.
	bad := sender(t, email.Options{Host: mp.SMTPHost, Port: mp.SMTPPort})
	err = bad.Send(context.Background(), email.Message{To: "bob@example.org", Template: email.TemplateOTP,
		Data: map[string]any{"Product": "L", "Code": "1", "ValidFor": "1m"}})
	if !errors.Is(err, notify.ErrSendFailed) || !strings.Contains(err.Error(), "STARTTLS: tls: failed to verify certificate") {
		t.Fatalf("err = %v", err)
	}
}

func TestStartTLSRequired(t *testing.T) {
	mp := testenv.StartMailpit(t)
	s := sender(t, email.Options{Host: mp.SMTPHost, Port: mp.SMTPPort})
	err := s.Send(context.Background(), email.Message{To: "c@example.org", Template: email.TemplateOTP,
		Data: map[string]any{"Product": "L", "Code": "1", "ValidFor": "1m"}})
	want := "notify: send failed: email via smtp: STARTTLS: the server does not offer it (set tls: none only for a local sink)"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	if n := mp.Count("c@example.org"); n != 0 {
		t.Fatalf("%d messages delivered in the clear", n)
	}
}

func TestNewErrors(t *testing.T) {
	_, err := email.New(email.Options{Port: 70000, TLS: "ssl", From: "nope"})
	want := "email: host: required\nport 70000: not a port\ntls \"ssl\": want starttls, tls or none\nfrom \"nope\": mail: missing '@' or angle-addr\nClock and Rand: required"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %q", err, want)
	}
}

func TestTemplatesPerLanguage(t *testing.T) {
	base := fstest.MapFS{}
	for _, n := range []string{"otp", "verify-email", "reset-password", "register-existing", "register-username-taken"} {
		base["en/"+n+".txt"] = &fstest.MapFile{Data: []byte(`{{define "subject"}}EN {{.Code}}{{end}}en {{.Code}}`)}
		base["en/"+n+".html"] = &fstest.MapFile{Data: []byte(`<p>en {{.Code}}</p>`)}
	}
	base["de/otp.txt"] = &fstest.MapFile{Data: []byte(`{{define "subject"}}DE {{.Code}}{{end}}de {{.Code}}`)}
	base["de/otp.html"] = &fstest.MapFile{Data: []byte(`<p>de {{.Code}}</p>`)}
	tpl, err := email.LoadTemplates(base)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ lang, name, subject, html string }{
		{"de", "otp", "DE <1>", "<p>de &lt;1&gt;</p>"},
		{"de-AT", "otp", "DE <1>", "<p>de &lt;1&gt;</p>"},
		{"de", "verify-email", "EN <1>", "<p>en &lt;1&gt;</p>"},
		{"fr", "otp", "EN <1>", "<p>en &lt;1&gt;</p>"},
		{"", "otp", "EN <1>", "<p>en &lt;1&gt;</p>"},
	} {
		r, err := tpl.Render(tc.lang, tc.name, map[string]any{"Code": "<1>"})
		if err != nil || r.Subject != tc.subject || r.HTML != tc.html {
			t.Errorf("%s/%s: %+v %v", tc.lang, tc.name, r, err)
		}
	}
	delete(base, "en/reset-password.html")
	if _, err := email.LoadTemplates(base); err == nil || !strings.Contains(err.Error(), "en/reset-password.html") {
		t.Errorf("missing html: %v", err)
	}
}
