package web_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/storage"
)

// TestRegistrationLimitsNotBypassed: without trusted proxies,
// X-Forwarded-For and Forwarded do not give a new client IP, and
// another spelling of the same address (case of the domain) counts
// against the same address limit.
func TestRegistrationLimitsNotBypassed(t *testing.T) {
	mp := testenv.StartMailpit(t)
	f := newFixtureOn(t, backends{options: withRegistration(t, mp, 1)})
	f.addClient(storage.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}}, "app-secret")
	b := f.browser()
	_, form := registerForm(t, f, b, f.rp("app", "app-secret", "https://app.example/cb", "openid").AuthCodeURL("s", oauthS256()...))
	if resp, page := register(b, f, form, "first", "first@example.com", "a long new password", "a long new password"); resp.StatusCode != 200 {
		t.Fatalf("first: %d\n%s", resp.StatusCode, page)
	}
	for i, hdr := range []map[string]string{{"X-Forwarded-For": "203.0.113.7"}, {"Forwarded": "for=203.0.113.8"}, {"X-Real-Ip": "203.0.113.9"}} {
		v := cloneValues(form)
		v.Set("username", "second"+string(rune('a'+i)))
		v.Set("email", "second@example.com")
		v.Set("password", "a long new password")
		v.Set("confirm", "a long new password")
		r, _ := http.NewRequest(http.MethodPost, f.issuer+"/account/register", strings.NewReader(v.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, val := range hdr {
			r.Header.Set(k, val)
		}
		resp, page := b.do(b.client, r)
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("%v: %d\n%s", hdr, resp.StatusCode, page)
		}
	}
	f.broker.WaitAccountMail()
	if _, err := f.db.GetUserByUsername(context.Background(), "seconda"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("registered past the IP limit: %v", err)
	}
}
