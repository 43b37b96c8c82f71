package broker

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckUsername(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"alice", "alice"}, {"  Alice.B ", "alice.b"}, {"bob_smith-1@corp", "bob_smith-1@corp"}, {"Jürgen", "jürgen"},
		{strings.Repeat("a", 64), strings.Repeat("a", 64)}, {"", ""}, {"   ", ""}, {"a b", ""}, {"a\tb", ""},
		{"a/b", ""}, {"<script>", ""}, {strings.Repeat("a", 65), ""}, {"a\x00", ""}, {"\xff", ""},
		// Look-alikes are the same name (NFKC): fullwidth letters, a
		// ligature, a combining accent; fullwidth punctuation that is
		// not allowed stays refused.
		{"ａｌｉｃｅ", "alice"}, {"Ａｌｉｃｅ", "alice"}, {"\uFB01nn", "finn"}, {"Ju\u0308rgen", "jürgen"}, {"ａ／ｂ", ""},
		{"\u2160", "i"},
	} {
		got, err := checkUsername(tc.in)
		if got != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("checkUsername(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// FuzzCheckUsername: any input is refused or turned into a lower-case
// name of 1 to 64 allowed characters that checks as itself.
func FuzzCheckUsername(f *testing.F) {
	for _, s := range []string{"alice", " Bob ", "ä.ö", "a b", "\xff\xfe", strings.Repeat("x", 65), "İstanbul", "ǅ", "ａｌｉｃｅ", "\uFB01", "Ju\u0308rgen", "\u2160", "\u1D2C"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := checkUsername(s)
		if err != nil {
			if got != "" || err != ErrRegisterUsername {
				t.Fatalf("checkUsername(%q) = %q, %v", s, got, err)
			}
			return
		}
		if n := utf8.RuneCountInString(got); n < 1 || n > MaxRegisterUsername || !utf8.ValidString(got) {
			t.Fatalf("checkUsername(%q) = %q: %d characters", s, got, n)
		}
		if again, err := checkUsername(got); err != nil || again != got {
			t.Fatalf("checkUsername(%q) = %q, but that checks as %q, %v", s, got, again, err)
		}
	})
}

// TestAddressKey: look-alike spellings of one address share its limit
// key; other addresses do not.
func TestAddressKey(t *testing.T) {
	want := addressKey("victim@example.com")
	for _, same := range []string{"Victim@Example.COM", "victim@ｅxample.com", "ｖｉｃｔｉｍ@example.com", "vic\u00adtim@example.com", "victim@exa\u200dmple.com"} {
		if got := addressKey(same); got != want {
			t.Errorf("addressKey(%q) = %q, want %q", same, got, want)
		}
	}
	for _, other := range []string{"victim2@example.com", "victim@example.org", "vict1m@example.com"} {
		if addressKey(other) == want {
			t.Errorf("addressKey(%q) is the victim's", other)
		}
	}
}
