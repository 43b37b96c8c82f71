package apple

import (
	"encoding/json"
	"strings"
	"unicode"

	"github.com/latchkeyid/latchkey/providers/upstream"
)

// PrivateRelayDomain is the domain of Apple's private email relay: a user
// who hides their address gets a unique one here per developer team,
// verified and forwarding to their real address.
const PrivateRelayDomain = "privaterelay.appleid.com"

// IsPrivateRelay reports whether email is a private relay address.
func IsPrivateRelay(email string) bool {
	_, domain, ok := strings.Cut(email, "@")
	return ok && strings.EqualFold(domain, PrivateRelayDomain)
}

// maxUserField bounds the user form field read.
const maxUserField = 4 << 10

// User is the `user` form field Apple posts at a user's first login only:
// {"name":{"firstName":"…","lastName":"…"},"email":"…"}. It is not signed:
// the browser posts it, so only the name is taken from it (the email
// comes from the ID token).
type User struct {
	Name struct {
		FirstName string `json:"firstName"`
		LastName  string `json:"lastName"`
	} `json:"name"`
	Email string `json:"email"`
}

// ParseUser reads the user form field; ok is false when it is absent or
// not the documented JSON.
func ParseUser(field string) (u User, ok bool) {
	if field == "" || len(field) > maxUserField {
		return User{}, false
	}
	if err := json.Unmarshal([]byte(field), &u); err != nil {
		return User{}, false
	}
	return u, true
}

// FullName is "first last", trimmed, without control characters, at most
// 200 bytes.
func (u User) FullName() string {
	clean := func(s string) string {
		return strings.TrimSpace(strings.Map(func(r rune) rune {
			if unicode.IsControl(r) {
				return -1
			}
			return r
		}, s))
	}
	return upstream.Clip(strings.TrimSpace(clean(u.Name.FirstName)+" "+clean(u.Name.LastName)), 200)
}
