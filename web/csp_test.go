package web

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

// TestTemplatesHaveNoInlineCode keeps every hosted page within its CSP:
// no on* handler attributes, no javascript: URLs, no style attributes and
// no inline <script> except the two whose hash or nonce is in their
// policy (form_post.html and signed_out.html hold a template.JS from Go).
func TestTemplatesHaveNoInlineCode(t *testing.T) {
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil || len(files) < 18 {
		t.Fatalf("templates: %d, %v", len(files), err)
	}
	handler := regexp.MustCompile(`(?i)<[^>]*\son[a-z]+\s*=`)
	styleAttr := regexp.MustCompile(`(?i)<[^>]*\sstyle\s*=`)
	script := regexp.MustCompile(`(?is)<script([^>]*)>(.*?)</script>`)
	hashed := map[string]string{"templates/form_post.html": "{{.Script}}", "templates/signed_out.html": "{{.Script}}"}
	for _, f := range files {
		b, err := fs.ReadFile(templateFS, f)
		if err != nil {
			t.Fatal(err)
		}
		src := string(b)
		if m := handler.FindString(src); m != "" {
			t.Errorf("%s: inline event handler in %q", f, m)
		}
		if m := styleAttr.FindString(src); m != "" {
			t.Errorf("%s: style attribute in %q", f, m)
		}
		if strings.Contains(strings.ToLower(src), "javascript:") {
			t.Errorf("%s: javascript: URL", f)
		}
		for _, m := range script.FindAllStringSubmatch(src, -1) {
			attrs, body := m[1], strings.TrimSpace(m[2])
			switch {
			case strings.Contains(attrs, "src=") && body == "":
			case body == hashed[f]:
			default:
				t.Errorf("%s: inline script %q", f, m[0])
			}
		}
	}
}

// TestPageCSPs: every policy of a hosted page forbids framing and
// plugins and allows scripts only from our origin or by hash.
func TestPageCSPs(t *testing.T) {
	for name, csp := range map[string]string{
		"page": pageCSP, "form_post": formPostCSP, "script": scriptCSP, "default": DefaultCSP,
		"front-channel": frontChannelCSP([]string{"https://rp.example/logout"}, true),
	} {
		for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s CSP %q lacks %q", name, csp, want)
			}
		}
		if strings.Contains(csp, "'unsafe-inline'") || strings.Contains(csp, "'unsafe-eval'") {
			t.Errorf("%s CSP %q allows inline code", name, csp)
		}
	}
}
