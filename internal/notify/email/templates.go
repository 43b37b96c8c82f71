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
)

//go:embed templates
var templateFS embed.FS

// Template names.
const (
	TemplateOTP           = "otp"            // Data: Product, Code, ValidFor
	TemplateVerifyEmail   = "verify-email"   // Data: Product, Name, Link, ValidFor
	TemplateResetPassword = "reset-password" // Data: Product, Name, Link, ValidFor
)

// DefaultLanguage is used when a message's language has no template.
const DefaultLanguage = "en"

type pair struct {
	text *texttemplate.Template
	html *htmltemplate.Template
}

// Templates are the parsed templates by language and name.
type Templates struct {
	byLang map[string]map[string]pair
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
			tt, err := texttemplate.New(name+".txt").Option("missingkey=error").ParseFS(fsys, f)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", f, err))
				continue
			}
			if tt.Lookup("subject") == nil {
				errs = append(errs, fmt.Errorf("%s: no {{define \"subject\"}}", f))
				continue
			}
			ht, err := htmltemplate.New(name+".html").Option("missingkey=error").ParseFS(fsys, lang+"/"+name+".html")
			if err != nil {
				errs = append(errs, fmt.Errorf("%s/%s.html: %w", lang, name, err))
				continue
			}
			t.byLang[lang][name] = pair{text: tt, html: ht}
		}
	}
	for _, name := range []string{TemplateOTP, TemplateVerifyEmail, TemplateResetPassword} {
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

// Render renders name in lang (falling back to DefaultLanguage, and from
// "de-AT" to "de").
func (t *Templates) Render(lang, name string, data any) (Rendered, error) {
	p, ok := t.lookup(lang, name)
	if !ok {
		return Rendered{}, fmt.Errorf("email: no template %q", name)
	}
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
