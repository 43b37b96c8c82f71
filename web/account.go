package web

import (
	"context"
	"encoding/base64"
	"errors"
	"html/template"
	"io"
	"net/http"
	"strconv"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/mfa/otp"
	"github.com/latchkeyid/latchkey/providers/local"
)

// accountPages are the local account's pages (docs/accounts.md).
type accountPages struct {
	account, forgot, link *template.Template
}

// forgotCookie holds the random value the forgot-password form's CSRF
// token is derived from (the form belongs to no sign-in or session).
const forgotCookie = "latchkey_forgot"

// registerAccount adds /account (password and e-mail change in the
// session), /account/verify-email, /account/forgot and /account/reset.
func (s *Server) registerAccount(mux *http.ServeMux) error {
	parse := func(name string) (*template.Template, error) {
		t, err := s.parseTemplates("templates/layout.html", "templates/"+name)
		if err != nil {
			return nil, err
		}
		return t.Lookup(name), nil
	}
	var p accountPages
	var err error
	t, err := s.parseTemplates("templates/layout.html", "templates/account_factor_add.html", "templates/account.html")
	if err != nil {
		return err
	}
	p.account = t.Lookup("account.html")
	if p.forgot, err = parse("account_forgot.html"); err != nil {
		return err
	}
	if p.link, err = parse("account_link.html"); err != nil {
		return err
	}
	s.accountPages = &p
	mux.HandleFunc("GET "+broker.PathAccount, s.accountShow)
	mux.HandleFunc("POST "+broker.PathAccount+"/password", s.accountPost(s.accountPassword))
	mux.HandleFunc("POST "+broker.PathAccount+"/email", s.accountPost(s.accountEmail))
	s.registerAccountManage(mux)
	if err := s.registerAccountFactors(mux); err != nil { // account_factors.go
		return err
	}
	s.registerAccountLink(mux)                          // account_link.go
	s.registerAccountSignIn(mux)                        // account_signin.go
	if err := s.registerRegistration(mux); err != nil { // register.go
		return err
	}
	mux.HandleFunc("GET "+broker.PathVerifyEmail, s.emailLinkShow(false, s.broker.VerifyEmailPage))
	mux.HandleFunc("POST "+broker.PathVerifyEmail, s.verifyEmailSubmit)
	mux.HandleFunc("GET "+broker.PathForgot, s.forgotShow)
	mux.HandleFunc("POST "+broker.PathForgot, s.forgotSubmit)
	mux.HandleFunc("GET "+broker.PathResetPassword, s.emailLinkShow(true, s.broker.ResetPasswordPage))
	mux.HandleFunc("POST "+broker.PathResetPassword, s.resetSubmit)
	return nil
}

