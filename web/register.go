package web

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/latchkeyid/latchkey/broker"
)

// msgEmailNotVerified is the login page's answer to the right password
// of an account whose address is not confirmed (broker.ErrEmailNotVerified).
const msgEmailNotVerified = "Confirm your e-mail address first. We sent a new link to your address: open it, then sign in."

// registerRegistration adds the self-registration page (GET and POST
// /account/register?req=...; docs/accounts.md "Self-registration"). It
// answers 404 while registration is off.
func (s *Server) registerRegistration(mux *http.ServeMux) error {
	t, err := s.parseTemplates("templates/layout.html", "templates/register.html")
	if err != nil {
		return err
	}
	s.registerPage = t.Lookup("register.html")
	mux.HandleFunc("GET "+broker.PathRegister, s.registerShow)
	mux.HandleFunc("POST "+broker.PathRegister, s.registerSubmit)
	return nil
}

func (s *Server) registerData(view broker.RegisterView) map[string]any {
	errs := map[string]string{}
	for k, err := range view.Errors {
		errs[k] = sentence(err)
	}
	return map[string]any{"Title": "Create an account", "View": view, "Errors": errs, "MinLength": s.broker.PasswordMinLength()}
}

func (s *Server) registerShow(w http.ResponseWriter, r *http.Request) {
	view, perr := s.broker.RegisterPage(r.Context(), r.URL.Query().Get("req"), s.readCookie(r, bindingCookie))
	if perr != nil {
		s.renderError(w, r, perr)
		return
	}
	s.render(w, r, http.StatusOK, s.registerPage, pageCSP, s.registerData(view))
}

// registerSubmit takes the form: the same "check your mail" page for
// every valid form; the form again with a message per field, or over a
// limit (429 with Retry-After).
func (s *Server) registerSubmit(w http.ResponseWriter, r *http.Request) {
	form, ok := s.pageForm(w, r)
	if !ok {
		return
	}
	id := first(form, "req")
	view, err := s.broker.Register(r.Context(), id, s.readCookie(r, bindingCookie), first(form, "csrf"), broker.RegisterForm{
		Username: first(form, "username"), Email: first(form, "email"), Password: first(form, "password"), Confirm: first(form, "confirm"),
	}, s.mailMeta(r, id))
	data := s.registerData(view)
	var limited *broker.RateLimitedError
	switch {
	case err == nil:
		s.render(w, r, http.StatusOK, s.registerPage, pageCSP, data)
	case errors.As(err, &limited):
		w.Header().Set("Retry-After", strconv.Itoa(limited.RetryAfterSeconds()))
		data["Error"] = tooMany(limited.RetryAfter)
		s.render(w, r, http.StatusTooManyRequests, s.registerPage, pageCSP, data)
	case errors.Is(err, broker.ErrRegisterInvalid):
		s.render(w, r, http.StatusBadRequest, s.registerPage, pageCSP, data)
	default:
		if pe, ok := broker.AsPageError(err); ok {
			s.renderError(w, r, pe)
			return
		}
		s.renderError(w, r, &broker.PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side.", Err: err})
	}
}
