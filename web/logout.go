package web

import (
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/broker/oauth2"
)

// selectAccountPage serves GET /select-account: the account chooser.
func (s *Server) selectAccountPage(w http.ResponseWriter, r *http.Request) {
	view, perr := s.broker.AccountChooser(r.Context(), r.URL.Query().Get("req"), s.readCookie(r, bindingCookie), s.browserSessions(r))
	if perr != nil {
		s.renderError(w, r, perr)
		return
	}
	s.render(w, r, http.StatusOK, s.pages.selectAccount, pageCSP, map[string]any{"Title": "Choose an account", "View": view})
}

// selectAccountSubmit serves POST /select-account: sid names the chosen
// account; action=another is "use another account".
func (s *Server) selectAccountSubmit(w http.ResponseWriter, r *http.Request) {
	form, ok := s.pageForm(w, r)
	if !ok {
		return
	}
	res := s.broker.SelectAccount(r.Context(), form.Get("req"), s.readCookie(r, bindingCookie), form.Get("csrf"),
		s.browserSessions(r), form.Get("sid"), form.Get("action") == "another", s.meta(r))
	s.deliver(w, r, res)
}

// logout serves GET and POST /logout, the end_session_endpoint (OpenID
// Connect RP-Initiated Logout 1.0). A POST (often a cross-site form post,
// which carries no SameSite=Lax cookie) is stashed and answered with a
// 303 to GET /logout?resume=ID on our own origin, where the session
// cookies arrive.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	var raw url.Values
	if r.Method == http.MethodPost {
		var perr *oauth2.Error
		raw, perr = oauth2.ParseForm(r, s.maxBody)
		if perr != nil {
			s.renderError(w, r, &broker.PageError{Status: perr.Status, Title: "Invalid request", Message: "The sign-out request could not be read.", Err: perr})
			return
		}
	} else {
		var err error
		raw, err = url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			s.renderError(w, r, &broker.PageError{Status: 400, Title: "Invalid request", Message: "The sign-out request is malformed.", Err: err})
			return
		}
	}
	params, dup := oauth2.SingleValues(raw)
	if dup != nil {
		s.renderError(w, r, &broker.PageError{Status: 400, Title: "Invalid request", Message: "The sign-out request repeats a parameter.", Err: dup})
		return
	}
	if r.Method == http.MethodPost {
		id, err := s.broker.StashLogout(r.Context(), params)
		if err != nil {
			s.renderError(w, r, &broker.PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err})
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, broker.PathEndSession+"?resume="+url.QueryEscape(id), http.StatusSeeOther)
		return
	}
	if id, ok := params["resume"]; ok {
		stashed, found, err := s.broker.ResumeLogout(r.Context(), id)
		switch {
		case err != nil:
			s.renderError(w, r, &broker.PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side. Please try again.", Err: err})
			return
		case !found:
			s.renderError(w, r, &broker.PageError{Status: 400, Title: "Sign-out expired", Message: "The sign-out request has expired or was already completed. Go back to the application and sign out again."})
			return
		}
		params = stashed
	}
	s.deliverLogout(w, r, s.broker.Logout(r.Context(), params, s.readCookie(r, bindingCookie), s.browserSessions(r), s.meta(r)))
}

// logoutConfirm serves POST /logout/confirm, the confirmation form.
func (s *Server) logoutConfirm(w http.ResponseWriter, r *http.Request) {
	form, ok := s.pageForm(w, r)
	if !ok {
		return
	}
	res := s.broker.ConfirmLogout(r.Context(), form.Get("req"), s.readCookie(r, bindingCookie), form.Get("csrf"),
		s.browserSessions(r), form.Get("action") == "logout", s.meta(r))
	s.deliverLogout(w, r, res)
}

// signedOutScript continues to the client once the page and its
// front-channel iframes have loaded (the window's load event waits for
// them), or after five seconds whatever they do.
const signedOutScript = `(function(){var d=false;function go(){if(d)return;d=true;var l=document.getElementById("continue");if(l)location.replace(l.href)}window.addEventListener("load",go);setTimeout(go,5000)})();`

// deliverLogout turns a logout answer into the HTTP answer.
func (s *Server) deliverLogout(w http.ResponseWriter, r *http.Request, res broker.LogoutResult) {
	s.applyCookies(w, res.Cookies)
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case res.Page != nil:
		s.renderError(w, r, res.Page)
	case res.Confirm != nil:
		s.render(w, r, http.StatusOK, s.pages.logoutConfirm, pageCSP, map[string]any{"Title": "Sign out", "View": res.Confirm})
	case res.Done != nil && len(res.Done.FrontChannel) == 0 && res.Done.Redirect != "":
		w.Header().Set("Location", res.Done.Redirect)
		w.WriteHeader(http.StatusSeeOther)
	case res.Done != nil:
		data := map[string]any{"Title": "Signed out", "Done": res.Done}
		csp := pageCSP
		if len(res.Done.FrontChannel) > 0 {
			csp = frontChannelCSP(res.Done.FrontChannel, res.Done.Redirect != "")
			if res.Done.Redirect != "" {
				data["Script"] = template.JS(signedOutScript)
			}
		}
		s.render(w, r, http.StatusOK, s.pages.signedOut, csp, data)
	default:
		s.renderError(w, r, &broker.PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side."})
	}
}

// frontChannelCSP is the policy of a signed-out page that frames the
// clients' front-channel logout URLs: frame-src lists exactly their
// origins; its own frame-ancestors stays 'none' (DESIGN-NOTES.md). With a
// redirect to follow, the one script that follows it is allowed by hash.
func frontChannelCSP(urls []string, script bool) string {
	var origins []string
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			continue
		}
		o := strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host)
		if !slices.Contains(origins, o) {
			origins = append(origins, o)
		}
	}
	csp := "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-src " + strings.Join(origins, " ")
	if script {
		csp += "; script-src 'sha256-" + scriptHash(signedOutScript) + "'"
	}
	return csp + "; frame-ancestors 'none'; base-uri 'none'"
}
