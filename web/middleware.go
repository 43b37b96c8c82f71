package web

import (
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/latchkeyid/latchkey/internal/logging"
)

// DefaultCSP is sent with every response; HTML pages that need more set
// their own Content-Security-Policy, which replaces it. frame-ancestors
// 'none' stops clickjacking of anything we serve.
const DefaultCSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"

// statusWriter remembers the status and whether headers went out.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// newRequestID returns 16 random bytes as hex.
func newRequestID(r io.Reader) string {
	b := make([]byte, 16)
	if _, err := io.ReadFull(r, b); err != nil {
		return fmt.Sprintf("t%x", time.Now().UnixNano())
	}
	return hex.EncodeToString(b)
}

// chain wraps h with the middleware every route gets, outermost first:
// request id, security headers, panic recovery, body limit, access log.
func (s *Server) chain(h http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := s.clock.Now()
		id := newRequestID(s.rand)
		ctx := logging.WithRequestID(r.Context(), id)
		r = r.WithContext(ctx)

		hdr := rw.Header()
		hdr.Set("X-Request-Id", id)
		hdr.Set("X-Content-Type-Options", "nosniff")
		hdr.Set("Referrer-Policy", "no-referrer")
		hdr.Set("Content-Security-Policy", DefaultCSP)
		if r.TLS != nil || s.https {
			hdr.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}

		w := &statusWriter{ResponseWriter: rw}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, s.maxBody)
		}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.ErrorContext(ctx, "panic serving request",
					slog.String("method", r.Method), slog.String("path", r.URL.Path),
					slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
				if w.status == 0 {
					writeServerError(w, id)
				}
			}
			s.log.InfoContext(ctx, "request",
				slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.Int("status", w.status), slog.Int64("bytes", w.bytes),
				slog.Duration("duration", s.clock.Now().Sub(start)))
		}()
		h.ServeHTTP(w, r)
		if w.status == 0 {
			w.status = http.StatusOK
		}
	})
}

// writeServerError answers 500 with the request id and nothing else.
func writeServerError(w http.ResponseWriter, requestID string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprintf(w, `{"error":"server_error","error_description":"internal error; request id %s"}`, requestID)
}
