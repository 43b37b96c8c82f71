package web

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/mfa"
)

// scriptCSP is pageCSP plus our own script files (script-src 'self'):
// the pages that run a WebAuthn ceremony load /static/webauthn.js, and
// nothing inline.
const scriptCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"

// loginCSP is the login page's policy: scriptCSP when it offers a
// passkey, pageCSP otherwise.
func loginCSP(v broker.LoginView) string {
	if v.PasskeyOptions != "" {
		return scriptCSP
	}
	return pageCSP
}

// webauthnPages are the security key and passkey pages.
type webauthnPages struct {
	challenge, enroll *template.Template
}

// registerWebAuthn adds /mfa/webauthn (an assertion as second factor),
// /mfa/webauthn/enroll (register an authenticator) and /login/passkey
// (passwordless sign-in with a passkey from the login page).
func (s *Server) registerWebAuthn(mux *http.ServeMux) error {
	parse := func(name string) (*template.Template, error) {
		t, err := s.parseTemplates("templates/layout.html", "templates/"+name)
		if err != nil {
			return nil, err
		}
		return t.Lookup(name), nil
	}
	var p webauthnPages
	var err error
	if p.challenge, err = parse("mfa_webauthn.html"); err != nil {
		return err
	}
	if p.enroll, err = parse("mfa_webauthn_enroll.html"); err != nil {
		return err
	}
	s.waPages = &p
	mux.HandleFunc("GET /mfa/webauthn", s.webauthnPage)
	mux.HandleFunc("POST /mfa/webauthn", s.webauthnSubmit)
	mux.HandleFunc("GET /mfa/webauthn/enroll", s.webauthnEnrollPage)
	mux.HandleFunc("POST /mfa/webauthn/enroll", s.webauthnEnrollSubmit)
	mux.HandleFunc("POST /login/passkey", s.passkeyLogin)
	return nil
}

const (
	webauthnTitle       = "Two-step verification"
	webauthnEnrollTitle = "Add a security key or passkey"
)

func (s *Server) webauthnPage(w http.ResponseWriter, r *http.Request) {
	view, perr := s.broker.WebAuthnPage(r.Context(), r.URL.Query().Get("req"), s.readCookie(r, bindingCookie), s.browserSessions(r), s.meta(r))
	if perr != nil {
		s.renderError(w, r, perr)
		return
	}
	s.render(w, r, http.StatusOK, s.waPages.challenge, scriptCSP, map[string]any{"Title": webauthnTitle, "View": view})
}

// webauthnError renders a refused answer on its page again (with a new
// ceremony): 429 with Retry-After when the limit is reached, 400
// otherwise.
func (s *Server) webauthnError(w http.ResponseWriter, r *http.Request, t *template.Template, title string, view any, err error) {
	data := map[string]any{"Title": title, "View": view}
	var limited *broker.RateLimitedError
	switch {
	case errors.As(err, &limited):
		w.Header().Set("Retry-After", strconv.Itoa(limited.RetryAfterSeconds()))
		data["Error"] = tooMany(limited.RetryAfter)
		s.render(w, r, http.StatusTooManyRequests, t, scriptCSP, data)
	case errors.Is(err, broker.ErrWebAuthnFailed), errors.Is(err, broker.ErrPasskeyFailed), errors.Is(err, broker.ErrWebAuthnLabel):
		data["Error"] = sentence(err)
		s.render(w, r, http.StatusBadRequest, t, scriptCSP, data)
	default:
		s.renderError(w, r, &broker.PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side.", Err: err})
	}
}

func (s *Server) webauthnSubmit(w http.ResponseWriter, r *http.Request) {
	form, ok := s.pageForm(w, r)
	if !ok {
		return
	}
	res, view, err := s.broker.VerifyWebAuthn(r.Context(), form.Get("req"), s.readCookie(r, bindingCookie), form.Get("csrf"),
		s.browserSessions(r), form.Get("response"), s.meta(r))
	if err != nil {
		s.webauthnError(w, r, s.waPages.challenge, webauthnTitle, view, err)
		return
	}
	s.deliver(w, r, res)
}

func (s *Server) webauthnEnrollPage(w http.ResponseWriter, r *http.Request) {
	view, perr := s.broker.WebAuthnEnrollPage(r.Context(), r.URL.Query().Get("req"), s.readCookie(r, bindingCookie), s.browserSessions(r), s.meta(r))
	if perr != nil {
		s.renderError(w, r, perr)
		return
	}
	s.render(w, r, http.StatusOK, s.waPages.enroll, scriptCSP, map[string]any{"Title": webauthnEnrollTitle, "View": view})
}

func (s *Server) webauthnEnrollSubmit(w http.ResponseWriter, r *http.Request) {
	form, ok := s.pageForm(w, r)
	if !ok {
		return
	}
	res, view, err := s.broker.EnrollWebAuthn(r.Context(), form.Get("req"), s.readCookie(r, bindingCookie), form.Get("csrf"),
		s.browserSessions(r), form.Get("label"), form.Get("response"), s.meta(r))
	switch {
	case err != nil:
		s.webauthnError(w, r, s.waPages.enroll, webauthnEnrollTitle, view, err)
	case len(view.RecoveryCodes) > 0:
		// Shown once, in the answer to this POST; never stored readable.
		s.applyCookies(w, res.Cookies)
		s.render(w, r, http.StatusOK, s.mfaPages.codes, pageCSP, map[string]any{"Title": "Save your recovery codes", "View": view})
	default:
		s.deliver(w, r, res)
	}
}

func (s *Server) passkeyLogin(w http.ResponseWriter, r *http.Request) {
	form, ok := s.pageForm(w, r)
	if !ok {
		return
	}
	res, view, err := s.broker.PasskeyLogin(r.Context(), form.Get("req"), s.readCookie(r, bindingCookie), form.Get("csrf"),
		s.browserSessions(r), form.Get("response"), form.Get("via"), s.meta(r))
	if err != nil {
		s.webauthnError(w, r, s.pages.login, "Sign in", view, err)
		return
	}
	s.deliver(w, r, res)
}

// webauthnRedirect sends the second-factor page to the WebAuthn page when
// that is the factor chosen.
func webauthnRedirect(w http.ResponseWriter, r *http.Request, view broker.MFAView) bool {
	if view.Factor != mfa.TypeWebAuthn {
		return false
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/"+string(broker.StepWebAuthn)+"?req="+url.QueryEscape(view.RequestID), http.StatusSeeOther)
	return true
}
