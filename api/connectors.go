package api

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/latchkeyid/latchkey/storage"
)

// SealedPlaceholder stands for a stored secret in a connector's config as
// the API shows it; sent back unchanged in a PUT, it keeps that secret.
const SealedPlaceholder = "(sealed)"

// connectorView hides the secrets of a connector's config.
func (s *Server) connectorView(c storage.Connector) storage.Connector {
	var doc map[string]json.RawMessage
	if len(c.Config) == 0 || json.Unmarshal(c.Config, &doc) != nil {
		c.Config = json.RawMessage(`{}`)
		return c
	}
	for _, k := range s.o.Connectors.SecretKeys() {
		if _, ok := doc[k]; ok {
			doc[k], _ = json.Marshal(SealedPlaceholder)
		}
	}
	c.Config, _ = json.Marshal(doc)
	return c
}

// keepSecrets puts old's stored secret back wherever c's config holds the
// placeholder.
func (s *Server) keepSecrets(c, old storage.Connector) storage.Connector {
	var doc, prev map[string]json.RawMessage
	if json.Unmarshal(c.Config, &doc) != nil || json.Unmarshal(old.Config, &prev) != nil {
		return c
	}
	placeholder, _ := json.Marshal(SealedPlaceholder)
	changed := false
	for _, k := range s.o.Connectors.SecretKeys() {
		if v, ok := doc[k]; ok && string(v) == string(placeholder) {
			if p, ok := prev[k]; ok {
				doc[k] = p
				changed = true
			}
		}
	}
	if changed {
		c.Config, _ = json.Marshal(doc)
	}
	return c
}

func (s *Server) parseConnectorBody(w http.ResponseWriter, r *http.Request, pathID string) (storage.Connector, bool) {
	raw, ok := s.readBody(w, r)
	if !ok {
		return storage.Connector{}, false
	}
	var probs []FieldProblem
	if pathID != "" {
		var doc map[string]any
		_ = json.Unmarshal(raw, &doc)
		if id, ok := doc["id"]; ok && id != pathID {
			probs = append(probs, FieldProblem{Field: "id", Message: "must equal the id in the path"})
		}
		doc["id"] = pathID
		raw, _ = json.Marshal(doc)
	}
	c, more := s.o.Connectors.ParseConnector(raw)
	probs = append(probs, more...)
	if len(probs) > 0 {
		invalid(w, r, probs)
		return storage.Connector{}, false
	}
	if s.o.Connectors.InConfigFile(c.ID) {
		writeProblem(w, r, newProblem(http.StatusConflict, "read-only", "connector "+c.ID+" is managed by the config file: change it there"))
		return storage.Connector{}, false
	}
	c.ConfigManaged = false
	return c, true
}

func (s *Server) listConnectors(w http.ResponseWriter, r *http.Request) {
	list, err := s.o.Store.ListConnectors(r.Context())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	out := make([]storage.Connector, 0, len(list))
	for _, c := range list {
		out = append(out, s.connectorView(c))
	}
	writeJSON(w, http.StatusOK, map[string]any{"connectors": out})
}

func (s *Server) getConnector(w http.ResponseWriter, r *http.Request) {
	c, err := s.o.Store.GetConnector(r.Context(), r.PathValue("id"))
	if err != nil {
		s.storeError(w, r, "connector", err)
		return
	}
	writeJSON(w, http.StatusOK, s.connectorView(c))
}

func (s *Server) createConnector(w http.ResponseWriter, r *http.Request) {
	c, ok := s.parseConnectorBody(w, r, "")
	if !ok {
		return
	}
	sealed, err := s.o.Connectors.Seal(c)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	now := s.now()
	sealed.CreatedAt, sealed.UpdatedAt = now, now
	actor := callerOf(r.Context()).actor()
	err = s.o.Store.Tx(r.Context(), func(ctx context.Context, tx storage.Durable) error {
		if err := tx.CreateConnector(ctx, sealed); err != nil {
			return err
		}
		return tx.AppendEvent(ctx, storage.Event{Type: "connector.created", Actor: actor, ConnectorID: c.ID})
	})
	if err != nil {
		s.storeError(w, r, "connector "+c.ID, err)
		return
	}
	w.Header().Set("Location", BasePath+"/connectors/"+c.ID)
	writeJSON(w, http.StatusCreated, s.connectorView(sealed))
}

func (s *Server) replaceConnector(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c, ok := s.parseConnectorBody(w, r, id)
	if !ok {
		return
	}
	s.updateConnector(w, r, id, "connector.updated", func(old storage.Connector) (storage.Connector, error) {
		next, err := s.o.Connectors.Seal(s.keepSecrets(c, old))
		next.Disabled = old.Disabled
		return next, err
	})
}

// updateConnector applies fn to a connector that the config file does not
// manage, with UpdatedAt and the audit event, and answers the result.
func (s *Server) updateConnector(w http.ResponseWriter, r *http.Request, id, event string, fn func(storage.Connector) (storage.Connector, error)) {
	actor := callerOf(r.Context()).actor()
	var saved storage.Connector
	err := s.o.Store.Tx(r.Context(), func(ctx context.Context, tx storage.Durable) error {
		err := tx.UpdateConnector(ctx, id, func(old storage.Connector) (storage.Connector, error) {
			if old.ConfigManaged {
				return old, storage.ErrReadOnly
			}
			next, err := fn(old)
			if err != nil {
				return old, err
			}
			next.CreatedAt, next.UpdatedAt = old.CreatedAt, s.now()
			saved = next
			return next, nil
		})
		if err != nil {
			return err
		}
		return tx.AppendEvent(ctx, storage.Event{Type: event, Actor: actor, ConnectorID: id})
	})
	if err != nil {
		s.storeError(w, r, "connector "+id, err)
		return
	}
	writeJSON(w, http.StatusOK, s.connectorView(saved))
}

func (s *Server) deleteConnector(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	actor := callerOf(r.Context()).actor()
	err := s.o.Store.Tx(r.Context(), func(ctx context.Context, tx storage.Durable) error {
		c, err := tx.GetConnector(ctx, id)
		if err != nil {
			return err
		}
		if c.ConfigManaged {
			return storage.ErrReadOnly
		}
		if err := tx.DeleteConnector(ctx, id); err != nil {
			return err
		}
		return tx.AppendEvent(ctx, storage.Event{Type: "connector.deleted", Actor: actor, ConnectorID: id})
	})
	if err != nil {
		s.storeError(w, r, "connector "+id, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// setConnectorDisabled takes a connector out of the login (or back in)
// without deleting it; the replicas follow at their next poll.
func (s *Server) setConnectorDisabled(disabled bool) http.HandlerFunc {
	event := "connector.enabled"
	if disabled {
		event = "connector.disabled"
	}
	return func(w http.ResponseWriter, r *http.Request) {
		s.updateConnector(w, r, r.PathValue("id"), event, func(c storage.Connector) (storage.Connector, error) {
			c.Disabled = disabled
			return c, nil
		})
	}
}

// testConnector opens the stored connector as the broker would and says
// whether that worked; a failure is an answer (200, ok false), not an
// error of the API.
func (s *Server) testConnector(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c, err := s.o.Store.GetConnector(r.Context(), id)
	if err != nil {
		s.storeError(w, r, "connector "+id, err)
		return
	}
	res := map[string]any{"ok": true}
	if err := s.o.Connectors.Test(r.Context(), c); err != nil {
		res = map[string]any{"ok": false, "error": err.Error()}
	}
	writeJSON(w, http.StatusOK, res)
}
