package web

import (
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/broker/oauth2"
	"github.com/latchkeyid/latchkey/internal/logging"
)

// Cookie names. Over https they carry the __Host- prefix (Secure, Path=/,
// no Domain); plain-http development drops prefix and Secure. The session
// cookie names the browser's active SSO session; the accounts cookie
// holds the cookie values of the other accounts signed in in this browser
// (prompt=select_account), newest first, joined by ".".
const (
	bindingCookie  = "latchkey_auth"
	sessionCookie  = "latchkey_session"
	accountsCookie = "latchkey_accounts"
)

func (s *Server) cookieName(base string) string {
	if s.https {
		return "__Host-" + base
	}
	return base
}

func (s *Server) readCookie(r *http.Request, base string) string {
	c, err := r.Cookie(s.cookieName(base))
	if err != nil {
		return ""
	}
	return c.Value
}

func (s *Server) setCookie(w http.ResponseWriter, base, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: s.cookieName(base), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: s.https, SameSite: http.SameSiteLaxMode,
	})
}

// clearCookie removes one of our cookies.
func (s *Server) clearCookie(w http.ResponseWriter, base string) {
	s.setCookie(w, base, "", -1)
}

// browserSessions reads the session and accounts cookies.
func (s *Server) browserSessions(r *http.Request) broker.BrowserSessions {
	bs := broker.BrowserSessions{Active: s.readCookie(r, sessionCookie)}
	if v := s.readCookie(r, accountsCookie); v != "" && len(v) <= 1024 {
		for _, c := range strings.Split(v, ".") {
			if c != "" && len(bs.Others) < broker.MaxOtherAccounts {
				bs.Others = append(bs.Others, c)
			}
		}
	}
	return bs
}

// applyCookies sets and clears what a broker answer says.
func (s *Server) applyCookies(w http.ResponseWriter, c broker.Cookies) {
	if c.Binding != "" {
		s.setCookie(w, bindingCookie, c.Binding, int(s.broker.AuthRequestTTL().Seconds()))
	}
	switch {
	case c.SessionCookie != "":
		s.setCookie(w, sessionCookie, c.SessionCookie, 0)
	case c.ClearSession:
		s.clearCookie(w, sessionCookie)
	}
	if c.SetOthers {
		if len(c.Others) == 0 {
			s.clearCookie(w, accountsCookie)
		} else {
			s.setCookie(w, accountsCookie, strings.Join(c.Others, "."), 0)
		}
	}
}

// meta is what the audit log records about a request. The client IP
// comes from the trusted-proxy rules only (internal/clientip).
func (s *Server) meta(r *http.Request) broker.RequestMeta {
	ip := ""
	if a := s.ips.ClientIP(r); a.IsValid() {
		ip = a.String()
	}
	ua := r.UserAgent()
	if len(ua) > 256 {
		ua = ua[:256]
	}
	return broker.RequestMeta{IP: ip, UserAgent: ua, RequestID: logging.RequestID(r.Context())}
}

// authorize serves GET and POST /authorize.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	var raw url.Values
	var err error
	if r.Method == http.MethodPost {
		var perr *oauth2.Error
		raw, perr = oauth2.ParseForm(r, s.maxBody)
		if perr != nil {
			s.renderError(w, r, &broker.PageError{Status: perr.Status, Title: "Invalid request", Message: "The sign-in request could not be read.", Err: perr})
			return
		}
	} else {
		raw, err = url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			s.renderError(w, r, &broker.PageError{Status: 400, Title: "Invalid request", Message: "The sign-in request is malformed.", Err: err})
			return
		}
	}
	params, dup := oauth2.SingleValues(raw)
	if dup != nil {
		if len(raw["client_id"]) > 1 || len(raw["redirect_uri"]) > 1 {
			s.renderError(w, r, &broker.PageError{Status: 400, Title: "Invalid request", Message: "The sign-in request repeats client_id or redirect_uri.", Err: dup})
			return
		}
		params = firstValues(raw)
	}
	res := s.broker.Authorize(r.Context(), params, dup, s.readCookie(r, bindingCookie), s.browserSessions(r))
	s.deliver(w, r, res)
}

// firstValues is SingleValues' map when a parameter was repeated: the
// first value of each, empty values dropped as SingleValues drops them.
func firstValues(v url.Values) map[string]string {
	m := make(map[string]string, len(v))
	for k, vs := range v {
		if len(vs) > 0 && vs[0] != "" {
			m[k] = vs[0]
		}
	}
	return m
}

