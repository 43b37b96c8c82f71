package web

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/broker/oauth2"
)

// A store outage is not a bug: when a handler is about to answer 5xx and
// a store does not answer its ping, the client gets 503 with Retry-After
// and a body saying the service is temporarily unavailable (never a
// half-finished sign-in). The verdict is cached briefly so an outage does
// not multiply pings.
const (
	outageCacheFor   = time.Second
	outagePingBudget = time.Second
	outageRetryAfter = "5"
)

type outageState struct {
	mu      sync.Mutex
	checked time.Time
	down    []string
}

// storesDown pings every readiness check (cached for outageCacheFor) and
// returns the names that failed.
func (s *Server) storesDown(ctx context.Context) []string {
	s.outage.mu.Lock()
	defer s.outage.mu.Unlock()
	now := s.clock.Now()
	if !s.outage.checked.IsZero() && now.Sub(s.outage.checked) < outageCacheFor && now.After(s.outage.checked) {
		return s.outage.down
	}
	var down []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range s.checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(outagePingBudget, s.checkTimeout))
			defer cancel()
			if err := c.Ping(pctx); err != nil {
				mu.Lock()
				down = append(down, c.Name)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	s.outage.checked, s.outage.down = now, down
	return down
}

// unavailablePage answers 503 for a browser when a store is down; it
// reports whether it did.
func (s *Server) unavailablePage(w http.ResponseWriter, r *http.Request, status int, cause error) bool {
	if status < 500 {
		return false
	}
	down := s.storesDown(r.Context())
	if len(down) == 0 {
		return false
	}
	s.log.WarnContext(r.Context(), "store unavailable", slog.Any("stores", down), slog.Any("cause", cause))
	w.Header().Set("Retry-After", outageRetryAfter)
	s.render(w, r, http.StatusServiceUnavailable, s.pages.errorPage, pageCSP, map[string]any{
		"Title":   "Temporarily unavailable",
		"Message": "Sign-in is temporarily unavailable. Nothing was changed; please try again in a moment.",
	})
	return true
}

// unavailableError turns a 5xx protocol error into 503
// temporarily_unavailable when a store is down.
func (s *Server) unavailableError(r *http.Request, e *oauth2.Error) (*oauth2.Error, bool) {
	if e.Status < 500 || e.Code == oauth2.CodeTemporarilyUnavailable {
		return e, false
	}
	down := s.storesDown(r.Context())
	if len(down) == 0 {
		return e, false
	}
	s.log.WarnContext(r.Context(), "store unavailable", slog.Any("stores", down), slog.Any("cause", e.Cause))
	return oauth2.ErrTemporarilyUnavailable("the service is temporarily unavailable; retry later", e.Cause), true
}

// redirectIsServerError: an authorization response carrying server_error.
func redirectIsServerError(res broker.Result) bool {
	return res.Redirect != nil && res.Redirect.Params.Get("error") == oauth2.CodeServerError
}
