package otp

import (
	"context"
	"strconv"
	"time"

	"github.com/latchkeyid/latchkey/internal/notify/email"
	"github.com/latchkeyid/latchkey/internal/notify/sms"
)

// SMS delivers codes as text messages.
type SMS struct {
	Sender  sms.Sender
	Product string // "Latchkey" when empty
}

// Deliver sends "123456 is your Latchkey code. It expires in 5 minutes."
// (code first, so phones can offer it for autofill).
func (s SMS) Deliver(ctx context.Context, address, code string, validFor time.Duration) error {
	return s.Sender.Send(ctx, sms.Message{To: address, Body: code + " is your " + product(s.Product) + " code. It expires in " + DurationWords(validFor) + "."})
}

// Mailer sends templated e-mail (notify/email.Sender).
type Mailer interface {
	Send(ctx context.Context, m email.Message) error
}

// Email delivers codes by e-mail (template "otp").
type Email struct {
	Sender  Mailer
	Product string
	Lang    string
}

// Deliver sends the code.
func (e Email) Deliver(ctx context.Context, address, code string, validFor time.Duration) error {
	return e.Sender.Send(ctx, email.Message{To: address, Lang: e.Lang, Template: email.TemplateOTP,
		Data: map[string]any{"Product": product(e.Product), "Code": code, "ValidFor": DurationWords(validFor)}})
}

func product(p string) string {
	if p == "" {
		return "Latchkey"
	}
	return p
}

// DurationWords says a duration in words for messages: "5 minutes",
// "1 hour", "24 hours".
func DurationWords(d time.Duration) string {
	m := int(d.Round(time.Minute) / time.Minute)
	switch {
	case d < time.Minute:
		return "1 minute"
	case m == 1:
		return "1 minute"
	case m%60 == 0 && m >= 120:
		return strconv.Itoa(m/60) + " hours"
	case m == 60:
		return "1 hour"
	}
	return strconv.Itoa(m) + " minutes"
}
