package api

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/latchkeyid/latchkey/broker/keys"
	"github.com/latchkeyid/latchkey/storage"
)

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) {
	list, err := s.o.Keys.List(r.Context())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if list == nil {
		list = []keys.KeyInfo{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": list})
}

func (s *Server) rotateKeys(w http.ResponseWriter, r *http.Request) {
	rotated, err := s.o.Keys.Rotate(r.Context(), true)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if !rotated {
		writeProblem(w, r, newProblem(http.StatusConflict, "conflict", "another replica rotated at the same moment; list the keys"))
		return
	}
	list, err := s.o.Keys.List(r.Context())
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": list})
}

// Audit pages: limit defaults to 100, at most 1000.
const (
	defaultPage = 100
	maxPage     = 1000
)

// listEvents answers a page of audit events, oldest first, with the
// cursor of the next page (absent on the last).
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := storage.EventFilter{Type: q.Get("type"), UserID: q.Get("user_id"), After: q.Get("cursor"), Limit: defaultPage}
	var probs []FieldProblem
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			probs = append(probs, FieldProblem{Field: "since", Message: "want an RFC 3339 time (2026-01-02T15:04:05Z)"})
		}
		f.Since = t
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPage {
			probs = append(probs, FieldProblem{Field: "limit", Message: "want a whole number from 1 to " + strconv.Itoa(maxPage)})
		}
		f.Limit = n
	}
	if len(probs) > 0 {
		p := newProblem(http.StatusBadRequest, "invalid-request", "invalid query parameters")
		p.Errors = probs
		writeProblem(w, r, p)
		return
	}
	// One more than asked says whether there is a next page.
	want := f.Limit
	f.Limit++
	events, err := s.o.Store.ListEvents(r.Context(), f)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	page := map[string]any{}
	if len(events) > want {
		events = events[:want]
		next := url.Values{}
		for k, v := range q {
			next[k] = v
		}
		next.Set("cursor", events[len(events)-1].ID)
		page["next_cursor"] = events[len(events)-1].ID
		page["next"] = BasePath + "/audit/events?" + next.Encode()
	}
	if events == nil {
		events = []storage.Event{}
	}
	page["events"] = events
	writeJSON(w, http.StatusOK, page)
}