// deliver turns a broker Result into the HTTP answer.
func (s *Server) deliver(w http.ResponseWriter, r *http.Request, res broker.Result) {
	s.applyCookies(w, res.Cookies)
	w.Header().Set("Cache-Control", "no-store")
	if redirectIsServerError(res) && s.unavailablePage(w, r, http.StatusInternalServerError, errors.New("server_error redirect")) {
		return
	}
	switch {
	case res.Page != nil:
		s.renderError(w, r, res.Page)
	case res.Redirect != nil && res.Redirect.Mode == oauth2.ResponseModeFormPost:
		s.renderFormPost(w, r, res.Redirect.URI, res.Redirect.Params)
	case res.Redirect != nil:
		// No body: http.Redirect would repeat the URL, with the code, in
		// an HTML page.
		w.Header().Set("Location", res.Redirect.URL())
		w.WriteHeader(http.StatusSeeOther)
	case res.Next != "":
		http.Redirect(w, r, "/"+string(res.Next)+"?req="+url.QueryEscape(res.RequestID), http.StatusSeeOther)
	default:
		s.renderError(w, r, &broker.PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side.", Err: errors.New("empty broker result")})
	}
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	view, perr := s.broker.LoginPage(r.Context(), r.URL.Query().Get("req"), s.readCookie(r, bindingCookie))
	if perr != nil {
		s.renderError(w, r, perr)
		return
	}
	s.render(w, r, http.StatusOK, s.pages.login, pageCSP, map[string]any{"Title": "Sign in", "View": view})
}

func (s *Server) loginSubmit(w http.ResponseWriter, r *http.Request) {
	form, ok := s.pageForm(w, r)
	if !ok {
		return
	}
	res, view, err := s.broker.PasswordLoginWith(r.Context(), form.Get("req"), s.readCookie(r, bindingCookie),
		form.Get("csrf"), s.browserSessions(r), form.Get("connector"), form.Get("username"), form.Get("password"), s.mailMeta(r, form.Get("req")))
	var limited *broker.RateLimitedError
	switch {
	case errors.As(err, &limited):
		w.Header().Set("Retry-After", strconv.Itoa(limited.RetryAfterSeconds()))
		msg := tooMany(limited.RetryAfter)
		s.render(w, r, http.StatusTooManyRequests, s.pages.login, pageCSP, map[string]any{"Title": "Sign in", "View": view, "Error": msg})
	case errors.Is(err, broker.ErrBusy):
		w.Header().Set("Retry-After", "2")
		s.render(w, r, http.StatusServiceUnavailable, s.pages.login, pageCSP, map[string]any{"Title": "Sign in", "View": view, "Error": "The server is busy. Please try again in a moment."})
	case errors.Is(err, broker.ErrEmailNotVerified): // register.go
		s.render(w, r, http.StatusForbidden, s.pages.login, loginCSP(view), map[string]any{"Title": "Sign in", "View": view, "Error": msgEmailNotVerified})
	case errors.Is(err, broker.ErrBadCredentials):
		s.render(w, r, http.StatusOK, s.pages.login, loginCSP(view), map[string]any{"Title": "Sign in", "View": view, "Error": "Incorrect username or password."})
	case err != nil:
		s.renderError(w, r, &broker.PageError{Status: 500, Title: "Server error", Message: "Something went wrong on our side.", Err: err})
	default:
		s.deliver(w, r, res)
	}
}

func (s *Server) consentPage(w http.ResponseWriter, r *http.Request) {
	view, perr := s.broker.ConsentPage(r.Context(), r.URL.Query().Get("req"), s.readCookie(r, bindingCookie))
	if perr != nil {
		s.renderError(w, r, perr)
		return
	}
	s.render(w, r, http.StatusOK, s.pages.consent, pageCSP, map[string]any{"Title": "Allow access", "View": view, "Scopes": describeScopes(view.Scopes)})
}

func (s *Server) consentSubmit(w http.ResponseWriter, r *http.Request) {
	form, ok := s.pageForm(w, r)
	if !ok {
		return
	}
	approve := form.Get("action") == "approve"
	res := s.broker.Consent(r.Context(), form.Get("req"), s.readCookie(r, bindingCookie), form.Get("csrf"),
		s.readCookie(r, sessionCookie), approve, s.meta(r))
	s.deliver(w, r, res)
}

// writeOAuthError answers a JSON endpoint with an RFC 6749 §5.2 error.
func (s *Server) writeOAuthError(w http.ResponseWriter, r *http.Request, e *oauth2.Error) {
	if ue, ok := s.unavailableError(r, e); ok {
		w.Header().Set("Retry-After", outageRetryAfter)
		e = ue
	}
	if e.Cause != nil || e.Status >= 500 {
		lvl := slog.LevelInfo
		if e.Status >= 500 {
			lvl = slog.LevelError
		}
		s.log.Log(r.Context(), lvl, "oauth error", slog.String("path", r.URL.Path), slog.String("error", e.Code), slog.Any("cause", e.Cause))
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	status := e.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	if status == http.StatusMethodNotAllowed {
		h.Set("Allow", http.MethodPost)
	}
	if e.Code == oauth2.CodeInvalidClient {
		h.Set("WWW-Authenticate", `Basic realm="latchkey"`)
	}
	w.WriteHeader(status)
	w.Write(e.JSON())
}

// token serves /token (any method: non-POST is 405 from the parser).
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
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
	resp, oerr := s.broker.Token(r.Context(), form, cc, s.meta(r))
	if oerr != nil {
		s.writeOAuthError(w, r, oerr)
		return
	}
	h := w.Header()
	h.Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, resp, "no-store")
}

