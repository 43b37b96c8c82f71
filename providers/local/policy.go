package local

import (
	"bufio"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Password policy defaults (NIST SP 800-63B §3.1.1.2: at least 15
// characters for a password that is the only factor, at least 8 when it
// is part of MFA; verifiers allow at least 64; no composition rules; no
// periodic change; check against lists of breached and context-specific
// values).
const (
	DefaultMinPasswordLength = 8
	DefaultMaxPasswordLength = 64
)

// ErrPasswordPolicy is wrapped by every refusal of PasswordPolicy.Check;
// the message says what to change and is shown to the user.
var ErrPasswordPolicy = errors.New("password refused")

// PasswordPolicy checks new passwords: length in characters (Unicode
// code points, spaces count), not on the breached-password list, not the
// account's own username or e-mail address. It has no composition rules.
type PasswordPolicy struct {
	MinLength int // default DefaultMinPasswordLength
	MaxLength int // default DefaultMaxPasswordLength (at most MaxPasswordLength bytes apply anyway)
	breached  map[[sha1.Size]byte]struct{}
}

// LoadBreached reads a breached-password list: one entry a line, either a
// password as text or its SHA-1 as 40 hex digits, optionally followed by
// ":count" (the format of the Have I Been Pwned downloads). Empty lines
// and lines starting with '#' are skipped.
func (p *PasswordPolicy) LoadBreached(r io.Reader) (int, error) {
	if p.breached == nil {
		p.breached = map[[sha1.Size]byte]struct{}{}
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var key [sha1.Size]byte
		h, _, _ := strings.Cut(line, ":")
		if b, err := hex.DecodeString(h); err == nil && len(b) == sha1.Size {
			copy(key[:], b)
		} else {
			key = sha1.Sum([]byte(line))
		}
		p.breached[key] = struct{}{}
		n++
	}
	if err := sc.Err(); err != nil {
		return n, fmt.Errorf("read breached-password list: %w", err)
	}
	return n, nil
}

// Breached reports whether password is on the loaded list.
func (p *PasswordPolicy) Breached(password string) bool {
	_, ok := p.breached[sha1.Sum([]byte(password))]
	return ok
}

// Check returns nil or an error wrapping ErrPasswordPolicy that says what
// is wrong. context holds the account's own values (username, e-mail
// address) that a password must not be.
func (p *PasswordPolicy) Check(password string, context ...string) error {
	minLen, maxLen := p.MinLength, p.MaxLength
	if minLen <= 0 {
		minLen = DefaultMinPasswordLength
	}
	if maxLen <= 0 {
		maxLen = DefaultMaxPasswordLength
	}
	n := utf8.RuneCountInString(password)
	switch {
	case !utf8.ValidString(password):
		return fmt.Errorf("%w: the password is not valid text", ErrPasswordPolicy)
	case n < minLen:
		return fmt.Errorf("%w: use at least %d characters", ErrPasswordPolicy, minLen)
	case n > maxLen || len(password) > MaxPasswordLength:
		return fmt.Errorf("%w: use at most %d characters", ErrPasswordPolicy, maxLen)
	case p.Breached(password):
		return fmt.Errorf("%w: this password appears in a list of leaked passwords; choose another", ErrPasswordPolicy)
	}
	for _, c := range context {
		if c != "" && strings.EqualFold(strings.TrimSpace(password), strings.TrimSpace(c)) {
			return fmt.Errorf("%w: do not use your username or e-mail address as the password", ErrPasswordPolicy)
		}
	}
	return nil
}
