package i18n

import (
	"embed"
	"fmt"
	"html/template"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/latchkeyid/latchkey/internal/notify"
	goi18n "github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"
)

//go:embed active.*.toml
var files embed.FS

// Language is one language the pages speak, in switcher order.
type Language struct {
	Tag  language.Tag
	Code string // BCP 47, e.g. "de"
	Name string // its own name, e.g. "Deutsch"
}

// Languages are the supported languages; the first is the fallback.
var Languages = []Language{
	{language.English, "en", "English"},
	{language.German, "de", "Deutsch"},
	{language.French, "fr", "Français"},
	{language.Spanish, "es", "Español"},
	{language.Japanese, "ja", "日本語"},
}

// Catalog holds the parsed message files and the language matcher.
type Catalog struct {
	bundle  *goi18n.Bundle
	matcher language.Matcher
	tags    []language.Tag
}

// New parses the embedded message files.
func New() (*Catalog, error) {
	b := goi18n.NewBundle(language.English)
	b.RegisterUnmarshalFunc("toml", toml.Unmarshal)
	c := &Catalog{bundle: b}
	for _, l := range Languages {
		name := "active." + l.Code + ".toml"
		if _, err := b.LoadMessageFileFS(files, name); err != nil {
			return nil, fmt.Errorf("i18n: load %s: %w", name, err)
		}
		c.tags = append(c.tags, l.Tag)
	}
	c.matcher = language.NewMatcher(c.tags)
	return c, nil
}

// Pick chooses the language of a page: the first supported tag of
// uiLocales (OpenID Connect Core 3.1.2.1), else the cookie's language,
// else the best match of the Accept-Language header, else English.
// override is a language the user picked with the switcher during this
// very sign-in request; it beats uiLocales.
func (c *Catalog) Pick(override string, uiLocales []string, cookie, acceptLanguage string) Language {
	if l, ok := c.exact(override); ok {
		return l
	}
	for _, s := range uiLocales {
		if l, ok := c.match(s); ok {
			return l
		}
	}
	if l, ok := c.exact(cookie); ok {
		return l
	}
	for _, s := range acceptLanguages(acceptLanguage) {
		if l, ok := c.match(s); ok {
			return l
		}
	}
	return Languages[0]
}

// exact is a supported language by its code ("de"), as the cookie holds.
func (c *Catalog) exact(code string) (Language, bool) {
	for _, l := range Languages {
		if l.Code == code {
			return l, true
		}
	}
	return Language{}, false
}

// match maps one BCP 47 tag ("fr-CA") to a supported language.
func (c *Catalog) match(s string) (Language, bool) {
	t, err := language.Parse(s)
	if err != nil {
		return Language{}, false
	}
	return c.matchTag(t)
}

// matchTag accepts a supported language or a regional variant of one;
// the matcher's low-confidence guesses (an unknown language mapped to
// English) do not count, so the next preference gets its turn.
func (c *Catalog) matchTag(t language.Tag) (Language, bool) {
	_, i, conf := c.matcher.Match(t)
	want, _ := t.Base()
	got, _ := Languages[i].Tag.Base()
	if conf < language.High || want != got {
		return Language{}, false
	}
	return Languages[i], true
}

// acceptLanguages returns the tags of an Accept-Language header
// (RFC 9110 12.5.4) by falling quality, skipping q=0 and bad entries;
// language.ParseAcceptLanguage rejects a whole header for one bad entry.
func acceptLanguages(h string) []string {
	type pref struct {
		tag string
		q   float64
	}
	var prefs []pref
	for _, part := range strings.Split(h, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				continue
			}
			q = f
		}
		if tag = strings.TrimSpace(tag); tag != "" && tag != "*" && q > 0 && len(prefs) < 20 {
			prefs = append(prefs, pref{tag, q})
		}
	}
	sort.SliceStable(prefs, func(i, j int) bool { return prefs[i].q > prefs[j].q })
	out := make([]string, len(prefs))
	for i, p := range prefs {
		out[i] = p.tag
	}
	return out
}

// Lookup reports whether id has a message in lang (no fallback).
func (c *Catalog) Lookup(lang Language, id string) bool {
	_, tag, err := goi18n.NewLocalizer(c.bundle, lang.Code).LocalizeWithTag(&goi18n.LocalizeConfig{MessageID: id})
	return err == nil && tag == lang.Tag
}

// Translator returns the {{t}} function of a page in lang: t "id"
// followed by name/value pairs for the message's {{.Name}} fields. The
// message text is ours and may hold markup (<strong>); the values are
// HTML-escaped. An id without a message is shown escaped as it is, so
// an English sentence from the broker still reads well.
func (c *Catalog) Translator(lang Language) func(msg any, args ...any) template.HTML {
	loc := goi18n.NewLocalizer(c.bundle, lang.Code, "en")
	return func(msg any, args ...any) template.HTML {
		var id string
		var data map[string]any
		switch m := msg.(type) {
		case Message:
			id = m.ID
			data = make(map[string]any, len(m.Data))
			for k, v := range m.Data {
				data[k] = template.HTMLEscapeString(fmt.Sprint(v))
			}
		default:
			id = fmt.Sprint(msg)
		}
		if len(args) > 0 {
			if data == nil {
				data = make(map[string]any, len(args)/2)
			}
			for i := 0; i+1 < len(args); i += 2 {
				k, _ := args[i].(string)
				data[k] = template.HTMLEscapeString(fmt.Sprint(args[i+1]))
			}
		}
		out, err := loc.Localize(&goi18n.LocalizeConfig{MessageID: id, TemplateData: data})
		if err != nil || out == "" {
			return template.HTML(template.HTMLEscapeString(id))
		}
		return template.HTML(out)
	}
}

// Message is a message with values for its {{.Name}} fields, for a
// page's {{t .Error}} where the text has a number or a name in it (the
// Translator fills the fields, escaped, in the page's language).
type Message struct {
	ID   string
	Data map[string]any
}

// String is the message in English, for logs and tests.
func (m Message) String() string { return notify.English(m.ID, m.Data) }

// Code returns "de" for a cookie value "de" or "de:<request id>".
func SplitCookie(v string) (code, requestID string) {
	code, requestID, _ = strings.Cut(v, ":")
	return code, requestID
}

// Translate is id in the language lang names ("de", "de-AT"; an
// unsupported or empty tag: English) as plain text, its {{.Name}} fields
// filled from data unescaped: the e-mail and SMS texts
// (notify.Translator). An id without a message is filled in English.
func (c *Catalog) Translate(lang, id string, data map[string]any) string {
	l, ok := c.exact(lang)
	if !ok {
		if l, ok = c.match(lang); !ok {
			l = Languages[0]
		}
	}
	msg, err := goi18n.NewLocalizer(c.bundle, l.Code, "en").Localize(&goi18n.LocalizeConfig{MessageID: id, TemplateData: data})
	if err != nil || msg == "" {
		return notify.English(id, data)
	}
	return msg
}