// clientCredentials reads HTTP Basic (decoding the form-urlencoded id and
// secret, RFC 6749 §2.3.1) and the form's client_id / client_secret.
func clientCredentials(r *http.Request, form url.Values) (broker.ClientCredentials, *oauth2.Error) {
	cc := broker.ClientCredentials{FormID: form.Get("client_id")}
	if sec, ok := form["client_secret"]; ok {
		cc.FormSecret, cc.FormSecretOK = sec[0], true
	}
	if r.Header.Get("Authorization") == "" {
		return cc, nil
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		return cc, oauth2.ErrInvalidClient("malformed Authorization header", nil)
	}
	var err1, err2 error
	cc.BasicID, err1 = url.QueryUnescape(id)
	cc.BasicSecret, err2 = url.QueryUnescape(secret)
	if err1 != nil || err2 != nil {
		return cc, oauth2.ErrInvalidClient("malformed client credentials encoding", nil)
	}
	cc.Basic = true
	return cc, nil
}

// userinfo serves GET and POST /userinfo (RFC 6750 bearer tokens).
func (s *Server) userinfo(w http.ResponseWriter, r *http.Request) {
	bearer := ""
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			s.bearerError(w, r, oauth2.ErrInvalidRequest("malformed Authorization header", nil))
			return
		}
		bearer = strings.TrimSpace(tok)
	}
	// The form body is read when it is the only place the token can be,
	// or when it is a form that might carry a second one: RFC 6750 §2 lets
	// a client use one method per request.
	if r.Method == http.MethodPost && (bearer == "" || isFormBody(r)) {
		form, perr := oauth2.ParseTokenForm(r, s.maxBody)
		if perr != nil {
			s.bearerError(w, r, perr)
			return
		}
		if tok := form.Get("access_token"); tok != "" {
			if bearer != "" {
				s.bearerError(w, r, oauth2.ErrInvalidRequest("use only one method to send the access token", nil))
				return
			}
			bearer = tok
		}
	}
	claims, oerr := s.broker.UserInfo(r.Context(), bearer)
	if oerr != nil {
		s.bearerError(w, r, oerr)
		return
	}
	writeJSON(w, http.StatusOK, claims, "no-store")
}

func isFormBody(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/x-www-form-urlencoded"
}

// bearerError answers per RFC 6750 §3 with WWW-Authenticate.
func (s *Server) bearerError(w http.ResponseWriter, r *http.Request, e *oauth2.Error) {
	if ue, ok := s.unavailableError(r, e); ok {
		w.Header().Set("Retry-After", outageRetryAfter)
		e = ue
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	status := e.Status
	if status == 0 {
		status = http.StatusUnauthorized
	}
	if e.Code == "" {
		h.Set("WWW-Authenticate", `Bearer realm="latchkey"`)
		w.WriteHeader(status)
		return
	}
	if e.Cause != nil {
		s.log.InfoContext(r.Context(), "bearer token refused", slog.String("error", e.Code), slog.Any("cause", e.Cause))
	}
	h.Set("WWW-Authenticate", `Bearer realm="latchkey", error="`+e.Code+`", error_description="`+strings.ReplaceAll(e.Description, `"`, "'")+`"`)
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(e.JSON())
}
