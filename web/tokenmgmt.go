package web

import (
	"net/http"

	"github.com/latchkeyid/latchkey/broker/oauth2"
)

// introspect serves /introspect (RFC 7662): POST, form-encoded, client
// authentication as at /token (any other method is 405 from the parser).
func (s *Server) introspect(w http.ResponseWriter, r *http.Request) {
	form, perr := oauth2.ParseTokenForm(r, s.maxBody)
	if perr != nil {
		s.writeOAuthError(w, r, perr)
		return
	}
	cc, cerr := clientCredentials(r, form)
	if cerr != nil {
		s.writeOAuthError(w, r, cerr)
		return
	}
	resp, oerr := s.broker.Introspect(r.Context(), form, cc, s.meta(r))
	if oerr != nil {
		s.writeOAuthError(w, r, oerr)
		return
	}
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, resp, "no-store")
}

// revoke serves /revoke (RFC 7009): 200 with an empty body when the token
// is revoked, unknown or already invalid.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	form, perr := oauth2.ParseTokenForm(r, s.maxBody)
	if perr != nil {
		s.writeOAuthError(w, r, perr)
		return
	}
	cc, cerr := clientCredentials(r, form)
	if cerr != nil {
		s.writeOAuthError(w, r, cerr)
		return
	}
	if oerr := s.broker.Revoke(r.Context(), form, cc, s.meta(r)); oerr != nil {
		s.writeOAuthError(w, r, oerr)
		return
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(http.StatusOK)
}
