package web

import (
	"errors"
	"net/http"

	"github.com/latchkeyid/latchkey/broker"
)

// registerAccountLink adds the account page's "Link" form: POST
// /account/identities/link starts the connector's upstream login; the
// upstream returns to /callback/{connector} as for a sign-in
// (broker/account_link.go).
func (s *Server) registerAccountLink(mux *http.ServeMux) {
	mux.HandleFunc("POST "+broker.PathAccount+"/identities/link", s.accountLinkStart)
}

func (s *Server) accountLinkStart(w http.ResponseWriter, r *http.Request) {
	form, ok := s.pageForm(w, r)
	if !ok {
		return
	}
	res, view, err := s.broker.AccountLinkStart(r.Context(), s.readCookie(r, sessionCookie), s.readCookie(r, bindingCookie),
		first(form, "csrf"), first(form, "current"), first(form, "connector"), s.meta(r))
	if err != nil {
		data := s.accountData(view)
		var le *broker.AccountLinkError
		if errors.As(err, &le) {
			data["Error"] = le.Message
			s.render(w, r, le.Status, s.accountPages.account, pageCSP, data)
			return
		}
		s.accountError(w, r, s.accountPages.account, data, err)
		return
	}
	s.deliver(w, r, res)
}

// accountFlash shows the outcome of a link kept for this session (once).
func (s *Server) accountFlash(r *http.Request, cookie string, view *broker.ProfileView, data map[string]any) {
	msg, errMsg := s.broker.TakeAccountFlash(r.Context(), cookie)
	if msg != "" {
		view.Message = msg
	}
	if errMsg != "" {
		data["Error"] = errMsg
	}
}
