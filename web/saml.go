package web

import (
	"errors"
	"net/http"

	"github.com/latchkeyid/latchkey/broker"
	samlconn "github.com/latchkeyid/latchkey/providers/saml"
)

// samlMaxBody bounds a POST to the ACS: the base64 SAMLResponse
// (samlconn.MaxResponseBytes) grows by about a tenth when form-encoded,
// plus the RelayState.
const samlMaxBody = samlconn.MaxResponseBytes*5/4 + 4<<10

// registerSAML adds a saml connector's SP endpoints (providers/saml
// Paths): metadata, the ACS (HTTP-POST, then a same-site GET) and the
// single logout endpoint.
func (s *Server) registerSAML(mux *http.ServeMux) {
	p := broker.PathSAMLPrefix + "{connector}"
	mux.HandleFunc("GET "+p+"/metadata", s.samlMetadata)
	mux.HandleFunc("POST "+p+"/acs", s.samlACSPost)
	mux.HandleFunc("GET "+p+"/acs", s.samlACS)
	mux.HandleFunc("GET "+p+"/slo", s.samlSLO)
	mux.HandleFunc("POST "+p+"/slo", s.samlSLO)
}

// samlMetadata is GET /saml/{connector}/metadata: the SP metadata to give
// the IdP (its URL is the SP entity ID unless entityID is configured).
func (s *Server) samlMetadata(w http.ResponseWriter, r *http.Request) {
	md, ok, err := s.broker.SAMLMetadata(r.PathValue("connector"))
	switch {
	case !ok:
		s.renderError(w, r, &broker.PageError{Status: http.StatusNotFound, Title: "Not available", Message: "There is no SAML connector at this address."})
		return
	case err != nil:
		s.renderError(w, r, &broker.PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side.", Err: err})
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	w.Header().Set("Cache-Control", "max-age=300")
	_, _ = w.Write(md)
}

// samlACSPost is POST /saml/{connector}/acs, the HTTP-POST binding: the
// IdP's page posts cross-site, so no SameSite=Lax cookie comes with it.
// The response is stored under a random id and the browser is sent with
// a 303 to GET /saml/{connector}/acs?resume=ID on our own origin, where
// the binding cookie arrives and is checked (DESIGN-NOTES "cross-site
// POST", the same pattern as form_post callbacks).
func (s *Server) samlACSPost(w http.ResponseWriter, r *http.Request) {
	conn := r.PathValue("connector")
	r.Body = http.MaxBytesReader(w, r.Body, samlMaxBody)
	if err := r.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			s.renderError(w, r, s.broker.SAMLRefused(r.Context(), conn, http.StatusRequestEntityTooLarge, "it is too large", err, s.meta(r)))
			return
		}
		s.renderError(w, r, s.broker.SAMLRefused(r.Context(), conn, http.StatusBadRequest, "the form could not be read", err, s.meta(r)))
		return
	}
	next, perr := s.broker.StoreSAMLPost(r.Context(), conn, r.PostForm, s.meta(r))
	s.continueOnOrigin(w, r, next, perr) // web/federation.go
}

// samlACS is GET /saml/{connector}/acs?resume=ID: the stored response,
// checked with the browser's binding cookie.
func (s *Server) samlACS(w http.ResponseWriter, r *http.Request) {
	res := s.broker.SAMLACS(r.Context(), r.PathValue("connector"), s.readCookie(r, bindingCookie), r.URL.Query().Get("resume"),
		s.browserSessions(r), s.meta(r))
	s.deliver(w, r, res)
}

// samlSLO is GET and POST /saml/{connector}/slo: the IdP's
// LogoutResponse to a single logout started at our end_session_endpoint.
// GET with ?start= sends the browser on to the IdP with the
// LogoutRequest prepared when the session ended.
func (s *Server) samlSLO(w http.ResponseWriter, r *http.Request) {
	if start := r.URL.Query().Get("start"); r.Method == http.MethodGet && start != "" {
		next, perr := s.broker.SAMLLogoutStart(r.Context(), r.PathValue("connector"), start)
		if perr != nil {
			s.renderError(w, r, perr)
			return
		}
		s.deliver(w, r, broker.Result{Redirect: next})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, samlMaxBody)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, r, &broker.PageError{Status: http.StatusBadRequest, Title: "Sign-out not possible", Message: "The identity provider's answer could not be read.", Err: err})
		return
	}
	s.deliverLogout(w, r, s.broker.SAMLLogoutResponse(r.Context(), r.PathValue("connector"), r, r.Form.Get("RelayState")))
}
