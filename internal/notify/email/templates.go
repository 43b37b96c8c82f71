package email

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/latchkeyid/latchkey/internal/notify"
)

//go:embed templates
var templateFS embed.FS

// Template names.
const (
	TemplateOTP           = "otp"            // Data: Product, Code, ValidFor
	TemplateVerifyEmail   = "verify-email"   // Data: Product, Name, Link, ValidFor
	TemplateResetPassword = "reset-password" // Data: Product, Name, Link, ValidFor
	// TemplateRegisterExisting tells the owner of an address that someone
	// tried to register with it. Data: Product, Name, Username, Link (the
	// forgot-password page).
	TemplateRegisterExisting = "register-existing"
	// TemplateRegisterUsernameTaken tells a registrant that the username
	// was taken. Data: Product, Username.
	TemplateRegisterUsernameTaken = "register-username-taken"
)

// builtin are the templates the default language must have.
var builtin = []string{TemplateOTP, TemplateVerifyEmail, TemplateResetPassword, TemplateRegisterExisting, TemplateRegisterUsernameTaken}

// DefaultLanguage is used when a message's language has no template.
const DefaultLanguage = "en"

type pair struct {
	text *texttemplate.Template
	html *htmltemplate.Template
}

// Templates are the parsed templates by language and name, and the
// translator of their {{t "..."}} texts.
type Templates struct {
	byLang map[string]map[string]pair
	tr     notify.Translator
}

// placeholders let the templates parse; Render binds the functions of
// the message's language:
//
//	t "English text {{.Field}}" "Field" value ...  the text in the language
//	duration .ValidFor                             a time.Duration in words
//	lang                                           the language tag
var placeholders = map[string]any{
	"t":        func(string, ...any) string { return "" },
	"duration": func(any) string { return "" },
	"lang":     func() string { return "" },
}

// Translated returns t whose texts are translated by tr (nil: English).
func (t *Templates) Translated(tr notify.Translator) *Templates {
	c := *t
	c.tr = tr
	return &c
}

// funcs are the template functions of one message in lang.
func (t *Templates) funcs(lang string) map[string]any {
	if lang == "" {
		lang = DefaultLanguage
	}
	return map[string]any{
		"t": func(id string, args ...any) string {
			var data map[string]any
			if len(args) > 0 {
				data = make(map[string]any, len(args)/2)
				for i := 0; i+1 < len(args); i += 2 {
					k, _ := args[i].(string)
					data[k] = fmt.Sprint(args[i+1])
				}
			}
			return notify.Translate(t.tr, lang, id, data)
		},
		"duration": func(v any) string {
			if d, ok := v.(time.Duration); ok {
				return notify.Duration(t.tr, lang, d)
			}
			return fmt.Sprint(v)
		},
		"lang": func() string { return lang },
	}
}

// LoadTemplates parses every language directory of fsys (nil: the
// built-in templates): <lang>/<name>.txt and <lang>/<name>.html, both
// required. The default language must have every built-in name.
func LoadTemplates(fsys fs.FS) (*Templates, error) {
	if fsys == nil {
		sub, err := fs.Sub(templateFS, "templates")
		if err != nil {
			return nil, err
		}
		fsys = sub
	}
	langs, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("email: templates: %w", err)
	}
	t := &Templates{byLang: map[string]map[string]pair{}}
	var errs []error
	for _, l := range langs {
		if !l.IsDir() {
			continue
		}
		lang := l.Name()
		files, err := fs.Glob(fsys, lang+"/*.txt")
		if err != nil {
			return nil, err
		}
		t.byLang[lang] = map[string]pair{}
		for _, f := range files {
			name := strings.TrimSuffix(f[len(lang)+1:], ".txt")
			tt, err := texttemplate.New(name+".txt").Funcs(placeholders).Option("missingkey=error").ParseFS(fsys, f)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", f, err))
				continue
			}
			if tt.Lookup("subject") == nil {
				errs = append(errs, fmt.Errorf("%s: no {{define \"subject\"}}", f))
				continue
			}
			ht, err := htmltemplate.New(name+".html").Funcs(placeholders).Option("missingkey=error").ParseFS(fsys, lang+"/"+name+".html")
			if err != nil {
				errs = append(errs, fmt.Errorf("%s/%s.html: %w", lang, name, err))
				continue
			}
			t.byLang[lang][name] = pair{text: tt, html: ht}
		}
	}
	for _, name := range builtin {
		if _, ok := t.byLang[DefaultLanguage][name]; !ok {
			errs = append(errs, fmt.Errorf("%s/%s: missing", DefaultLanguage, name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("email: templates: %w", err)
	}
	return t, nil
}

// Rendered is one message's subject, text and HTML.
type Rendered struct {
	Subject, Text, HTML string
}

// Render renders name in lang: the template of lang's directory
// (falling back from "de-AT" to "de", then to DefaultLanguage), its
// {{t}} texts translated into lang.
func (t *Templates) Render(lang, name string, data any) (Rendered, error) {
	p, ok := t.lookup(lang, name)
	if !ok {
		return Rendered{}, fmt.Errorf("email: no template %q", name)
	}
	text0, err := p.text.Clone()
	if err != nil {
		return Rendered{}, fmt.Errorf("email: %s: %w", name, err)
	}
	html0, err := p.html.Clone()
	if err != nil {
		return Rendered{}, fmt.Errorf("email: %s: %w", name, err)
	}
	fm := t.funcs(lang)
	p = pair{text: text0.Funcs(fm), html: html0.Funcs(fm)}
	var subj, text, html bytes.Buffer
	if err := p.text.ExecuteTemplate(&subj, "subject", data); err != nil {
		return Rendered{}, fmt.Errorf("email: render %s subject: %w", name, err)
	}
	if err := p.text.Execute(&text, data); err != nil {
		return Rendered{}, fmt.Errorf("email: render %s text: %w", name, err)
	}
	if err := p.html.Execute(&html, data); err != nil {
		return Rendered{}, fmt.Errorf("email: render %s html: %w", name, err)
	}
	return Rendered{Subject: strings.TrimSpace(subj.String()), Text: text.String(), HTML: html.String()}, nil
}

func (t *Templates) lookup(lang, name string) (pair, bool) {
	lang = strings.ToLower(lang)
	base, _, _ := strings.Cut(lang, "-")
	for _, l := range []string{lang, base, DefaultLanguage} {
		if p, ok := t.byLang[l][name]; ok {
			return p, true
		}
	}
	return pair{}, false
}
