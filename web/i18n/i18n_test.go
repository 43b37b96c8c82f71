package i18n

import (
	"slices"
	"strings"
	"testing"
)

func TestAcceptLanguages(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   []string
	}{
		{"", []string{}},
		{"de", []string{"de"}},
		{"fr;q=0.5, ja , de;q=0.9", []string{"ja", "de", "fr"}},
		{"en;q=0, *;q=0.5, es", []string{"es"}},
		{"de;q=x, fr", []string{"fr"}},
		{" , ;q=1, it", []string{"it"}},
	} {
		if got := acceptLanguages(tc.header); !slices.Equal(got, tc.want) {
			t.Errorf("acceptLanguages(%q) = %q, want %q", tc.header, got, tc.want)
		}
	}
}

func FuzzPick(f *testing.F) {
	c, err := New()
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"de-DE,de;q=0.9,en;q=0.5", "xx;q=1, ja;q=0.8", ";;;q=x", "*", "fr-CA", strings.Repeat("a,", 100)} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, accept, locale string) {
		if got := acceptLanguages(accept); len(got) > 20 {
			t.Fatalf("%d preferences kept", len(got))
		}
		l := c.Pick(locale, strings.Fields(locale), locale, accept)
		if !slices.Contains(Languages, l) {
			t.Fatalf("Pick returned %+v", l)
		}
	})
}