// accountError renders a failed account form on its page again: 429
// with Retry-After over a limit, 400 for what the user can fix, the page
// error otherwise. Nothing the user typed is echoed but an address.
func (s *Server) accountError(w http.ResponseWriter, r *http.Request, t *template.Template, data map[string]any, err error) {
	if pe, ok := broker.AsPageError(err); ok {
		s.renderError(w, r, pe)
		return
	}
	var limited *broker.RateLimitedError
	status := http.StatusBadRequest
	switch {
	case errors.As(err, &limited):
		w.Header().Set("Retry-After", strconv.Itoa(limited.RetryAfterSeconds()))
		status = http.StatusTooManyRequests
		data["Error"] = tooMany(limited.RetryAfter)
	case errors.Is(err, broker.ErrAccountNotFound):
		status = http.StatusNotFound
		data["Error"] = sentence(err)
	case errors.Is(err, broker.ErrAccountReauth), errors.Is(err, broker.ErrAccountLastWay), errors.Is(err, broker.ErrAccountLabel),
		errors.Is(err, broker.ErrAccountName):
		data["Error"] = sentence(err)
	case errors.Is(err, broker.ErrOTPSendFailed):
		status = http.StatusServiceUnavailable
		data["Error"] = "We could not send the e-mail right now; try again in a moment."
	case errors.Is(err, local.ErrPasswordPolicy), errors.Is(err, broker.ErrAccountWrongPassword), errors.Is(err, broker.ErrAccountMismatch),
		errors.Is(err, broker.ErrAccountNoPassword), errors.Is(err, otp.ErrEmailFormat):
		data["Error"] = sentence(err)
	default:
		s.renderError(w, r, &broker.PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side.", Err: err})
		return
	}
	s.render(w, r, status, t, pageCSP, data)
}

func first(form map[string][]string, k string) string {
	if v := form[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (s *Server) accountShow(w http.ResponseWriter, r *http.Request) {
	cookie := s.readCookie(r, sessionCookie)
	view, _, perr := s.broker.AccountPage(r.Context(), cookie)
	if perr != nil && perr.Status == http.StatusUnauthorized {
		s.accountSignIn(w, r) // account_signin.go
		return
	}
	if perr != nil {
		s.renderError(w, r, perr)
		return
	}
	data := s.accountData(&view)
	s.accountFlash(r, cookie, &view, data) // account_link.go
	s.render(w, r, http.StatusOK, s.accountPages.account, pageCSP, data)
}

// accountData is the account page's template data; view is a
// broker.ProfileView or a pointer to one.
func (s *Server) accountData(view any) map[string]any {
	return map[string]any{"Title": "Your account", "Wide": true, "View": view, "MinLength": s.broker.PasswordMinLength()}
}

// accountPost serves a form of the account page: call gets the form and
// the session cookie; the page is shown again with its message or error.
func (s *Server) accountPost(call func(r *http.Request, form map[string][]string, cookie string) (broker.ProfileView, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		form, ok := s.pageForm(w, r)
		if !ok {
			return
		}
		view, err := call(r, form, s.readCookie(r, sessionCookie))
		data := s.accountData(view)
		if err != nil {
			s.accountError(w, r, s.accountPages.account, data, err)
			return
		}
		s.render(w, r, http.StatusOK, s.accountPages.account, pageCSP, data)
	}
}

func (s *Server) accountPassword(r *http.Request, form map[string][]string, cookie string) (broker.ProfileView, error) {
	return s.broker.ChangePassword(r.Context(), cookie, first(form, "csrf"), first(form, "current"), first(form, "password"), first(form, "confirm"), s.meta(r))
}

func (s *Server) accountEmail(r *http.Request, form map[string][]string, cookie string) (broker.ProfileView, error) {
	return s.broker.ChangeEmail(r.Context(), cookie, first(form, "csrf"), first(form, "current"), first(form, "email"), s.mailMeta(r, ""))
}

// emailLinkPage renders the page behind an e-mail link.
func (s *Server) emailLinkPage(w http.ResponseWriter, r *http.Request, status int, reset bool, view broker.EmailLinkView, msg string) {
	data := map[string]any{"Title": "Confirm your e-mail address", "Action": broker.PathVerifyEmail, "View": view, "MinLength": s.broker.PasswordMinLength()}
	if reset {
		data["Title"], data["Action"], data["Reset"] = "Choose a new password", broker.PathResetPassword, true
	}
	if msg != "" {
		data["Error"] = msg
	}
	s.render(w, r, status, s.accountPages.link, pageCSP, data)
}

// emailLinkShow serves the GET of an e-mail link: the page with its form (the
// link is used only by the form's POST).
func (s *Server) emailLinkShow(reset bool, load func(ctx context.Context, token string) (broker.EmailLinkView, *broker.PageError)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		view, perr := load(r.Context(), r.URL.Query().Get("token"))
		if perr != nil {
			s.renderError(w, r, perr)
			return
		}
		s.emailLinkPage(w, r, http.StatusOK, reset, view, "")
	}
}

func (s *Server) verifyEmailSubmit(w http.ResponseWriter, r *http.Request) {
	form, ok := s.pageForm(w, r)
	if !ok {
		return
	}
	view, perr := s.broker.ConfirmEmail(r.Context(), first(form, "token"), s.meta(r))
	if perr != nil {
		s.renderError(w, r, perr)
		return
	}
	s.emailLinkPage(w, r, http.StatusOK, false, view, "")
}

func (s *Server) resetSubmit(w http.ResponseWriter, r *http.Request) {
	form, ok := s.pageForm(w, r)
	if !ok {
		return
	}
	view, err := s.broker.ResetPassword(r.Context(), first(form, "token"), first(form, "password"), first(form, "confirm"), s.meta(r))
	if err != nil {
		if pe, ok := broker.AsPageError(err); ok {
			s.renderError(w, r, pe)
			return
		}
		if errors.Is(err, local.ErrPasswordPolicy) || errors.Is(err, broker.ErrAccountMismatch) {
			s.emailLinkPage(w, r, http.StatusBadRequest, true, view, sentence(err))
			return
		}
		s.renderError(w, r, &broker.PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side.", Err: err})
		return
	}
	s.emailLinkPage(w, r, http.StatusOK, true, view, "")
}

func (s *Server) forgotShow(w http.ResponseWriter, r *http.Request) {
	if !s.broker.AccountMailEnabled() {
		s.renderError(w, r, &broker.PageError{Status: 404, Title: "Not found", Message: "Password reset by e-mail is not available here."})
		return
	}
	v := s.readCookie(r, forgotCookie)
	if len(v) != 22 {
		b := make([]byte, 16)
		if _, err := io.ReadFull(s.rand, b); err != nil {
			s.renderError(w, r, &broker.PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side.", Err: err})
			return
		}
		v = base64.RawURLEncoding.EncodeToString(b)
		s.setCookie(w, forgotCookie, v, 3600)
	}
	s.render(w, r, http.StatusOK, s.accountPages.forgot, pageCSP, map[string]any{"Title": "Forgot your password?", "CSRF": broker.CSRFToken(v, "forgot")})
}

func (s *Server) forgotSubmit(w http.ResponseWriter, r *http.Request) {
	form, ok := s.pageForm(w, r)
	if !ok {
		return
	}
	v := s.readCookie(r, forgotCookie)
	if v == "" || first(form, "csrf") != broker.CSRFToken(v, "forgot") {
		s.renderError(w, r, &broker.PageError{Status: 400, Title: "Form expired", Message: "The form was not valid. Open the page again.", Err: errors.New("csrf token mismatch")})
		return
	}
	data := map[string]any{"Title": "Forgot your password?", "CSRF": broker.CSRFToken(v, "forgot")}
	if err := s.broker.RequestPasswordReset(r.Context(), first(form, "email"), s.mailMeta(r, "")); err != nil {
		s.accountError(w, r, s.accountPages.forgot, data, err)
		return
	}
	data["Sent"] = true
	s.render(w, r, http.StatusOK, s.accountPages.forgot, pageCSP, data)
}
