package otp

import (
	"context"
	"time"

	"github.com/latchkeyid/latchkey/internal/notify"
	"github.com/latchkeyid/latchkey/internal/notify/email"
	"github.com/latchkeyid/latchkey/internal/notify/sms"
)

// SMS delivers codes as text messages.
type SMS struct {
	Sender  sms.Sender
	Product string // "Latchkey" when empty
	// Translator translates the text (nil: English) into the language
	// of ctx (notify.WithLang), else Lang.
	Translator notify.Translator
	Lang       string
}

// SMSText is the text of a code message: the code first, so phones can
// offer it for autofill.
const SMSText = "{{.Code}} is your {{.Product}} code. It expires in {{.ValidFor}}."

// Deliver sends "123456 is your Latchkey code. It expires in 5 minutes."
// in the language of the request (notify.Lang of ctx).
func (s SMS) Deliver(ctx context.Context, address, code string, validFor time.Duration) error {
	lang := langOf(ctx, s.Lang)
	body := notify.Translate(s.Translator, lang, SMSText, map[string]any{"Code": code, "Product": product(s.Product),
		"ValidFor": notify.Duration(s.Translator, lang, validFor)})
	return s.Sender.Send(ctx, sms.Message{To: address, Body: body})
}

// langOf is the language of ctx, else def.
func langOf(ctx context.Context, def string) string {
	if l := notify.Lang(ctx); l != "" {
		return l
	}
	return def
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

// Deliver sends the code in the language of the request (notify.Lang of
// ctx), else in Lang.
func (e Email) Deliver(ctx context.Context, address, code string, validFor time.Duration) error {
	return e.Sender.Send(ctx, email.Message{To: address, Lang: langOf(ctx, e.Lang), Template: email.TemplateOTP,
		Data: map[string]any{"Product": product(e.Product), "Code": code, "ValidFor": validFor}})
}

func product(p string) string {
	if p == "" {
		return "Latchkey"
	}
	return p
}

// DurationWords says a duration in words for messages: "5 minutes",
// "1 hour", "24 hours".
func DurationWords(d time.Duration) string { return notify.Duration(nil, "", d) }
