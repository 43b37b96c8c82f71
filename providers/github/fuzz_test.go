package github_test

import (
	"strings"
	"testing"

	"github.com/latchkeyid/latchkey/providers/github"
)

// FuzzNextLink feeds upstream-controlled Link headers to the parser: it
// never panics, and a link it returns is text of the header.
func FuzzNextLink(f *testing.F) {
	f.Add(`<https://api.github.com/user/orgs?per_page=100&page=2>; rel="next", <https://api.github.com/user/orgs?page=5>; rel="last"`)
	f.Add(`<a>; rel="prev next"`)
	f.Add(`<,>;rel=next,<`)
	f.Add(`<<>>;;;rel="`)
	f.Fuzz(func(t *testing.T, h string) {
		if got := github.NextLink(h); got != "" && !strings.Contains(h, "<"+got+">") {
			t.Fatalf("NextLink(%q) = %q, not a link of the header", h, got)
		}
	})
}
