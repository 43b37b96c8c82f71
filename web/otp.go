package web

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/mfa/otp"
)

// registerOTP adds the SMS and e-mail code pages: /mfa/otp (GET the
// page, POST a code), /mfa/otp/send, /mfa/otp/enroll (GET the form, POST
// an address) and /mfa/otp/enroll/confirm.
func (s *Server) registerOTP(mux *http.ServeMux) error {
	t, err := s.parseTemplates("templates/layout.html", "templates/mfa_otp.html")
	if err != nil {
		return err
	}
	s.otpPage = t.Lookup("mfa_otp.html")
	mux.HandleFunc("GET /mfa/otp", s.otpShow)
	mux.HandleFunc("POST /mfa/otp", s.otpVerify)
	mux.HandleFunc("POST /mfa/otp/send", s.otpPost(s.otpSend))
	mux.HandleFunc("GET /mfa/otp/enroll", s.otpEnrollShow)
	mux.HandleFunc("POST /mfa/otp/enroll", s.otpPost(s.otpEnrollStart))
	mux.HandleFunc("POST /mfa/otp/enroll/confirm", s.otpEnrollConfirm)
	return nil
}

// otpRedirect sends the generic challenge page on to the code page when
// the factor it would ask for is an SMS or e-mail code.
func otpRedirect(w http.ResponseWriter, r *http.Request, view broker.MFAView) bool {
	if !broker.OTPFactor(view.Factor) {
		return false
	}
	http.Redirect(w, r, "/mfa/otp?req="+url.QueryEscape(view.RequestID)+"&factor="+url.QueryEscape(view.Factor), http.StatusSeeOther)
	return true
}

func otpTitle(v broker.OTPView) string {
	if v.Enrolling {
		return "Set up two-step verification"
	}
	return "Two-step verification"
}

func (s *Server) otpRender(w http.ResponseWriter, r *http.Request, status int, view broker.OTPView, msg any) {
	s.render(w, r, status, s.otpPage, pageCSP, map[string]any{"Title": otpTitle(view), "View": view, "Error": msg})
}

// otpError renders a failure on the code page again: 429 with
// Retry-After over a limit, 503 when the code could not be sent, 400 for
// a wrong code or address.
func (s *Server) otpError(w http.ResponseWriter, r *http.Request, view broker.OTPView, err error) {
	var limited *broker.RateLimitedError
	switch {
	case errors.As(err, &limited):
		w.Header().Set("Retry-After", strconv.Itoa(limited.RetryAfterSeconds()))
		s.otpRender(w, r, http.StatusTooManyRequests, view, tooMany(limited.RetryAfter))
	case errors.Is(err, broker.ErrOTPSendFailed):
		s.otpRender(w, r, http.StatusServiceUnavailable, view, sentence(err))
	case errors.Is(err, broker.ErrMFAInvalidCode), errors.Is(err, broker.ErrOTPNotSent),
		errors.Is(err, otp.ErrPhoneFormat), errors.Is(err, otp.ErrEmailFormat):
		s.otpRender(w, r, http.StatusBadRequest, view, sentence(err))
	default:
		s.renderError(w, r, &broker.PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side.", Err: err})
	}
}

// sentence capitalizes an error message and ends it with a period.
func sentence(err error) string {
	msg := err.Error()
	return strings.ToUpper(msg[:1]) + msg[1:] + "."
}

func (s *Server) otpShow(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	view, perr := s.broker.OTPPage(r.Context(), q.Get("req"), s.readCookie(r, bindingCookie), s.browserSessions(r), q.Get("factor"), s.meta(r))
	if perr != nil {
		s.renderError(w, r, perr)
		return
	}
	s.otpRender(w, r, http.StatusOK, view, "")
}

// answer renders view (status 200), a failure, or the broker's Result.
func (s *Server) otpAnswer(w http.ResponseWriter, r *http.Request, res broker.Result, view broker.OTPView, err error) {
	switch {
	case err != nil:
		s.otpError(w, r, view, err)
	case res.Page != nil || res.Redirect != nil || res.Next != "":
		s.deliver(w, r, res)
	default:
		s.otpRender(w, r, http.StatusOK, view, "")
	}
}

// otpPost serves a code-page form that answers the page again or moves
// on: call gets the form, the binding cookie and the browser's sessions.
func (s *Server) otpPost(call func(r *http.Request, form url.Values, binding string, bs broker.BrowserSessions) (broker.Result, broker.OTPView, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		form, ok := s.pageForm(w, r)
		if !ok {
			return
		}
		res, view, err := call(r, form, s.readCookie(r, bindingCookie), s.browserSessions(r))
		s.otpAnswer(w, r, res, view, err)
	}
}

func (s *Server) otpSend(r *http.Request, form url.Values, binding string, bs broker.BrowserSessions) (broker.Result, broker.OTPView, error) {
	return s.broker.SendOTP(r.Context(), form.Get("req"), binding, form.Get("csrf"), bs, form.Get("factor"), s.mailMeta(r, form.Get("req")))
}

func (s *Server) otpVerify(w http.ResponseWriter, r *http.Request) {
	form, ok := s.pageForm(w, r)
	if !ok {
		return
	}
	res, view, err := s.broker.VerifyOTP(r.Context(), form.Get("req"), s.readCookie(r, bindingCookie), form.Get("csrf"),
		s.browserSessions(r), form.Get("factor"), form.Get("code"), s.meta(r))
	if err != nil {
		s.otpError(w, r, view, err)
		return
	}
	s.deliver(w, r, res)
}

func (s *Server) otpEnrollShow(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	view, perr := s.broker.OTPEnrollPage(r.Context(), q.Get("req"), s.readCookie(r, bindingCookie), s.browserSessions(r), q.Get("factor"), s.meta(r))
	if perr != nil {
		s.renderError(w, r, perr)
		return
	}
	s.otpRender(w, r, http.StatusOK, view, "")
}

func (s *Server) otpEnrollStart(r *http.Request, form url.Values, binding string, bs broker.BrowserSessions) (broker.Result, broker.OTPView, error) {
	return s.broker.StartOTPEnrollment(r.Context(), form.Get("req"), binding, form.Get("csrf"), bs, form.Get("factor"), form.Get("address"), s.mailMeta(r, form.Get("req")))
}

func (s *Server) otpEnrollConfirm(w http.ResponseWriter, r *http.Request) {
	form, ok := s.pageForm(w, r)
	if !ok {
		return
	}
	res, view, codes, err := s.broker.FinishOTPEnrollment(r.Context(), form.Get("req"), s.readCookie(r, bindingCookie), form.Get("csrf"),
		s.browserSessions(r), form.Get("code"), s.meta(r))
	switch {
	case err != nil:
		s.otpError(w, r, view, err)
	case len(codes.RecoveryCodes) > 0:
		// Shown once, in the answer to this POST; never stored readable.
		s.applyCookies(w, res.Cookies)
		s.render(w, r, http.StatusOK, s.mfaPages.codes, pageCSP, map[string]any{"Title": "Save your recovery codes", "View": codes})
	default:
		s.deliver(w, r, res)
	}
}
