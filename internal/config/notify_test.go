package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestNotifyValidation(t *testing.T) {
	base := "issuer: https://id.example.com\nkeys: {encryptionKeys: [{id: k1, key: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=}]}\n"
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"email and twilio", "notify: {email: {host: smtp.example.com, from: 'Latchkey <id@example.com>'}, sms: {twilio: {accountSID: AC1, authToken: t, from: '+15005550006'}}}\nmfa: {sms: {enabled: true}, email: {enabled: true}}\n", nil},
		{"webhook", "notify: {sms: {webhook: {url: 'https://sms.example.com/send', secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}}}\n", nil},
		{"factors without senders", "mfa: {sms: {enabled: true}, email: {enabled: true}}\n", []string{"mfa.sms.enabled: needs notify.sms", "mfa.email.enabled: needs notify.email"}},
		{"email problems", "notify: {email: {tls: ssl, port: 70000, from: nobody}}\n", []string{
			"notify.email.host: required", "notify.email.port: 70000 is not a port", `notify.email.tls: "ssl" is not one of starttls, tls, none`,
			`notify.email.from: want an address such as "Latchkey <id@example.com>"`}},
		{"sms both", "notify: {sms: {twilio: {accountSID: AC1, authToken: t, from: '+1'}, webhook: {url: 'https://x.example', secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}}}\n", []string{"notify.sms: set exactly one of twilio and webhook"}},
		{"twilio problems", "notify: {sms: {twilio: {baseURL: 'ftp://x'}}}\n", []string{"notify.sms.twilio.accountSID: required", "notify.sms.twilio.authToken: required",
			"notify.sms.twilio: set exactly one of from and messagingServiceSID", "notify.sms.twilio.baseURL: not an http(s) URL"}},
		{"webhook secret", "notify: {sms: {webhook: {url: 'https://x.example', secret: hunter2}}}\n", []string{"notify.sms.webhook.secret: want whsec_ followed by base64 of at least 24 random bytes"}},
		{"password lengths", "accounts: {passwordMinLength: 20, passwordMaxLength: 10}\n", []string{"accounts.passwordMaxLength: must be at least passwordMinLength (and 8)"}},
		{"registration without mail", "accounts: {registration: {enabled: true}}\n", []string{"accounts.registration.enabled: needs notify.email"}},
		{"registration", "notify: {email: {host: smtp.example.com, from: 'Latchkey <id@example.com>'}}\naccounts: {registration: {enabled: true, requireVerifiedEmail: false}}\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(base+tc.yaml), nil, "/etc/latchkey")
			if tc.want == nil {
				if err != nil {
					t.Fatalf("unexpected problems: %v", err)
				}
				if e := cfg.Notify.Email; e != nil && (e.TLS != "starttls" || e.Port != 587) {
					t.Errorf("email defaults: %+v", e)
				}
				return
			}
			got := problemList(t, err)
			slices.Sort(got)
			slices.Sort(tc.want)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// problemList returns the problems of a Parse error as strings.
func problemList(t *testing.T, err error) []string {
	t.Helper()
	var p *Problems
	if !errors.As(err, &p) {
		t.Fatalf("err = %v, want *Problems", err)
	}
	var got []string
	for _, pr := range p.List {
		got = append(got, pr.String())
	}
	return got
}
