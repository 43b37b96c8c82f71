package web

import (
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"reflect"
	"strings"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/web/i18n"
)

// langCookie holds the language picked with the switcher: "de", or
// "de:<request id>" when picked during a sign-in, so that it beats the
// app's ui_locales for that request.
const langCookie = "latchkey_lang"

// placeholderFuncs lets the templates parse; render replaces them with
// the functions of the request's language.
var placeholderFuncs = template.FuncMap{
	"t":         func(string, ...any) template.HTML { return "" },
	"lang":      func() string { return "en" },
	"languages": func() []langLink { return nil },
	"themeCSS":  func() string { return "" },
	"favicon":   func() string { return "" },
	"logo":      func() string { return "" },
	"base":      func() string { return "" },
}

// parseTemplates parses the named files with the page functions, each
// from the theme's templates folder if it has the file, else from ours;
// the result is named after the last file.
func (s *Server) parseTemplates(patterns ...string) (*template.Template, error) {
	var fsys fs.FS = templateFS
	if s.theme != nil && s.theme.templates != nil {
		fsys = overlayFS{top: s.theme.templates, base: templateFS}
	}
	return template.New(path.Base(patterns[len(patterns)-1])).Funcs(placeholderFuncs).ParseFS(fsys, patterns...)
}

// langLink is one entry of the language switcher.
type langLink struct {
	Code, Name, URL string
	Current         bool
}

// pageLanguage picks the language of a page for r (i18n.Catalog.Pick)
// and its theme: the theme of the sign-in request's client if it has one.
func (s *Server) pageLanguage(r *http.Request, data any) (i18n.Language, theme) {
	lang, clientID := s.requestLanguage(r, requestIDOf(r, data))
	return lang, s.themeFor(clientID)
}

// mailMeta is the request's meta with the language of its page (the
// sign-in request reqID's, if any): the e-mails and texts the request
// causes are written in it.
func (s *Server) mailMeta(r *http.Request, reqID string) broker.RequestMeta {
	m := s.meta(r)
	lang, _ := s.requestLanguage(r, reqID)
	m.Lang = lang.Code
	return m
}

// requestLanguage picks the language for r and sign-in request reqID
// ("" for none) and returns the request's client.
func (s *Server) requestLanguage(r *http.Request, reqID string) (i18n.Language, string) {
	code, cookieReq := i18n.SplitCookie(s.readCookie(r, langCookie))
	var override, cookie string
	if cookieReq != "" && cookieReq == reqID {
		override = code
	} else {
		cookie = code
	}
	var uiLocales []string
	var clientID string
	if reqID != "" && s.broker != nil {
		uiLocales, clientID = s.broker.RequestUI(r.Context(), reqID, s.readCookie(r, bindingCookie))
	}
	return s.i18n.Pick(override, uiLocales, cookie, r.Header.Get("Accept-Language")), clientID
}

// requestIDOf finds the auth request of a page: the req query
// parameter, else the RequestID of the page's View.
func requestIDOf(r *http.Request, data any) string {
	if id := r.URL.Query().Get("req"); id != "" {
		return id
	}
	m, ok := data.(map[string]any)
	if !ok {
		return ""
	}
	v := reflect.ValueOf(m["View"])
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return ""
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return ""
	}
	if f := v.FieldByName("RequestID"); f.IsValid() && f.Kind() == reflect.String {
		return f.String()
	}
	return ""
}

// pageFuncs are the template functions of the pages in lang and theme th
// (bound once per template, language and theme: boundPage).
func (s *Server) pageFuncs(lang i18n.Language, th theme) template.FuncMap {
	return template.FuncMap{
		"t":         s.i18n.Translator(lang),
		"lang":      func() string { return lang.Code },
		"languages": func() []langLink { return nil },
		"themeCSS":  func() string { return s.basePath(th.css) },
		"favicon":   func() string { return s.basePath(th.favicon) },
		"logo":      func() string { return s.basePath(th.logo) },
		"base":      func() string { return s.base },
	}
}

// languageLinks are the switcher's links of a page of r in lang (the
// layout shows them as .Languages); none for a page that cannot be
// loaded again.
func (s *Server) languageLinks(r *http.Request, data any, lang i18n.Language) []langLink {
	back := returnPath(r, requestIDOf(r, data))
	if back == "" {
		return nil
	}
	links := make([]langLink, 0, len(i18n.Languages))
	for _, l := range i18n.Languages {
		q := url.Values{"lang": {l.Code}, "return": {back}}
		links = append(links, langLink{Code: l.Code, Name: l.Name, URL: s.basePath("/language?" + q.Encode()), Current: l.Code == lang.Code})
	}
	return links
}

// switcherPages maps the path of a request that renders a page to the
// GET page the switcher comes back to; a page not listed (the signed-out
// page, a callback) has no switcher, as reloading it would fail.
var switcherPages = map[string]string{
	"/login": "/login", "/login/passkey": "/login", "/consent": "/consent", "/select-account": "/select-account",
	"/mfa": "/mfa", "/mfa/enroll": "/mfa/enroll", "/mfa/otp": "/mfa/otp", "/mfa/otp/send": "/mfa/otp",
	"/mfa/otp/enroll": "/mfa/otp/enroll", "/mfa/otp/enroll/confirm": "/mfa/otp/enroll",
	"/mfa/webauthn": "/mfa/webauthn", "/mfa/webauthn/enroll": "/mfa/webauthn/enroll",
	broker.PathAccount: broker.PathAccount, broker.PathAccount + "/password": broker.PathAccount,
	broker.PathAccount + "/email": broker.PathAccount, broker.PathForgot: broker.PathForgot,
	broker.PathEndSession: broker.PathEndSession,
	broker.PathRegister:   broker.PathRegister, // register.go
}

// returnPath is where the switcher comes back to: the page itself for
// a GET, the GET page of a POST with its request; "" for no switcher.
func returnPath(r *http.Request, reqID string) string {
	page, ok := switcherPages[r.URL.Path]
	switch {
	case !ok:
		return ""
	case r.Method == http.MethodGet:
		return r.URL.RequestURI()
	case reqID != "":
		return page + "?" + url.Values{"req": {reqID}}.Encode()
	}
	return page
}

// switchLanguage sets the language cookie and goes back to the page.
// It only sets a preference, so it needs no CSRF token.
func (s *Server) switchLanguage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	code := q.Get("lang")
	known := false
	for _, l := range i18n.Languages {
		known = known || l.Code == code
	}
	back := q.Get("return")
	if !localPath(back) {
		back = "/account"
	}
	if !known {
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	value := code
	if u, err := url.Parse(back); err == nil {
		if req := u.Query().Get("req"); req != "" && len(req) <= 64 {
			value += ":" + req
		}
	}
	s.setCookie(w, langCookie, value, 365*24*3600)
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// localPath accepts only a path of this server ("/x", not "//host" or
// "/\host"), so the switcher is no open redirect. Browsers drop tabs and
// newlines from a URL and read "\" as "/" ("/<tab>/host" is "//host"),
// so no control character and no backslash is accepted anywhere.
func localPath(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsRune(p, '\\') {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < 0x20 || p[i] == 0x7f {
			return false
		}
	}
	return true
}
