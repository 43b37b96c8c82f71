package web

import (
	"errors"
	"html/template"
	"net/http"
	"strconv"

	"github.com/latchkeyid/latchkey/broker"
)

// linkPages is the link page: an upstream identity whose email belongs
// to an existing account waits until the user signs in with that
// account (broker/federation_link.go).
type linkPages struct {
	link *template.Template
}

// registerLink adds GET /link (the page) and POST /link (its password
// form, "create a separate account" and "cancel"); its connector buttons
// post to /login/upstream.
func (s *Server) registerLink(mux *http.ServeMux) error {
	t, err := s.parseTemplates("templates/layout.html", "templates/link.html")
	if err != nil {
		return err
	}
	s.linkPages = &linkPages{link: t.Lookup("link.html")}
	mux.HandleFunc("GET /"+string(broker.StepLink), s.linkPage)
	mux.HandleFunc("POST /"+string(broker.StepLink), s.linkSubmit)
	return nil
}

func (s *Server) linkPage(w http.ResponseWriter, r *http.Request) {
	s.renderLink(w, r, r.URL.Query().Get("req"), http.StatusOK, "", "")
}

// renderLink shows the link page for request id, with a failed
// attempt's message and connector.
func (s *Server) renderLink(w http.ResponseWriter, r *http.Request, id string, status int, msg any, connector string) {
	view, perr := s.broker.LinkPage(r.Context(), id, s.readCookie(r, bindingCookie))
	if perr != nil {
		s.renderError(w, r, perr)
		return
	}
	view.PasswordConnector = connector
	s.render(w, r, status, s.linkPages.link, pageCSP, map[string]any{"Title": "Link your account", "View": view, "Error": msg})
}

func (s *Server) linkSubmit(w http.ResponseWriter, r *http.Request) {
	form, ok := s.pageForm(w, r)
	if !ok {
		return
	}
	id, binding, csrf := form.Get("req"), s.readCookie(r, bindingCookie), form.Get("csrf")
	switch action := form.Get("action"); action {
	case "separate", "cancel":
		s.deliver(w, r, s.broker.DeclineLink(r.Context(), id, binding, csrf, s.browserSessions(r), action == "separate", s.meta(r)))
		return
	case "signin":
	default:
		s.renderError(w, r, &broker.PageError{Status: http.StatusBadRequest, Title: "Invalid form", Message: "The form could not be read.", Err: errors.New("unknown link action")})
		return
	}
	connector := form.Get("connector")
	res, _, err := s.broker.PasswordLoginWith(r.Context(), id, binding, csrf, s.browserSessions(r), connector, form.Get("username"), form.Get("password"), s.mailMeta(r, id))
	var limited *broker.RateLimitedError
	switch {
	case errors.As(err, &limited):
		w.Header().Set("Retry-After", strconv.Itoa(limited.RetryAfterSeconds()))
		s.renderLink(w, r, id, http.StatusTooManyRequests, tooMany(limited.RetryAfter), connector)
	case errors.Is(err, broker.ErrBusy):
		w.Header().Set("Retry-After", "2")
		s.renderLink(w, r, id, http.StatusServiceUnavailable, "The server is busy. Please try again in a moment.", connector)
	case errors.Is(err, broker.ErrBadCredentials):
		s.renderLink(w, r, id, http.StatusOK, "Incorrect username or password.", connector)
	case errors.Is(err, broker.ErrEmailNotVerified): // register.go
		s.renderLink(w, r, id, http.StatusForbidden, msgEmailNotVerified, connector)
	case err != nil:
		s.renderError(w, r, &broker.PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side.", Err: err})
	default:
		s.deliver(w, r, res)
	}
}
