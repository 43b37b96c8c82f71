package web

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// themeFiles are the files a theme folder may hold, with their types.
// theme.css is loaded after the default stylesheet, so it can override
// its custom properties (--accent, --fg, --bg, --card, --err) or any rule.
var themeFiles = []struct{ name, ctype, use string }{
	{"theme.css", "text/css; charset=utf-8", "css"},
	{"logo.svg", "image/svg+xml", "logo"},
	{"logo.png", "image/png", "logo"},
	{"favicon.svg", "image/svg+xml", "favicon"},
	{"favicon.png", "image/png", "favicon"},
	{"favicon.ico", "image/x-icon", "favicon"},
}

// maxThemeFile bounds each theme file.
const maxThemeFile = 1 << 20

// Theme is a loaded theme folder (config ui.theme): its stylesheet, logo
// and favicon, served under /theme/.
type Theme struct {
	files map[string]themeFile
	names theme // file names; urls makes them URLs
	// templates is the folder when its templates/*.html replace ours
	// (same names, parsed at start); nil without any.
	templates fs.FS
}

type themeFile struct {
	ctype string
	data  []byte
}

// theme is what a page shows of the theme: URLs of its stylesheet,
// favicon and logo (all empty for the default theme).
type theme struct{ css, favicon, logo string }

// LoadTheme reads a theme folder. Every file is optional, but a folder
// with none of them is an error (a wrong path, most likely). Files in
// templates/ must be named like one of ours; they are parsed by New.
func LoadTheme(fsys fs.FS) (*Theme, error) {
	t := &Theme{files: map[string]themeFile{}}
	for _, f := range themeFiles {
		data, err := fs.ReadFile(fsys, f.name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("theme: read %s: %w", f.name, err)
		}
		if len(data) > maxThemeFile {
			return nil, fmt.Errorf("theme: %s is larger than %d bytes", f.name, maxThemeFile)
		}
		t.files[f.name] = themeFile{f.ctype, data}
		switch {
		case f.use == "css":
			t.names.css = f.name
		case f.use == "logo" && t.names.logo == "":
			t.names.logo = f.name
		case f.use == "favicon" && t.names.favicon == "":
			t.names.favicon = f.name
		}
	}
	overrides, err := fs.Glob(fsys, "templates/*")
	if err != nil {
		return nil, fmt.Errorf("theme: list templates: %w", err)
	}
	if len(overrides) > 0 {
		for _, name := range overrides {
			if _, err := fs.Stat(templateFS, name); err != nil {
				return nil, fmt.Errorf("theme: %s replaces no template of ours (web/templates)", name)
			}
		}
		t.templates = fsys
	}
	if len(t.files) == 0 && t.templates == nil {
		return nil, errors.New("theme: the folder has none of theme.css, logo.svg, logo.png, favicon.svg, favicon.png, favicon.ico, templates/")
	}
	return t, nil
}

// overlayFS opens a file from top if it is there, else from base.
type overlayFS struct{ top, base fs.FS }

func (o overlayFS) Open(name string) (fs.File, error) {
	if f, err := o.top.Open(name); err == nil {
		return f, nil
	}
	return o.base.Open(name)
}

// urls are the page's URLs of the theme's files under base ("/theme/").
func (t *Theme) urls(base string) theme {
	u := func(name string) string {
		if name == "" {
			return ""
		}
		return base + name
	}
	return theme{css: u(t.names.css), favicon: u(t.names.favicon), logo: u(t.names.logo)}
}

// clientThemes are the themes of some clients (Options.ClientThemes),
// served under /theme/c<n>/ in the order of their client ids.
type clientThemes struct {
	byClient map[string]int // client id -> index
	themes   []*Theme
}

func newClientThemes(m map[string]*Theme) (clientThemes, error) {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	ct := clientThemes{byClient: map[string]int{}}
	for i, id := range ids {
		if m[id].templates != nil {
			return ct, fmt.Errorf("theme of client %q: template overrides are for the server's theme only", id)
		}
		ct.byClient[id] = i
		ct.themes = append(ct.themes, m[id])
	}
	return ct, nil
}

// themeFor returns the theme of a page of clientID's request: the
// client's own, else the server's, else the default (no extra files).
func (s *Server) themeFor(clientID string) theme {
	if i, ok := s.clientThemes.byClient[clientID]; ok && clientID != "" {
		return s.clientThemes.themes[i].urls("/theme/c" + strconv.Itoa(i) + "/")
	}
	if s.theme == nil {
		return theme{}
	}
	return s.theme.urls("/theme/")
}

// serveTheme serves one file of the server's theme; serveClientTheme
// one of a client's.
func (s *Server) serveTheme(w http.ResponseWriter, r *http.Request) {
	if s.theme == nil {
		http.NotFound(w, r)
		return
	}
	serveThemeFile(w, r, s.theme)
}

func (s *Server) serveClientTheme(w http.ResponseWriter, r *http.Request) {
	i, err := strconv.Atoi(strings.TrimPrefix(r.PathValue("client"), "c"))
	if err != nil || i < 0 || i >= len(s.clientThemes.themes) || !strings.HasPrefix(r.PathValue("client"), "c") {
		http.NotFound(w, r)
		return
	}
	serveThemeFile(w, r, s.clientThemes.themes[i])
}

// serveThemeFile serves one file of t. An SVG opened directly runs no
// script: the response has its own sandboxing CSP.
func serveThemeFile(w http.ResponseWriter, r *http.Request, t *Theme) {
	f, ok := t.files[r.PathValue("name")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("Content-Length", strconv.Itoa(len(f.data)))
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "public, max-age=3600")
	w.Write(f.data)
}
