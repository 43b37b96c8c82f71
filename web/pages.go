package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/broker/oauth2"
	"github.com/latchkeyid/latchkey/internal/logging"
	"github.com/latchkeyid/latchkey/web/i18n"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pageCSP is the policy of our HTML pages. form-action is left out on
// purpose: Chrome applies it to the redirect after a form POST, which
// would block the final redirect to the app (DESIGN-NOTES.md).
const pageCSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"

// formPostScript submits the form_post page; its hash is in the CSP.
const formPostScript = `document.getElementById("f").submit();`

var formPostCSP = "default-src 'none'; script-src 'sha256-" + scriptHash(formPostScript) + "'; frame-ancestors 'none'; base-uri 'none'"

func scriptHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.StdEncoding.EncodeToString(sum[:])
}

type pages struct {
	login, consent, errorPage, formPost     *template.Template
	selectAccount, logoutConfirm, signedOut *template.Template
}

func (s *Server) parsePages() (*pages, error) {
	parse := func(name string) (*template.Template, error) {
		t, err := s.parseTemplates("templates/layout.html", "templates/"+name)
		if err != nil {
			return nil, err
		}
		return t.Lookup(name), nil
	}
	var p pages
	var err error
	if p.login, err = parse("login.html"); err != nil {
		return nil, err
	}
	if p.consent, err = parse("consent.html"); err != nil {
		return nil, err
	}
	if p.errorPage, err = parse("error.html"); err != nil {
		return nil, err
	}
	if p.selectAccount, err = parse("select_account.html"); err != nil {
		return nil, err
	}
	if p.logoutConfirm, err = parse("logout_confirm.html"); err != nil {
		return nil, err
	}
	if p.signedOut, err = parse("signed_out.html"); err != nil {
		return nil, err
	}
	if p.formPost, err = s.parseTemplates("templates/form_post.html"); err != nil {
		return nil, err
	}
	return &p, nil
}

// render executes t into a buffer first, so a template error becomes a
// clean 500 rather than half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, t *template.Template, csp string, data map[string]any) {
	var buf bytes.Buffer
	lang, th := s.pageLanguage(r, data)
	page, err := s.boundPage(t, lang, th)
	if err == nil {
		if links := s.languageLinks(r, data, lang); links != nil {
			data = maps.Clone(data)
			if data == nil {
				data = map[string]any{}
			}
			data["Languages"] = links
		}
		err = page.Execute(&buf, data)
	}
	if err != nil {
		s.log.ErrorContext(r.Context(), "render page", slog.Any("error", err))
		writeServerError(w, logging.RequestID(r.Context()))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", csp)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Language", lang.Code)
	h.Add("Vary", "Accept-Language, Cookie")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// pageForm reads a hosted page's POST form (bounded by maxBody); on
// failure it has answered with the "Invalid form" page.
func (s *Server) pageForm(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	form, perr := oauth2.ParseTokenForm(r, s.maxBody)
	if perr != nil {
		s.renderError(w, r, &broker.PageError{Status: perr.Status, Title: "Invalid form", Message: "The form could not be read.", Err: perr})
		return nil, false
	}
	return form, true
}

// msgTooMany is the message of a page refused by a limit.
const msgTooMany = "Too many attempts. Please wait {{.Seconds}} seconds and try again."

// tooMany is msgTooMany for a limit that lifts in d.
func tooMany(d time.Duration) i18n.Message {
	return i18n.Message{ID: msgTooMany, Data: map[string]any{"Seconds": max(1, int(math.Ceil(d.Seconds())))}}
}

// pageKey names a page template bound to a language and a theme.
type pageKey struct {
	t    *template.Template
	lang string
	th   theme
}

// boundPage is t with the functions of lang and th: cloned and bound on
// first use, then kept, so html/template escapes each page once per
// language and theme rather than on every render (the originals are
// never executed; executing a bound page is safe in parallel).
func (s *Server) boundPage(t *template.Template, lang i18n.Language, th theme) (*template.Template, error) {
	k := pageKey{t: t, lang: lang.Code, th: th}
	if p, ok := s.boundPages.Load(k); ok {
		return p.(*template.Template), nil
	}
	p, err := t.Clone()
	if err != nil {
		return nil, fmt.Errorf("clone page %s: %w", t.Name(), err)
	}
	got, _ := s.boundPages.LoadOrStore(k, p.Funcs(s.pageFuncs(lang, th)))
	return got.(*template.Template), nil
}

func (s *Server) renderError(w http.ResponseWriter, r *http.Request, pe *broker.PageError) {
	if s.unavailablePage(w, r, pe.Status, pe.Err) {
		return
	}
	if pe.Err != nil {
		lvl := slog.LevelInfo
		if pe.Status >= 500 {
			lvl = slog.LevelError
		}
		s.log.Log(r.Context(), lvl, "error page", slog.Int("status", pe.Status), slog.String("title", pe.Title), slog.Any("cause", pe.Err))
	}
	s.render(w, r, pe.Status, s.pages.errorPage, pageCSP, map[string]any{
		"Title": pe.Title, "Message": pe.Message, "RequestID": logging.RequestID(r.Context()),
	})
}

type field struct{ Name, Value string }

// renderFormPost delivers an authorization response with response_mode
// form_post (OAuth 2.0 Form Post Response Mode).
func (s *Server) renderFormPost(w http.ResponseWriter, r *http.Request, action string, params url.Values) {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var fields []field
	for _, k := range keys {
		for _, v := range params[k] {
			fields = append(fields, field{k, v})
		}
	}
	s.render(w, r, http.StatusOK, s.pages.formPost, formPostCSP, map[string]any{
		"Action": action, "Fields": fields, "Script": template.JS(formPostScript),
	})
}

// scopeDescriptions are what the consent page says for each scope.
var scopeDescriptions = map[string]string{
	"openid":         "Sign you in",
	"profile":        "See your name and username",
	"email":          "See your email address",
	"groups":         "See the groups you belong to",
	"offline_access": "Stay signed in when you are away (refresh tokens)",
}

func describeScopes(scopes []string) []string {
	out := make([]string, 0, len(scopes))
	for _, sc := range scopes {
		if d, ok := scopeDescriptions[sc]; ok {
			out = append(out, d)
		} else {
			out = append(out, sc)
		}
	}
	return out
}
