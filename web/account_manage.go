package web

import (
	"net/http"

	"github.com/latchkeyid/latchkey/broker"
)

// registerAccountManage adds the account page's self-service forms
// (docs/accounts.md): end sessions, unlink an identity, remove or rename
// a second factor, new recovery codes, revoke an app's consent.
func (s *Server) registerAccountManage(mux *http.ServeMux) {
	mux.HandleFunc("POST "+broker.PathAccount+"/profile", s.accountPost(func(r *http.Request, form map[string][]string, cookie string) (broker.ProfileView, error) {
		return s.broker.AccountSetName(r.Context(), cookie, first(form, "csrf"), first(form, "name"), s.meta(r))
	}))
	mux.HandleFunc("POST "+broker.PathAccount+"/sessions/end", s.accountPost(func(r *http.Request, form map[string][]string, cookie string) (broker.ProfileView, error) {
		return s.broker.AccountEndSession(r.Context(), cookie, first(form, "csrf"), first(form, "sid"), s.meta(r))
	}))
	mux.HandleFunc("POST "+broker.PathAccount+"/identities/unlink", s.accountPost(func(r *http.Request, form map[string][]string, cookie string) (broker.ProfileView, error) {
		return s.broker.AccountUnlink(r.Context(), cookie, first(form, "csrf"), first(form, "current"), first(form, "connector"), s.meta(r))
	}))
	mux.HandleFunc("POST "+broker.PathAccount+"/factors/remove", s.accountPost(func(r *http.Request, form map[string][]string, cookie string) (broker.ProfileView, error) {
		return s.broker.AccountRemoveFactor(r.Context(), cookie, first(form, "csrf"), first(form, "current"), first(form, "id"), s.meta(r))
	}))
	mux.HandleFunc("POST "+broker.PathAccount+"/factors/rename", s.accountPost(func(r *http.Request, form map[string][]string, cookie string) (broker.ProfileView, error) {
		return s.broker.AccountRenameFactor(r.Context(), cookie, first(form, "csrf"), first(form, "id"), first(form, "label"), s.meta(r))
	}))
	mux.HandleFunc("POST "+broker.PathAccount+"/apps/revoke", s.accountPost(func(r *http.Request, form map[string][]string, cookie string) (broker.ProfileView, error) {
		return s.broker.AccountRevokeConsent(r.Context(), cookie, first(form, "csrf"), first(form, "client"), s.meta(r))
	}))
	mux.HandleFunc("POST "+broker.PathAccount+"/recovery", s.accountPost(func(r *http.Request, form map[string][]string, cookie string) (broker.ProfileView, error) {
		return s.broker.AccountRegenerateRecovery(r.Context(), cookie, first(form, "csrf"), first(form, "current"), s.meta(r))
	}))
}
