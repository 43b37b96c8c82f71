package notify

import (
	"context"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// Translator translates a message into a language. id is the English
// text, which may hold text/template fields ({{.Code}}) filled from data;
// lang is a BCP 47 tag ("de", "de-AT"; unknown or empty: English). The
// result is plain text. web/i18n.Catalog implements it with the hosted
// pages' message files; cmd hands it to the senders.
type Translator interface {
	Translate(lang, id string, data map[string]any) string
}

type langKey struct{}

// WithLang returns ctx carrying the language of the request that causes
// a message (broker.RequestMeta.Lang), for senders reached through
// interfaces that take no language (mfa.Factor's BeginChallenge).
func WithLang(ctx context.Context, lang string) context.Context {
	if lang == "" {
		return ctx
	}
	return context.WithValue(ctx, langKey{}, lang)
}

// Lang returns the language WithLang put in ctx, or "".
func Lang(ctx context.Context) string {
	l, _ := ctx.Value(langKey{}).(string)
	return l
}

// Translate translates id through tr, or fills id's fields in English
// when tr is nil.
func Translate(tr Translator, lang, id string, data map[string]any) string {
	if tr != nil {
		return tr.Translate(lang, id, data)
	}
	return English(id, data)
}

// English fills the fields of message id (the English text) from data;
// id itself when it does not parse or run.
func English(id string, data map[string]any) string {
	if !strings.Contains(id, "{{") {
		return id
	}
	t, err := template.New("").Option("missingkey=zero").Parse(id)
	if err != nil {
		return id
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return id
	}
	return b.String()
}

// Duration says d in words in lang: "5 minutes", "1 hour", "24 hours"
// (whole hours from 2 hours on, else minutes, at least one).
func Duration(tr Translator, lang string, d time.Duration) string {
	m := max(int(d.Round(time.Minute)/time.Minute), 1)
	switch {
	case m == 1:
		return Translate(tr, lang, "1 minute", nil)
	case m == 60:
		return Translate(tr, lang, "1 hour", nil)
	case m%60 == 0 && m >= 120:
		return Translate(tr, lang, "{{.N}} hours", map[string]any{"N": strconv.Itoa(m / 60)})
	}
	return Translate(tr, lang, "{{.N}} minutes", map[string]any{"N": strconv.Itoa(m)})
}
