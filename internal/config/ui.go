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
	// Clients give some clients a theme of their own, used on the pages
	// of their sign-in requests.
	Clients []ClientTheme `yaml:"clients" json:"clients"`
}

// ClientTheme is the theme folder of one client.
type ClientTheme struct {
	ClientID string `yaml:"client_id" json:"client_id"`
	Theme    string `yaml:"theme" json:"theme"`
}

// themeFiles are the files a theme folder may hold (web.LoadTheme).
var themeFiles = []string{"theme.css", "logo.svg", "logo.png", "favicon.svg", "favicon.png", "favicon.ico"}

func (c *checker) ui(u *UI) {
	if u.Theme != "" {
		c.themeFolder("ui.theme", u.Theme)
	}
	seen := map[string]int{}
	for i, ct := range u.Clients {
		p := "ui.clients[" + strconv.Itoa(i) + "]"
		if ct.ClientID == "" {
			c.add(p+".client_id", "must not be empty")
		} else if j, dup := seen[ct.ClientID]; dup {
			c.add(p+".client_id", "%s is already used by ui.clients[%d]", strconv.Quote(ct.ClientID), j)
		} else {
			seen[ct.ClientID] = i
		}
		if ct.Theme == "" {
			c.add(p+".theme", "must not be empty")
		} else {
			c.themeFolder(p+".theme", ct.Theme)
		}
	}
}

// themeFolder checks one theme folder (web.LoadTheme reads it).
func (c *checker) themeFolder(path, dir string) {
	info, err := os.Stat(dir)
	switch {
	case err != nil:
		c.add(path, "cannot read folder %s: %v", strconv.Quote(dir), unwrapPathError(err))
		return
	case !info.IsDir():
		c.add(path, "%s is a file, not a folder", strconv.Quote(dir))
		return
	}
	found := false
	for _, name := range themeFiles {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		found = true
		if !fi.Mode().IsRegular() {
			c.add(path, "%s in %s is not a regular file", name, strconv.Quote(dir))
		} else if fi.Size() > 1<<20 {
			c.add(path, "%s in %s is larger than 1 MiB", name, strconv.Quote(dir))
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "templates")); err == nil && fi.IsDir() {
		found = true
	}
	if !found {
		c.add(path, "folder %s has none of theme.css, logo.svg, logo.png, favicon.svg, favicon.png, favicon.ico, templates/", strconv.Quote(dir))
	}
}
