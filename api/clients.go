package api

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/latchkeyid/latchkey/storage"
)

// clientView is a client as the API shows it: never its secret hash.
func clientView(c storage.Client) storage.Client {
	c.SecretHash = ""
	return c
}

// clientCreated is the answer that carries a new secret, shown once.
type clientCreated struct {
	Client       storage.Client `json:"client"`
	ClientSecret string         `json:"client_secret,omitempty"`
}

func newClientSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// usesSecret reports whether a registration document describes a client
// that authenticates with a secret.
func usesSecret(doc map[string]any) bool {
	public, _ := doc["public"].(bool)
	method, _ := doc["token_endpoint_auth_method"].(string)
	return !public && method != "none" && method != "private_key_jwt"
}

// parseClientBody validates a client body. It refuses client_secret (the
// server generates secrets) and supplies one for the validation when the
// client needs it; the returned secret is that one.
func (s *Server) parseClientBody(w http.ResponseWriter, r *http.Request, pathID string) (storage.Client, string, bool) {
	raw, ok := s.readBody(w, r)
	if !ok {
		return storage.Client{}, "", false
	}
	var doc map[string]any
	_ = json.Unmarshal(raw, &doc) // readBody checked it is an object
	var probs []FieldProblem
	if _, ok := doc["client_secret"]; ok {
		probs = append(probs, FieldProblem{Field: "client_secret", Message: "not accepted: the server generates secrets (POST /clients/{id}/secret rotates it)"})
		delete(doc, "client_secret")
	}
	if pathID != "" {
		if id, ok := doc["client_id"]; ok && id != pathID {
			probs = append(probs, FieldProblem{Field: "client_id", Message: "must equal the client_id in the path"})
		}
		doc["client_id"] = pathID
	}
	secret := ""
	if usesSecret(doc) {
		var err error
		if secret, err = newClientSecret(); err != nil {
			s.serverError(w, r, err)
			return storage.Client{}, "", false
		}
		doc["client_secret"] = secret
	}
	b, err := json.Marshal(doc)
	if err != nil {
		s.serverError(w, r, err)
		return storage.Client{}, "", false
	}
	cl, more := s.o.Clients.ParseClient(b)
	probs = append(probs, more...)
	if len(probs) > 0 {
		invalid(w, r, probs)
		return storage.Client{}, "", false
	}
	cl.ConfigManaged = false
	return cl, secret, true
}

func (s *Server) listClients(w http.ResponseWriter, r *http.Request) {
	list, err := s.o.Store.ListClients(r.Context())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	out := make([]storage.Client, 0, len(list))
	for _, c := range list {
		out = append(out, clientView(c))
	}
	writeJSON(w, http.StatusOK, map[string]any{"clients": out})
}

func (s *Server) getClient(w http.ResponseWriter, r *http.Request) {
	c, err := s.o.Store.GetClient(r.Context(), r.PathValue("id"))
	if err != nil {
		s.storeError(w, r, "client", err)
		return
	}
	writeJSON(w, http.StatusOK, clientView(c))
}

func (s *Server) createClient(w http.ResponseWriter, r *http.Request) {
	cl, secret, ok := s.parseClientBody(w, r, "")
	if !ok {
		return
	}
	now := s.now()
	cl.CreatedAt, cl.UpdatedAt = now, now
	actor := callerOf(r.Context()).actor()
	err := s.o.Store.Tx(r.Context(), func(ctx context.Context, tx storage.Durable) error {
		if err := tx.CreateClient(ctx, cl); err != nil {
			return err
		}
		return tx.AppendEvent(ctx, storage.Event{Type: "client.created", Actor: actor, ClientID: cl.ID})
	})
	if err != nil {
		s.storeError(w, r, "client "+cl.ID, err)
		return
	}
	w.Header().Set("Location", BasePath+"/clients/"+cl.ID)
	writeJSON(w, http.StatusCreated, clientCreated{Client: clientView(cl), ClientSecret: secret})
}

func (s *Server) replaceClient(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	cl, secret, ok := s.parseClientBody(w, r, id)
	if !ok {
		return
	}
	actor := callerOf(r.Context()).actor()
	newSecret := ""
	err := s.o.Store.Tx(r.Context(), func(ctx context.Context, tx storage.Durable) error {
		err := tx.UpdateClient(ctx, id, func(old storage.Client) (storage.Client, error) {
			if old.ConfigManaged {
				return old, storage.ErrReadOnly
			}
			next := cl
			next.CreatedAt, next.UpdatedAt = old.CreatedAt, s.now()
			next.Disabled = old.Disabled
			newSecret = ""
			switch {
			case next.SecretHash == "":
			case old.SecretHash != "":
				next.SecretHash = old.SecretHash // the secret stays
			default:
				newSecret = secret // it had none: the new one is shown once
			}
			cl = next
			return next, nil
		})
		if err != nil {
			return err
		}
		return tx.AppendEvent(ctx, storage.Event{Type: "client.updated", Actor: actor, ClientID: id})
	})
	if err != nil {
		s.storeError(w, r, "client "+id, err)
		return
	}
	writeJSON(w, http.StatusOK, clientCreated{Client: clientView(cl), ClientSecret: newSecret})
}

func (s *Server) deleteClient(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	actor := callerOf(r.Context()).actor()
	err := s.o.Store.Tx(r.Context(), func(ctx context.Context, tx storage.Durable) error {
		c, err := tx.GetClient(ctx, id)
		if err != nil {
			return err
		}
		if c.ConfigManaged {
			return storage.ErrReadOnly
		}
		if err := tx.DeleteClient(ctx, id); err != nil {
			return err
		}
		return tx.AppendEvent(ctx, storage.Event{Type: "client.deleted", Actor: actor, ClientID: id})
	})
	if err != nil {
		s.storeError(w, r, "client "+id, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

var errNoSecret = errors.New("the client does not use a secret")

func (s *Server) rotateClientSecret(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	secret, err := newClientSecret()
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	actor := callerOf(r.Context()).actor()
	var cl storage.Client
	err = s.o.Store.Tx(r.Context(), func(ctx context.Context, tx storage.Durable) error {
		err := tx.UpdateClient(ctx, id, func(old storage.Client) (storage.Client, error) {
			if old.ConfigManaged {
				return old, storage.ErrReadOnly
			}
			if old.Public || old.TokenEndpointAuthMethod == "none" || old.TokenEndpointAuthMethod == "private_key_jwt" {
				return old, errNoSecret
			}
			old.SecretHash, old.UpdatedAt = HashKey(secret), s.now()
			cl = old
			return old, nil
		})
		if err != nil {
			return err
		}
		return tx.AppendEvent(ctx, storage.Event{Type: "client.secret.rotated", Actor: actor, ClientID: id})
	})
	if errors.Is(err, errNoSecret) {
		writeProblem(w, r, newProblem(http.StatusConflict, "conflict", "client "+id+" does not authenticate with a secret"))
		return
	}
	if err != nil {
		s.storeError(w, r, "client "+id, err)
		return
	}
	writeJSON(w, http.StatusOK, clientCreated{Client: clientView(cl), ClientSecret: secret})
}
