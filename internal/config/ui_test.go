package config

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestUITheme(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"brand/theme.css":          ":root { --accent: #8a2be2; }\n",
		"brand/logo.svg":           "<svg xmlns='http://www.w3.org/2000/svg'/>",
		"empty/readme.txt":         "no theme files here",
		"big/theme.css":            strings.Repeat("a", 1<<20+1),
		"afile/something.txt":      "x",
		"tpl/templates/login.html": "{{template \"head\" .}}",
	})
	cfg := mustParse(t, minimal+"ui:\n  theme: brand\n", nil, dir)
	if cfg.UI.Theme != filepath.Join(dir, "brand") {
		t.Errorf("ui.theme = %q, want it resolved against the config folder", cfg.UI.Theme)
	}
	mustParse(t, minimal+"ui:\n  theme: tpl\n", nil, dir)
	if cfg := mustParse(t, minimal, nil, dir); cfg.UI.Theme != "" {
		t.Errorf("default ui.theme = %q", cfg.UI.Theme)
	}
	for _, tc := range []struct{ theme, want string }{
		{"missing", `cannot read folder "{dir}/missing": no such file or directory`},
		{"afile/something.txt", `"{dir}/afile/something.txt" is a file, not a folder`},
		{"empty", `folder "{dir}/empty" has none of theme.css, logo.svg, logo.png, favicon.svg, favicon.png, favicon.ico, templates/`},
		{"big", `theme.css in "{dir}/big" is larger than 1 MiB`},
	} {
		t.Run(tc.theme, func(t *testing.T) {
			_, err := Parse([]byte(minimal+"ui:\n  theme: "+tc.theme+"\n"), envOf(nil), dir)
			assertProblems(t, problemsOf(t, err), []Problem{{Path: "ui.theme", Message: strings.ReplaceAll(tc.want, "{dir}", dir)}})
		})
	}

	cfg = mustParse(t, minimal+"ui:\n  clients:\n    - client_id: app\n      theme: brand\n", nil, dir)
	if len(cfg.UI.Clients) != 1 || cfg.UI.Clients[0].ClientID != "app" || cfg.UI.Clients[0].Theme != filepath.Join(dir, "brand") {
		t.Errorf("ui.clients = %+v", cfg.UI.Clients)
	}
	_, err := Parse([]byte(minimal+"ui:\n  clients:\n    - client_id: app\n      theme: brand\n    - client_id: app\n      theme: empty\n    - theme: \"\"\n"), envOf(nil), dir)
	assertProblems(t, problemsOf(t, err), []Problem{
		{Path: "ui.clients[1].client_id", Message: `"app" is already used by ui.clients[0]`},
		{Path: "ui.clients[1].theme", Message: strings.ReplaceAll(`folder "{dir}/empty" has none of theme.css, logo.svg, logo.png, favicon.svg, favicon.png, favicon.ico, templates/`, "{dir}", dir)},
		{Path: "ui.clients[2].client_id", Message: "must not be empty"},
		{Path: "ui.clients[2].theme", Message: "must not be empty"},
	})
}
