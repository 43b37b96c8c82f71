package email

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/internal/notify"
)

// TLS modes of the SMTP connection.
const (
	TLSStartTLS = "starttls" // plain connect, then STARTTLS (required)
	TLSImplicit = "tls"      // TLS from the first byte (port 465)
	TLSNone     = "none"     // no TLS: only for a local sink
)

// Options configure the SMTP sender.
type Options struct {
	Host string
	Port int
	// TLS is TLSStartTLS (default), TLSImplicit or TLSNone.
	TLS string
	// RootCAs verify the server (nil: the system pool).
	RootCAs  *x509.CertPool
	Username string
	Password string
	// From is the sender address, e.g. "Latchkey <id@example.com>".
	From      string
	Templates *Templates // nil: the built-in templates
	// Translator translates the templates' texts (nil: English); cmd
	// passes the hosted pages' catalog (web/i18n).
	Translator notify.Translator
	Timeout    time.Duration
	Retry      notify.Retry
	Clock      clock.Clock
	Rand       io.Reader
}

// Message is one templated e-mail.
type Message struct {
	To string
	// Lang is the language of the request that caused the message
	// (BCP 47; "": English).
	Lang     string
	Template string
	Data     any
}

// String hides the recipient and the data.
func (m Message) String() string { return "email.Message{Template: " + m.Template + "}" }

// Sender sends templated e-mail over SMTP.
type Sender struct {
	o    Options
	from *mail.Address
}

// New checks o and returns the sender.
func New(o Options) (*Sender, error) {
	var errs []error
	if o.Host == "" {
		errs = append(errs, errors.New("host: required"))
	}
	if o.Port <= 0 || o.Port > 65535 {
		errs = append(errs, fmt.Errorf("port %d: not a port", o.Port))
	}
	if o.TLS == "" {
		o.TLS = TLSStartTLS
	}
	switch o.TLS {
	case TLSStartTLS, TLSImplicit, TLSNone:
	default:
		errs = append(errs, fmt.Errorf("tls %q: want starttls, tls or none", o.TLS))
	}
	from, err := mail.ParseAddress(o.From)
	if err != nil {
		errs = append(errs, fmt.Errorf("from %q: %w", o.From, err))
	}
	if o.Clock == nil || o.Rand == nil {
		errs = append(errs, errors.New("Clock and Rand: required"))
	}
	if o.Templates == nil {
		t, err := LoadTemplates(nil)
		if err != nil {
			errs = append(errs, err)
		}
		o.Templates = t
	}
	if o.Templates != nil && o.Translator != nil {
		o.Templates = o.Templates.Translated(o.Translator)
	}
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("email: %w", err)
	}
	return &Sender{o: o, from: from}, nil
}

// Send renders m and delivers it to the SMTP server, retrying with
// backoff. The error wraps notify.ErrSendFailed when it gave up.
func (s *Sender) Send(ctx context.Context, m Message) error {
	to, err := mail.ParseAddress(m.To)
	if err != nil {
		return fmt.Errorf("%w: email: recipient is not an address", notify.ErrSendFailed)
	}
	r, err := s.o.Templates.Render(m.Lang, m.Template, m.Data)
	if err != nil {
		return fmt.Errorf("%w: %w", notify.ErrSendFailed, err)
	}
	msg, err := s.compose(to, r)
	if err != nil {
		return fmt.Errorf("%w: email: %w", notify.ErrSendFailed, err)
	}
	return s.o.Retry.Do(ctx, "email via smtp", func(ctx context.Context) error {
		return s.deliver(ctx, to.Address, msg)
	})
}

func (s *Sender) random(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.o.Rand, b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// compose builds a multipart/alternative message (RFC 5322, RFC 2046).
func (s *Sender) compose(to *mail.Address, r Rendered) ([]byte, error) {
	boundary, err := s.random(18)
	if err != nil {
		return nil, err
	}
	id, err := s.random(18)
	if err != nil {
		return nil, err
	}
	boundary = "lk-" + strings.NewReplacer("-", "A", "_", "B").Replace(boundary)
	domain := s.from.Address[strings.LastIndexByte(s.from.Address, '@')+1:]
	var b bytes.Buffer
	h := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	h("From", s.from.String())
	h("To", to.String())
	h("Subject", mime.QEncoding.Encode("utf-8", r.Subject))
	h("Date", s.o.Clock.Now().Format(time.RFC1123Z))
	h("Message-ID", "<"+id+"@"+domain+">")
	h("MIME-Version", "1.0")
	h("Auto-Submitted", "auto-generated")
	h("Content-Type", `multipart/alternative; boundary="`+boundary+`"`)
	b.WriteString("\r\n")
	for _, part := range []struct{ ctype, body string }{{"text/plain", r.Text}, {"text/html", r.HTML}} {
		fmt.Fprintf(&b, "--%s\r\nContent-Type: %s; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n", boundary, part.ctype)
		qp := quotedprintable.NewWriter(&b)
		if _, err := qp.Write([]byte(strings.ReplaceAll(part.body, "\n", "\r\n"))); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil {
			return nil, err
		}
		b.WriteString("\r\n")
	}
	fmt.Fprintf(&b, "--%s--\r\n", boundary)
	return b.Bytes(), nil
}

// deliver runs one SMTP session. 5xx replies are permanent.
func (s *Sender) deliver(ctx context.Context, to string, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	addr := net.JoinHostPort(s.o.Host, strconv.Itoa(s.o.Port))
	tlsConf := &tls.Config{ServerName: s.o.Host, RootCAs: s.o.RootCAs, MinVersion: tls.VersionTLS12}
	d := &net.Dialer{}
	var conn net.Conn
	var err error
	if s.o.TLS == TLSImplicit {
		conn, err = (&tls.Dialer{NetDialer: d, Config: tlsConf}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	c, err := smtp.NewClient(conn, s.o.Host)
	if err != nil {
		return stage("greeting", err)
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return stage("EHLO", err)
	}
	if s.o.TLS == TLSStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return notify.Permanent(errors.New("STARTTLS: the server does not offer it (set tls: none only for a local sink)"))
		}
		if err := c.StartTLS(tlsConf); err != nil {
			return stage("STARTTLS", err)
		}
	}
	if s.o.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", s.o.Username, s.o.Password, s.o.Host)); err != nil {
			return stage("AUTH", err)
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return stage("MAIL FROM", err)
	}
	if err := c.Rcpt(to); err != nil {
		return stage("RCPT TO", err)
	}
	w, err := c.Data()
	if err != nil {
		return stage("DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return stage("DATA", err)
	}
	if err := w.Close(); err != nil {
		return stage("DATA", err)
	}
	return stage("QUIT", c.Quit())
}

// stage names the failed step; a 5xx reply is permanent. The reply text
// is kept only for its code (servers may echo the address).
func stage(name string, err error) error {
	if err == nil {
		return nil
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		e := fmt.Errorf("%s: server replied %d", name, te.Code)
		if te.Code >= 500 {
			return notify.Permanent(e)
		}
		return e
	}
	return fmt.Errorf("%s: %w", name, err)
}
