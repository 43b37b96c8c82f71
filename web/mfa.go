package web

import (
	"errors"
	"html/template"
	"net/http"
	"strconv"

	"github.com/latchkeyid/latchkey/broker"
)

// mfaPages are the second-factor pages.
type mfaPages struct {
	challenge, enroll, codes *template.Template
}

// registerMFA adds the second-factor pages: /mfa (challenge), /mfa/enroll
// (TOTP enrollment) and /mfa/continue (after the recovery codes).
func (s *Server) registerMFA(mux *http.ServeMux) error {
	parse := func(name string, partials ...string) (*template.Template, error) {
		t, err := s.parseTemplates(append(append([]string{"templates/layout.html"}, partials...), "templates/"+name)...)
		if err != nil {
			return nil, err
		}
		return t.Lookup(name), nil
	}
	var p mfaPages
	var err error
	if p.challenge, err = parse("mfa_challenge.html"); err != nil {
		return err
	}
	if p.enroll, err = parse("mfa_enroll.html", "templates/totp_secret.html"); err != nil {
		return err
	}
	if p.codes, err = parse("mfa_recovery_codes.html"); err != nil {
		return err
	}
	s.mfaPages = &p
	mux.HandleFunc("GET /mfa", s.mfaPage)
	mux.HandleFunc("POST /mfa", s.mfaSubmit)
	mux.HandleFunc("GET /mfa/enroll", s.mfaEnrollPage)
	mux.HandleFunc("POST /mfa/enroll", s.mfaEnrollSubmit)
	mux.HandleFunc("POST /mfa/continue", s.mfaContinue)
	return nil
}

func (s *Server) mfaPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	view, perr := s.broker.MFAPage(r.Context(), q.Get("req"), s.readCookie(r, bindingCookie), s.browserSessions(r), q.Get("factor"), s.meta(r))
	if perr != nil {
		s.renderError(w, r, perr)
		return
	}
	if webauthnRedirect(w, r, view) { // web/webauthn.go
		return
	}
	if otpRedirect(w, r, view) { // otp.go: SMS and e-mail codes have their own page
		return
	}
	s.render(w, r, http.StatusOK, s.mfaPages.challenge, pageCSP, map[string]any{"Title": "Two-step verification", "View": view})
}

// mfaError renders a failed code on its page again: 429 with Retry-After
// when the limit is reached, 400 otherwise.
func (s *Server) mfaError(w http.ResponseWriter, r *http.Request, t *template.Template, title string, view broker.MFAView, err error) {
	data := map[string]any{"Title": title, "View": view, "QR": template.URL(view.QRDataURL)}
	var limited *broker.RateLimitedError
	switch {
	case errors.As(err, &limited):
		w.Header().Set("Retry-After", strconv.Itoa(limited.RetryAfterSeconds()))
		data["Error"] = tooMany(limited.RetryAfter)
		s.render(w, r, http.StatusTooManyRequests, t, pageCSP, data)
	case errors.Is(err, broker.ErrMFAInvalidCode), errors.Is(err, broker.ErrMFAReplay):
		data["Error"] = sentence(err)
		s.render(w, r, http.StatusBadRequest, t, pageCSP, data)
	default:
		s.renderError(w, r, &broker.PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side.", Err: err})
	}
}

func (s *Server) mfaSubmit(w http.ResponseWriter, r *http.Request) {
	form, ok := s.pageForm(w, r)
	if !ok {
		return
	}
	res, view, err := s.broker.VerifyMFA(r.Context(), form.Get("req"), s.readCookie(r, bindingCookie), form.Get("csrf"),
		s.browserSessions(r), form.Get("factor"), form.Get("code"), s.meta(r))
	if err != nil {
		s.mfaError(w, r, s.mfaPages.challenge, "Two-step verification", view, err)
		return
	}
	s.deliver(w, r, res)
}

func (s *Server) mfaEnrollPage(w http.ResponseWriter, r *http.Request) {
	view, perr := s.broker.MFAEnrollPage(r.Context(), r.URL.Query().Get("req"), s.readCookie(r, bindingCookie), s.browserSessions(r), s.meta(r))
	if perr != nil {
		s.renderError(w, r, perr)
		return
	}
	// The QR code is a data: URL (the CSP's img-src allows data:).
	s.render(w, r, http.StatusOK, s.mfaPages.enroll, pageCSP, map[string]any{"Title": "Set up two-step verification", "View": view, "QR": template.URL(view.QRDataURL)})
}

func (s *Server) mfaEnrollSubmit(w http.ResponseWriter, r *http.Request) {
	form, ok := s.pageForm(w, r)
	if !ok {
		return
	}
	res, view, err := s.broker.EnrollMFA(r.Context(), form.Get("req"), s.readCookie(r, bindingCookie), form.Get("csrf"),
		s.browserSessions(r), form.Get("code"), s.meta(r))
	switch {
	case err != nil:
		s.mfaError(w, r, s.mfaPages.enroll, "Set up two-step verification", view, err)
	case len(view.RecoveryCodes) > 0:
		// Shown once, in the answer to this POST; never stored readable.
		s.applyCookies(w, res.Cookies)
		s.render(w, r, http.StatusOK, s.mfaPages.codes, pageCSP, map[string]any{"Title": "Save your recovery codes", "View": view})
	default:
		s.deliver(w, r, res)
	}
}

func (s *Server) mfaContinue(w http.ResponseWriter, r *http.Request) {
	form, ok := s.pageForm(w, r)
	if !ok {
		return
	}
	s.deliver(w, r, s.broker.ContinueMFA(r.Context(), form.Get("req"), s.readCookie(r, bindingCookie), form.Get("csrf"), s.browserSessions(r), s.meta(r)))
}
