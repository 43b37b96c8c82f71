package web

import (
	"net/http"

	"github.com/latchkeyid/latchkey/broker"
)

// accountSignInCookie holds the state of a sign-in to the account page
// in flight (broker/account_signin.go): the callback must come back to
// the browser that started it.
const accountSignInCookie = "latchkey_account_signin"

// registerAccountSignIn adds GET /account/callback, the redirect URI of
// the built-in account client.
func (s *Server) registerAccountSignIn(mux *http.ServeMux) {
	mux.HandleFunc("GET "+broker.PathAccountCallback, s.accountSignInCallback)
}

// accountSignIn answers GET /account without a session: a sign-in
// through /authorize as the account client, back at /account.
func (s *Server) accountSignIn(w http.ResponseWriter, r *http.Request) {
	state, next, perr := s.broker.AccountSignIn(r.Context())
	if perr != nil {
		s.renderError(w, r, perr)
		return
	}
	s.setCookie(w, accountSignInCookie, state, int(s.broker.AuthRequestTTL().Seconds()))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", next)
	w.WriteHeader(http.StatusSeeOther)
}

func (s *Server) accountSignInCallback(w http.ResponseWriter, r *http.Request) {
	perr := s.broker.AccountSignInCallback(r.Context(), r.URL.Query(), s.readCookie(r, accountSignInCookie), s.readCookie(r, sessionCookie), s.meta(r))
	s.clearCookie(w, accountSignInCookie)
	if perr != nil {
		s.renderError(w, r, perr)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", broker.PathAccount)
	w.WriteHeader(http.StatusSeeOther)
}
