package web

import (
	"net/http"

	"github.com/latchkeyid/latchkey/broker"
)

// loginChooser is GET /login: the password form and the connector
// buttons, or straight to the upstream when connector_id or login_hint
// chose one.
func (s *Server) loginChooser(w http.ResponseWriter, r *http.Request) {
	view, perr := s.broker.LoginPage(r.Context(), r.URL.Query().Get("req"), s.readCookie(r, bindingCookie))
	if perr != nil {
		s.renderError(w, r, perr)
		return
	}
	if view.RedirectPost != nil {
		s.renderFormPost(w, r, view.RedirectPost.URI, view.RedirectPost.Params)
		return
	}
	if view.Redirect != "" {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Location", view.Redirect)
		w.WriteHeader(http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, s.pages.login, loginCSP(view), map[string]any{"Title": "Sign in", "View": view})
}

// upstreamStart is POST /login/upstream: a connector button.
func (s *Server) upstreamStart(w http.ResponseWriter, r *http.Request) {
	form, ok := s.pageForm(w, r)
	if !ok {
		return
	}
	res := s.broker.BeginUpstream(r.Context(), form.Get("req"), s.readCookie(r, bindingCookie), form.Get("csrf"), form.Get("connector"), s.meta(r))
	s.deliver(w, r, res)
}

// upstreamCallback is GET /callback/{connector}: the browser back from
// the upstream (with the binding cookie: same-site navigation).
func (s *Server) upstreamCallback(w http.ResponseWriter, r *http.Request) {
	res := s.broker.UpstreamCallback(r.Context(), r.PathValue("connector"), s.readCookie(r, bindingCookie), r.URL.Query(),
		s.browserSessions(r), s.meta(r))
	s.deliver(w, r, res)
}

// upstreamCallbackPost is POST /callback/{connector}: a form_post answer
// arrives cross-site without our Lax cookies, so it is stored under its
// state and the browser is sent to the GET on our own origin, where the
// binding cookie is sent and checked (DESIGN-NOTES "cross-site POST").
func (s *Server) upstreamCallbackPost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, s.maxBody)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, r, &broker.PageError{Status: http.StatusBadRequest, Title: "Invalid form", Message: "The form could not be read.", Err: err})
		return
	}
	next, perr := s.broker.StoreUpstreamPost(r.Context(), r.PathValue("connector"), r.PostForm)
	s.continueOnOrigin(w, r, next, perr)
}

// continueOnOrigin answers a cross-site POST that was stored: the error
// page, or a 303 to the GET on our own origin that continues it.
func (s *Server) continueOnOrigin(w http.ResponseWriter, r *http.Request, next string, perr *broker.PageError) {
	if perr != nil {
		s.renderError(w, r, perr)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", next)
	w.WriteHeader(http.StatusSeeOther)
}
