package web

import (
	"errors"
	"html/template"
	"net/http"
	"strconv"

	"github.com/latchkeyid/latchkey/broker"
)

// accountFactorPages are the pages that add a second factor from the
// account page.
type accountFactorPages struct {
	totp, webauthn *template.Template
}

const (
	accountTOTPTitle     = "Add an authenticator app"
	accountWebAuthnTitle = "Add a security key or passkey"
)

// registerAccountFactors adds the forms that add a second factor
// (docs/accounts.md "Adding a second factor"): /account/factors/totp
// (begin) and /account/factors/totp/confirm; /account/factors/webauthn
// (begin the ceremony) and /account/factors/webauthn/finish.
func (s *Server) registerAccountFactors(mux *http.ServeMux) error {
	var p accountFactorPages
	t, err := s.parseTemplates("templates/layout.html", "templates/totp_secret.html", "templates/account_totp.html")
	if err != nil {
		return err
	}
	p.totp = t.Lookup("account_totp.html")
	if t, err = s.parseTemplates("templates/layout.html", "templates/account_webauthn.html"); err != nil {
		return err
	}
	p.webauthn = t.Lookup("account_webauthn.html")
	s.factorPages = &p
	mux.HandleFunc("POST "+broker.PathAccount+"/factors/totp", s.accountTOTPBegin)
	mux.HandleFunc("POST "+broker.PathAccount+"/factors/totp/confirm", s.accountTOTPConfirm)
	mux.HandleFunc("POST "+broker.PathAccount+"/factors/webauthn", s.accountWebAuthnBegin)
	mux.HandleFunc("POST "+broker.PathAccount+"/factors/webauthn/finish", s.accountWebAuthnFinish)
	return nil
}

// factorError renders a refused addition on the account page (400, or
// the account page's own answers: accountError).
func (s *Server) factorError(w http.ResponseWriter, r *http.Request, view broker.ProfileView, err error) {
	data := s.accountData(view)
	if errors.Is(err, broker.ErrAccountEnrollExpired) || errors.Is(err, broker.ErrWebAuthnFailed) || errors.Is(err, broker.ErrWebAuthnLabel) {
		data["Error"] = sentence(err)
		s.render(w, r, http.StatusBadRequest, s.accountPages.account, pageCSP, data)
		return
	}
	s.accountError(w, r, s.accountPages.account, data, err)
}

// totpPage renders the page of a pending authenticator app; the QR code
// is a data: URL (pageCSP's img-src allows data:).
func (s *Server) totpPage(w http.ResponseWriter, r *http.Request, status int, view broker.AccountEnrollView, msg any) {
	data := map[string]any{"Title": accountTOTPTitle, "View": view, "QR": template.URL(view.QRDataURL)}
	if msg != nil && msg != "" {
		data["Error"] = msg
	}
	s.render(w, r, status, s.factorPages.totp, pageCSP, data)
}

func (s *Server) accountTOTPBegin(w http.ResponseWriter, r *http.Request) {
	form, ok := s.pageForm(w, r)
	if !ok {
		return
	}
	ev, view, err := s.broker.AccountBeginTOTP(r.Context(), s.readCookie(r, sessionCookie), first(form, "csrf"), first(form, "current"), s.meta(r))
	if err != nil {
		s.factorError(w, r, view, err)
		return
	}
	s.totpPage(w, r, http.StatusOK, ev, "")
}

func (s *Server) accountTOTPConfirm(w http.ResponseWriter, r *http.Request) {
	form, ok := s.pageForm(w, r)
	if !ok {
		return
	}
	ev, view, err := s.broker.AccountConfirmTOTP(r.Context(), s.readCookie(r, sessionCookie), first(form, "csrf"), first(form, "code"),
		first(form, "label"), s.meta(r))
	var limited *broker.RateLimitedError
	switch {
	case err == nil:
		s.render(w, r, http.StatusOK, s.accountPages.account, pageCSP, s.accountData(view))
	case ev.Secret == "":
		s.factorError(w, r, view, err)
	case errors.As(err, &limited):
		w.Header().Set("Retry-After", strconv.Itoa(limited.RetryAfterSeconds()))
		s.totpPage(w, r, http.StatusTooManyRequests, ev, tooMany(limited.RetryAfter))
	case errors.Is(err, broker.ErrMFAInvalidCode), errors.Is(err, broker.ErrAccountLabel):
		s.totpPage(w, r, http.StatusBadRequest, ev, sentence(err))
	default:
		s.factorError(w, r, view, err)
	}
}

func (s *Server) accountWebAuthnBegin(w http.ResponseWriter, r *http.Request) {
	form, ok := s.pageForm(w, r)
	if !ok {
		return
	}
	ev, view, err := s.broker.AccountBeginWebAuthn(r.Context(), s.readCookie(r, sessionCookie), first(form, "csrf"), first(form, "current"), s.meta(r))
	if err != nil {
		s.factorError(w, r, view, err)
		return
	}
	s.render(w, r, http.StatusOK, s.factorPages.webauthn, scriptCSP, map[string]any{"Title": accountWebAuthnTitle, "View": ev})
}

func (s *Server) accountWebAuthnFinish(w http.ResponseWriter, r *http.Request) {
	form, ok := s.pageForm(w, r)
	if !ok {
		return
	}
	view, err := s.broker.AccountFinishWebAuthn(r.Context(), s.readCookie(r, sessionCookie), first(form, "csrf"), first(form, "label"),
		first(form, "response"), s.meta(r))
	if err != nil {
		s.factorError(w, r, view, err)
		return
	}
	s.render(w, r, http.StatusOK, s.accountPages.account, pageCSP, s.accountData(view))
}
