package web

import (
	"net/http"
	"net/url"
	"strings"
)

// An issuer with a path (https://id.example.com/auth) puts every endpoint
// and page under that path. A reverse proxy may pass requests on with the
// path or strip it; both work: withBase strips it when present, and
// rewrites root-relative redirects (Location: /login?req=…) to carry it.
// The pages' own links carry it through the template function base and
// the language and theme URLs built here (docs/configuration.md#issuer).

// issuerBase is the path of issuer without its trailing slash ("" for
// an issuer without a path).
func issuerBase(issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(u.EscapedPath(), "/")
}

// withBase serves h below s.base (nothing to do without one).
func (s *Server) withBase(h http.Handler) http.Handler {
	if s.base == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rest, ok := strings.CutPrefix(r.URL.Path, s.base); ok && (rest == "" || rest[0] == '/') {
			r2 := new(http.Request)
			*r2 = *r
			u := *r.URL
			u.Path = rest
			if u.Path == "" {
				u.Path = "/"
			}
			u.RawPath = ""
			r2.URL = &u
			r = r2
		}
		h.ServeHTTP(&baseWriter{ResponseWriter: w, base: s.base}, r)
	})
}

// baseWriter puts the base path in front of a root-relative Location.
type baseWriter struct {
	http.ResponseWriter
	base  string
	wrote bool
}

func (w *baseWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		if loc := w.Header().Get("Location"); strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "//") && !strings.HasPrefix(loc, w.base+"/") {
			w.Header().Set("Location", w.base+loc)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *baseWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *baseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// basePath puts the base path in front of a root-relative path built for
// a page ("" stays "").
func (s *Server) basePath(p string) string {
	if p == "" || !strings.HasPrefix(p, "/") {
		return p
	}
	return s.base + p
}
