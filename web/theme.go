package web

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strconv"
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
	page  theme
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
		url := "/theme/" + f.name
		switch {
		case f.use == "css":
			t.page.css = url
		case f.use == "logo" && t.page.logo == "":
			t.page.logo = url
		case f.use == "favicon" && t.page.favicon == "":
			t.page.favicon = url
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

// themeFor returns the theme of a page: the configured one, else the
// default (no extra files).
func (s *Server) themeFor(*http.Request, any) theme {
	if s.theme == nil {
		return theme{}
	}
	return s.theme.page
}

// serveTheme serves one file of the theme. An SVG opened directly runs
// no script: the response has its own sandboxing CSP.
func (s *Server) serveTheme(w http.ResponseWriter, r *http.Request) {
	f, ok := s.theme.files[r.PathValue("name")]
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
