package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/storage"
)

// pending is a sign-in started by /admin/login, kept under its state.
type pending struct {
	Binding  string `json:"binding"` // hash of the login cookie
	Nonce    string `json:"nonce"`
	Verifier string `json:"verifier"`
	Next     string `json:"next"`
}

func (c *Console) oauth(ctx context.Context) (*oidc.Provider, *oauth2.Config, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.provider == nil {
		p, err := oidc.NewProvider(oidc.ClientContext(ctx, c.o.HTTPClient), c.o.Issuer)
		if err != nil {
			return nil, nil, fmt.Errorf("discover %s: %w", c.o.Issuer, err)
		}
		c.provider = p
	}
	return c.provider, &oauth2.Config{ClientID: c.o.ClientID, Endpoint: c.provider.Endpoint(), RedirectURL: c.o.RedirectURL,
		Scopes: []string{oidc.ScopeOpenID, "profile", "email", "groups"}}, nil
}

// safeNext keeps a return path inside the console.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/admin/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/admin/"
	}
	return next
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	_, cfg, err := c.oauth(ctx)
	if err != nil {
		c.o.Logger.ErrorContext(ctx, "console sign-in", slog.Any("error", err))
		c.errorPage(w, r, http.StatusServiceUnavailable, "The sign-in service cannot be reached right now. Try again in a moment.")
		return
	}
	state, nonce, verifier, binding := randomToken(), randomToken(), oauth2.GenerateVerifier(), randomToken()
	rec, _ := json.Marshal(pending{Binding: hashed("", binding), Nonce: nonce, Verifier: verifier, Next: safeNext(r.URL.Query().Get("next"))})
	if err := c.o.Ephemeral.Put(ctx, hashed("console:login:", state), rec, loginTTL); err != nil {
		c.fail(w, r, err)
		return
	}
	http.SetCookie(w, c.cookie(loginCookie, binding, "/admin/", loginTTL))
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)}
	if c.o.RequireMFA {
		opts = append(opts, oauth2.SetAuthURLParam("acr_values", ACRMFA))
	}
	http.Redirect(w, r, cfg.AuthCodeURL(state, opts...), http.StatusSeeOther)
}

// idClaims are the ID token claims the console reads.
type idClaims struct {
	Name              string   `json:"name"`
	PreferredUsername string   `json:"preferred_username"`
	Groups            []string `json:"groups"`
	ACR               string   `json:"acr"`
	Nonce             string   `json:"nonce"`
}

func (c *Console) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	state := q.Get("state")
	raw, err := c.o.Ephemeral.Take(ctx, hashed("console:login:", state))
	var p pending
	if state == "" || err != nil || json.Unmarshal(raw, &p) != nil {
		c.errorPage(w, r, http.StatusBadRequest, "This sign-in is unknown or has expired. Start again from the console.")
		return
	}
	bind, cerr := r.Cookie(loginCookie)
	if cerr != nil || hashed("", bind.Value) != p.Binding {
		c.errorPage(w, r, http.StatusBadRequest, "This sign-in was started in another browser. Start again from the console.")
		return
	}
	http.SetCookie(w, c.cookie(loginCookie, "", "/admin/", -1))
	if e := q.Get("error"); e != "" {
		msg := "The sign-in was not completed (" + e + ")."
		if e == "unmet_authentication_requirements" {
			msg = "The console needs a second factor, and none could be used. Enroll one (TOTP or a passkey) and sign in again."
		}
		c.errorPage(w, r, http.StatusForbidden, msg)
		return
	}
	provider, cfg, err := c.oauth(ctx)
	if err != nil {
		c.errorPage(w, r, http.StatusServiceUnavailable, "The sign-in service cannot be reached right now. Try again in a moment.")
		return
	}
	hctx := oidc.ClientContext(ctx, c.o.HTTPClient)
	tok, err := cfg.Exchange(hctx, q.Get("code"), oauth2.VerifierOption(p.Verifier))
	if err != nil {
		c.o.Logger.WarnContext(ctx, "console sign-in: code exchange", slog.Any("error", err))
		c.errorPage(w, r, http.StatusBadRequest, "The sign-in could not be completed. Start again from the console.")
		return
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: c.o.ClientID, Now: c.o.Clock.Now}).Verify(hctx, rawID)
	var cl idClaims
	if err == nil {
		err = idt.Claims(&cl)
	}
	if err == nil && cl.Nonce != p.Nonce {
		err = errors.New("nonce mismatch")
	}
	if err != nil {
		c.o.Logger.WarnContext(ctx, "console sign-in: ID token", slog.Any("error", err))
		c.errorPage(w, r, http.StatusBadRequest, "The sign-in could not be verified. Start again from the console.")
		return
	}
	deny := func(reason, msg string) {
		c.event(ctx, storage.Event{Type: "admin.console.denied", Actor: "user:" + idt.Subject, UserID: idt.Subject, Data: map[string]any{"reason": reason}})
		c.errorPage(w, r, http.StatusForbidden, msg)
	}
	if !contains(cl.Groups, c.o.AdminGroup) {
		deny("group", "Your account is not in the admin group ("+c.o.AdminGroup+"), so it cannot use the console.")
		return
	}
	if c.o.RequireMFA && acrRank[cl.ACR] < acrRank[ACRMFA] {
		deny("acr", "The console needs a sign-in with a second factor.")
		return
	}
	name := cl.PreferredUsername
	if name == "" {
		name = cl.Name
	}
	a := admin{UserID: idt.Subject, Name: name, CSRF: randomToken()}
	sid := randomToken()
	rec, _ := json.Marshal(a)
	if err := c.o.Ephemeral.Put(ctx, hashed("console:session:", sid), rec, c.o.SessionTTL); err != nil {
		c.fail(w, r, err)
		return
	}
	c.event(ctx, storage.Event{Type: "admin.console.signed_in", Actor: "user:" + a.UserID, UserID: a.UserID, Data: map[string]any{"acr": cl.ACR}})
	http.SetCookie(w, c.cookie(sessionCookie, sid, "/admin", c.o.SessionTTL))
	http.Redirect(w, r, p.Next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, a admin) {
	if ck, err := r.Cookie(sessionCookie); err == nil {
		_ = c.o.Ephemeral.Delete(r.Context(), hashed("console:session:", ck.Value))
	}
	http.SetCookie(w, c.cookie(sessionCookie, "", "/admin", -1))
	c.event(r.Context(), storage.Event{Type: "admin.console.signed_out", Actor: "user:" + a.UserID, UserID: a.UserID})
	c.render(w, r, http.StatusOK, "error", page{Title: "Signed out", Data: "You are signed out of the console."})
}

func (c *Console) event(ctx context.Context, e storage.Event) {
	if err := c.o.Store.AppendEvent(context.WithoutCancel(ctx), e); err != nil {
		c.o.Logger.WarnContext(ctx, "console audit event", slog.String("type", e.Type), slog.Any("error", err))
	}
}
