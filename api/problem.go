package api

import (
	"encoding/json"
	"log/slog"
	"net/http"
)

// FieldProblem is one thing wrong with a field of a request body. Field
// is its key path in the body ("redirect_uris[1]", "config.issuer").
type FieldProblem struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Problem is an RFC 9457 problem details document.
type Problem struct {
	Type     string         `json:"type"`
	Title    string         `json:"title"`
	Status   int            `json:"status"`
	Detail   string         `json:"detail,omitempty"`
	Instance string         `json:"instance,omitempty"`
	Errors   []FieldProblem `json:"errors,omitempty"`
}

const problemBase = "https://latchkey.dev/problems/"

// problem types (the last segment of Type) and their titles.
var problemTitles = map[string]string{
	"unauthorized":     "Unauthorized",
	"forbidden":        "Forbidden",
	"not-found":        "Not Found",
	"conflict":         "Conflict",
	"read-only":        "Managed by the config file",
	"invalid-request":  "Invalid request",
	"validation":       "Validation failed",
	"rate-limited":     "Too Many Requests",
	"unavailable":      "Service Unavailable",
	"server-error":     "Internal Server Error",
	"method":           "Method Not Allowed",
	"unsupported-type": "Unsupported Media Type",
	"too-large":        "Content Too Large",
}

func newProblem(status int, kind, detail string) Problem {
	return Problem{Type: problemBase + kind, Title: problemTitles[kind], Status: status, Detail: detail}
}

// writeProblem sends p as application/problem+json.
func writeProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	p.Instance = r.URL.Path
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// writeJSON sends v as application/json with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// serverError logs err with the request's route and answers 500 without
// any detail of it.
func (s *Server) serverError(w http.ResponseWriter, r *http.Request, err error) {
	s.log.ErrorContext(r.Context(), "admin api", slog.String("route", r.Pattern), slog.Any("error", err))
	writeProblem(w, r, newProblem(http.StatusInternalServerError, "server-error", "the request failed; the server log has the cause"))
}
