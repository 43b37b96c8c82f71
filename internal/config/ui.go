package config

import (
	"os"
	"path/filepath"
	"strconv"
)

// UI configures the hosted pages (docs/pages.md).
type UI struct {
	// Theme is a theme folder: theme.css (custom properties or rules
	// loaded after the default stylesheet), logo.svg or logo.png,
	// favicon.svg, favicon.png or favicon.ico, templates/*.html replacing
	// ours (web/templates) by name. Empty: the default theme.
	// A relative path is relative to the config file.
	Theme string `yaml:"theme" json:"theme"`
}

// themeFiles are the files a theme folder may hold (web.LoadTheme).
var themeFiles = []string{"theme.css", "logo.svg", "logo.png", "favicon.svg", "favicon.png", "favicon.ico"}

func (c *checker) ui(u *UI) {
	if u.Theme == "" {
		return
	}
	info, err := os.Stat(u.Theme)
	switch {
	case err != nil:
		c.add("ui.theme", "cannot read folder %s: %v", strconv.Quote(u.Theme), unwrapPathError(err))
		return
	case !info.IsDir():
		c.add("ui.theme", "%s is a file, not a folder", strconv.Quote(u.Theme))
		return
	}
	found := false
	for _, name := range themeFiles {
		fi, err := os.Stat(filepath.Join(u.Theme, name))
		if err != nil {
			continue
		}
		found = true
		if !fi.Mode().IsRegular() {
			c.add("ui.theme", "%s in %s is not a regular file", name, strconv.Quote(u.Theme))
		} else if fi.Size() > 1<<20 {
			c.add("ui.theme", "%s in %s is larger than 1 MiB", name, strconv.Quote(u.Theme))
		}
	}
	if fi, err := os.Stat(filepath.Join(u.Theme, "templates")); err == nil && fi.IsDir() {
		found = true
	}
	if !found {
		c.add("ui.theme", "folder %s has none of theme.css, logo.svg, logo.png, favicon.svg, favicon.png, favicon.ico, templates/", strconv.Quote(u.Theme))
	}
}
