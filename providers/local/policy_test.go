package local_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/latchkeyid/latchkey/providers/local"
)

func TestPasswordPolicy(t *testing.T) {
	p := &local.PasswordPolicy{}
	list := "# leaked\npassword123\n\nADDBD3AA5619F2932733104EB8CEEF08F6FD2693:1234\r\nletmein!letmein\n"
	if n, err := p.LoadBreached(strings.NewReader(list)); err != nil || n != 3 {
		t.Fatalf("LoadBreached = %d, %v", n, err)
	}
	tests := []struct {
		name, password string
		context        []string
		want           string // "" accepted
	}{
		{"8 characters", "abcdefgh", nil, ""},
		{"7 characters", "abcdefg", nil, "use at least 8 characters"},
		{"8 code points, more bytes", "äöüßäöüß", nil, ""},
		{"no composition rules: all lower case", "correct horse battery staple", nil, ""},
		{"spaces count", "a b c d ", nil, ""},
		{"64 characters", strings.Repeat("x", 64), nil, ""},
		{"65 characters", strings.Repeat("x", 65), nil, "use at most 64 characters"},
		{"breached as text", "password123", nil, "this password appears in a list of leaked passwords; choose another"},
		{"breached as SHA-1 (HIBP format)", "password123!", nil, "this password appears in a list of leaked passwords; choose another"},
		{"not breached", "password1234", nil, ""},
		{"the username", "Alice.Smith", []string{"alice.smith", "alice@example.com"}, "do not use your username or e-mail address as the password"},
		{"the e-mail", "alice@example.com", []string{"alice", "alice@example.com"}, "do not use your username or e-mail address as the password"},
		{"invalid UTF-8", "abcdefgh\xff", nil, "the password is not valid text"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := p.Check(tc.password, tc.context...)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, local.ErrPasswordPolicy) || err.Error() != "password refused: "+tc.want {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	strict := &local.PasswordPolicy{MinLength: 15, MaxLength: 128}
	if err := strict.Check("fourteen chars"); err == nil || err.Error() != "password refused: use at least 15 characters" {
		t.Fatalf("min 15: %v", err)
	}
	if err := strict.Check(strings.Repeat("y", 128)); err != nil {
		t.Fatalf("max 128: %v", err)
	}
}
