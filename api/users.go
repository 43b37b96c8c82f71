package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"strings"
	"time"

	"github.com/latchkeyid/latchkey/providers/local"
	"github.com/latchkeyid/latchkey/session"
	"github.com/latchkeyid/latchkey/storage"
)

// userView is a user as the API shows it: never the password hash.
type userView struct {
	ID            string    `json:"id"`
	Username      string    `json:"username"`
	Email         string    `json:"email"`
	EmailVerified bool      `json:"email_verified"`
	Name          string    `json:"name"`
	Groups        []string  `json:"groups"`
	HasPassword   bool      `json:"has_password"`
	Disabled      bool      `json:"disabled"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

func viewUser(u storage.User) userView {
	groups := u.Groups
	if groups == nil {
		groups = []string{}
	}
	return userView{ID: u.ID, Username: u.Username, Email: u.Email, EmailVerified: u.EmailVerified, Name: u.Name,
		Groups: groups, HasPassword: u.PasswordHash != "", Disabled: u.Disabled, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

// userInput is the body of POST /users and PATCH /users/{id}: absent
// fields are unchanged by a PATCH.
type userInput struct {
	Username      *string   `json:"username"`
	Email         *string   `json:"email"`
	EmailVerified *bool     `json:"email_verified"`
	Name          *string   `json:"name"`
	Groups        *[]string `json:"groups"`
	Password      *string   `json:"password"`
	Disabled      *bool     `json:"disabled"`
}

// decodeUser decodes and checks a user body; create requires a username.
func (s *Server) decodeUser(w http.ResponseWriter, r *http.Request, create bool) (userInput, bool) {
	raw, ok := s.readBody(w, r)
	if !ok {
		return userInput{}, false
	}
	var in userInput
	var probs []FieldProblem
	// Every field on its own, so that each wrong one is reported.
	var fields map[string]json.RawMessage
	_ = json.Unmarshal(raw, &fields)
	known := map[string]any{"username": &in.Username, "email": &in.Email, "email_verified": &in.EmailVerified,
		"name": &in.Name, "groups": &in.Groups, "password": &in.Password, "disabled": &in.Disabled}
	for k, v := range fields {
		dst, ok := known[k]
		if !ok {
			probs = append(probs, FieldProblem{Field: k, Message: "unknown field"})
			continue
		}
		if err := json.NewDecoder(bytes.NewReader(v)).Decode(dst); err != nil || string(v) == "null" {
			probs = append(probs, FieldProblem{Field: k, Message: "wrong type: " + map[string]string{
				"username": "a string", "email": "a string", "name": "a string", "password": "a string",
				"email_verified": "a boolean", "disabled": "a boolean", "groups": "an array of strings"}[k] + " is expected"})
		}
	}
	if in.Username != nil || create {
		u := ""
		if in.Username != nil {
			u = *in.Username
		}
		switch {
		case u == "" && fields["username"] == nil:
			probs = append(probs, FieldProblem{Field: "username", Message: "required"})
		case u == "":
			probs = append(probs, FieldProblem{Field: "username", Message: "must not be empty"})
		case len(u) > local.MaxUsernameLength:
			probs = append(probs, FieldProblem{Field: "username", Message: fmt.Sprintf("at most %d bytes", local.MaxUsernameLength)})
		case strings.TrimSpace(u) != u || strings.ContainsAny(u, "\t\r\n\x00"):
			probs = append(probs, FieldProblem{Field: "username", Message: "no surrounding spaces or control characters"})
		}
	}
	if in.Email != nil && *in.Email != "" {
		if a, err := mail.ParseAddress(*in.Email); err != nil || a.Address != *in.Email {
			probs = append(probs, FieldProblem{Field: "email", Message: "not an email address"})
		}
	}
	if in.Password != nil && (*in.Password == "" || len(*in.Password) > local.MaxPasswordLength) {
		probs = append(probs, FieldProblem{Field: "password", Message: fmt.Sprintf("between 1 and %d bytes", local.MaxPasswordLength)})
	}
	if in.Groups != nil {
		for i, g := range *in.Groups {
			if g == "" || strings.TrimSpace(g) != g {
				probs = append(probs, FieldProblem{Field: fmt.Sprintf("groups[%d]", i), Message: "must be a non-empty name without surrounding spaces"})
			}
		}
	}
	if len(probs) > 0 {
		sortProblems(probs)
		invalid(w, r, probs)
		return userInput{}, false
	}
	return in, true
}

func sortProblems(p []FieldProblem) {
	for i := 1; i < len(p); i++ {
		for j := i; j > 0 && p[j].Field < p[j-1].Field; j-- {
			p[j], p[j-1] = p[j-1], p[j]
		}
	}
}

// apply sets in's fields on u, hashing a new password.
func (s *Server) apply(ctx context.Context, u storage.User, in userInput) (storage.User, error) {
	if in.Username != nil {
		u.Username = *in.Username
	}
	if in.Email != nil {
		u.Email = *in.Email
	}
	if in.EmailVerified != nil {
		u.EmailVerified = *in.EmailVerified
	}
	if in.Name != nil {
		u.Name = *in.Name
	}
	if in.Groups != nil {
		u.Groups = *in.Groups
		if len(u.Groups) == 0 {
			u.Groups = nil
		}
	}
	if in.Disabled != nil {
		u.Disabled = *in.Disabled
	}
	if in.Password != nil {
		h, err := s.o.HashPassword(ctx, *in.Password)
		if err != nil {
			return u, fmt.Errorf("hash password: %w", err)
		}
		u.PasswordHash = h
	}
	return u, nil
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var list []storage.User
	if name := r.URL.Query().Get("username"); name != "" {
		u, err := s.o.Store.GetUserByUsername(ctx, name)
		switch {
		case err == nil:
			list = []storage.User{u}
		case !errors.Is(err, storage.ErrNotFound):
			s.serverError(w, r, err)
			return
		}
	} else {
		var err error
		if list, err = s.o.Store.ListUsers(ctx); err != nil {
			s.serverError(w, r, err)
			return
		}
	}
	out := make([]userView, 0, len(list))
	for _, u := range list {
		out = append(out, viewUser(u))
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out})
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	u, err := s.o.Store.GetUser(r.Context(), r.PathValue("id"))
	if err != nil {
		s.storeError(w, r, "user", err)
		return
	}
	writeJSON(w, http.StatusOK, viewUser(u))
}

func newUserID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	in, ok := s.decodeUser(w, r, true)
	if !ok {
		return
	}
	id, err := newUserID()
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	now := s.now()
	u, err := s.apply(ctx, storage.User{ID: id, CreatedAt: now, UpdatedAt: now}, in)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	actor := callerOf(ctx).actor()
	err = s.o.Store.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
		if err := tx.CreateUser(ctx, u); err != nil {
			return err
		}
		return tx.AppendEvent(ctx, storage.Event{Type: "user.created", Actor: actor, UserID: u.ID, Data: map[string]any{"username": u.Username}})
	})
	if err != nil {
		s.storeError(w, r, fmt.Sprintf("user %q", u.Username), err)
		return
	}
	w.Header().Set("Location", BasePath+"/users/"+u.ID)
	writeJSON(w, http.StatusCreated, viewUser(u))
}

// updateUser applies fn to the user in a transaction with the audit
// event; when the user ends up disabled, their sessions are ended.
func (s *Server) updateUser(w http.ResponseWriter, r *http.Request, event string, fn func(storage.User) (storage.User, error)) {
	ctx := r.Context()
	id := r.PathValue("id")
	actor := callerOf(ctx).actor()
	var saved storage.User
	err := s.o.Store.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
		err := tx.UpdateUser(ctx, id, func(old storage.User) (storage.User, error) {
			u, err := fn(old)
			if err != nil {
				return old, err
			}
			u.UpdatedAt = s.now()
			saved = u
			return u, nil
		})
		if err != nil {
			return err
		}
		return tx.AppendEvent(ctx, storage.Event{Type: event, Actor: actor, UserID: id})
	})
	if err != nil {
		s.storeError(w, r, "user "+id, err)
		return
	}
	if saved.Disabled {
		if _, err := s.o.Sessions.EndSessions(ctx, id, actor); err != nil {
			s.serverError(w, r, fmt.Errorf("end sessions of disabled user %q: %w", id, err))
			return
		}
	}
	writeJSON(w, http.StatusOK, viewUser(saved))
}

func (s *Server) patchUser(w http.ResponseWriter, r *http.Request) {
	in, ok := s.decodeUser(w, r, false)
	if !ok {
		return
	}
	// Hash outside the transaction: argon2id is slow.
	var hash string
	if in.Password != nil {
		u, err := s.apply(r.Context(), storage.User{}, userInput{Password: in.Password})
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		hash, in.Password = u.PasswordHash, nil
	}
	s.updateUser(w, r, "user.updated", func(u storage.User) (storage.User, error) {
		u, err := s.apply(r.Context(), u, in)
		if hash != "" {
			u.PasswordHash = hash
		}
		return u, err
	})
}

func (s *Server) disableUser(w http.ResponseWriter, r *http.Request) {
	s.updateUser(w, r, "user.disabled", func(u storage.User) (storage.User, error) {
		u.Disabled = true
		return u, nil
	})
}

func (s *Server) enableUser(w http.ResponseWriter, r *http.Request) {
	s.updateUser(w, r, "user.enabled", func(u storage.User) (storage.User, error) {
		u.Disabled = false
		return u, nil
	})
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	actor := callerOf(ctx).actor()
	if _, err := s.o.Store.GetUser(ctx, id); err != nil {
		s.storeError(w, r, "user "+id, err)
		return
	}
	if _, err := s.o.Sessions.EndSessions(ctx, id, actor); err != nil {
		s.serverError(w, r, fmt.Errorf("end sessions of user %q: %w", id, err))
		return
	}
	err := s.o.Store.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
		if err := tx.DeleteUser(ctx, id); err != nil {
			return err
		}
		return tx.AppendEvent(ctx, storage.Event{Type: "user.deleted", Actor: actor, UserID: id})
	})
	if err != nil {
		s.storeError(w, r, "user "+id, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) resetMFA(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	actor := callerOf(ctx).actor()
	var n int64
	err := s.o.Store.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
		u, err := tx.GetUser(ctx, id)
		if err != nil {
			return err
		}
		if n, err = tx.DeleteUserMFACredentials(ctx, id); err != nil {
			return err
		}
		return tx.AppendEvent(ctx, storage.Event{Type: "mfa.reset", Actor: actor, UserID: id,
			Data: map[string]any{"username": u.Username, "removed": n}})
	})
	if err != nil {
		s.storeError(w, r, "user "+id, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"removed": n})
}

type identityView struct {
	ConnectorID string    `json:"connector_id"`
	Subject     string    `json:"subject"`
	Email       string    `json:"email"`
	CreatedAt   time.Time `json:"created_at"`
	LastLoginAt time.Time `json:"last_login_at,omitzero"`
}

func (s *Server) listIdentities(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	if _, err := s.o.Store.GetUser(ctx, id); err != nil {
		s.storeError(w, r, "user "+id, err)
		return
	}
	list, err := s.o.Store.ListUserIdentities(ctx, id)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	out := make([]identityView, 0, len(list))
	for _, i := range list {
		out = append(out, identityView{ConnectorID: i.ConnectorID, Subject: i.Subject, Email: i.Email, CreatedAt: i.CreatedAt, LastLoginAt: i.LastLoginAt})
	}
	writeJSON(w, http.StatusOK, map[string]any{"identities": out})
}

func (s *Server) unlinkIdentity(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, conn, sub := r.PathValue("id"), r.PathValue("connector"), r.PathValue("subject")
	actor := callerOf(ctx).actor()
	err := s.o.Store.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
		i, err := tx.GetIdentity(ctx, conn, sub)
		if err != nil {
			return err
		}
		if i.UserID != id {
			return storage.ErrNotFound
		}
		if err := tx.DeleteIdentity(ctx, conn, sub); err != nil {
			return err
		}
		return tx.AppendEvent(ctx, storage.Event{Type: "identity.unlinked", Actor: actor, UserID: id, ConnectorID: conn})
	})
	if err != nil {
		s.storeError(w, r, "identity "+conn+"/"+sub+" of user "+id, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// SessionView is an SSO session as the API and the CLI show it.
type SessionView struct {
	SID            string    `json:"sid"`
	CreatedAt      time.Time `json:"created_at"`
	AuthTime       time.Time `json:"auth_time"`
	ConnectorID    string    `json:"connector_id"`
	AMR            []string  `json:"amr"`
	Clients        []string  `json:"clients"`
	IdleExpiry     time.Time `json:"idle_expiry"`
	AbsoluteExpiry time.Time `json:"absolute_expiry"`
	// IP and UserAgent are the browser's at the last sign-in (none for
	// sessions from before they were recorded).
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
}

// ViewSession describes a session (lists are never null).
func ViewSession(x session.Session) SessionView {
	clients, amr := x.Clients, x.AMR
	if clients == nil {
		clients = []string{}
	}
	if amr == nil {
		amr = []string{}
	}
	return SessionView{SID: x.SID, CreatedAt: x.CreatedAt, AuthTime: x.AuthTime, ConnectorID: x.ConnectorID,
		AMR: amr, Clients: clients, IdleExpiry: x.IdleExpiry, AbsoluteExpiry: x.AbsoluteExpiry, IP: x.Device.IP, UserAgent: x.Device.UserAgent}
}

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	if _, err := s.o.Store.GetUser(ctx, id); err != nil {
		s.storeError(w, r, "user "+id, err)
		return
	}
	list, err := s.o.Sessions.ListByUser(ctx, id)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	out := make([]SessionView, 0, len(list))
	for _, x := range list {
		out = append(out, ViewSession(x))
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

func (s *Server) revokeSessions(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	if _, err := s.o.Store.GetUser(ctx, id); err != nil {
		s.storeError(w, r, "user "+id, err)
		return
	}
	n, err := s.o.Sessions.EndSessions(ctx, id, callerOf(ctx).actor())
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ended": n})
}

func (s *Server) revokeSession(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, sid := r.PathValue("id"), r.PathValue("sid")
	x, err := s.o.Sessions.GetBySID(ctx, sid)
	if errors.Is(err, session.ErrNoSession) || (err == nil && x.UserID != id) {
		writeProblem(w, r, newProblem(http.StatusNotFound, "not-found", "user "+id+" has no session "+sid))
		return
	}
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	if _, err := s.o.Sessions.EndSession(ctx, sid, callerOf(ctx).actor()); err != nil {
		s.unavailable(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
