package config

import (
	"encoding/base64"
	"net/mail"
	"net/url"
	"strings"
	"time"
)

// Notify configures the senders of e-mail and text messages
// (docs/configuration.md "notify").
type Notify struct {
	Email *NotifyEmail `yaml:"email" json:"email,omitempty"`
	SMS   *NotifySMS   `yaml:"sms" json:"sms,omitempty"`
}

// NotifyEmail is the SMTP server mail goes through.
type NotifyEmail struct {
	Host string `yaml:"host" json:"host"`
	Port int    `yaml:"port" json:"port"` // default 587 (465 with tls: tls)
	// TLS is starttls (default), tls (implicit, port 465) or none (a
	// local sink only).
	TLS      string `yaml:"tls" json:"tls"`
	Username string `yaml:"username" json:"username,omitempty"`
	Password Secret `yaml:"password" json:"password,omitempty"`
	From     string `yaml:"from" json:"from"`
	// Lang is the messages' language (default en); Product the name they
	// say (default Latchkey).
	Lang    string `yaml:"lang" json:"lang,omitempty"`
	Product string `yaml:"product" json:"product,omitempty"`
}

// NotifySMS is one SMS sender: Twilio or a signed webhook.
type NotifySMS struct {
	Twilio  *Twilio     `yaml:"twilio" json:"twilio,omitempty"`
	Webhook *SMSWebhook `yaml:"webhook" json:"webhook,omitempty"`
}

// Twilio is the Twilio Messages API sender.
type Twilio struct {
	BaseURL             string `yaml:"baseURL" json:"baseURL,omitempty"` // default https://api.twilio.com
	AccountSID          string `yaml:"accountSID" json:"accountSID"`
	AuthToken           Secret `yaml:"authToken" json:"authToken"`
	From                string `yaml:"from" json:"from,omitempty"`
	MessagingServiceSID string `yaml:"messagingServiceSID" json:"messagingServiceSID,omitempty"`
}

// SMSWebhook POSTs each message as signed JSON (Standard Webhooks).
type SMSWebhook struct {
	URL    string `yaml:"url" json:"url"`
	Secret Secret `yaml:"secret" json:"secret"` // whsec_ + base64 of >= 24 bytes
}

// Accounts configures the local account's e-mail flows and password
// policy (docs/accounts.md). They are on when notify.email is set.
// Zero values take the defaults below.
type Accounts struct {
	PasswordMinLength int `yaml:"passwordMinLength" json:"passwordMinLength,omitempty"` // default 8
	PasswordMaxLength int `yaml:"passwordMaxLength" json:"passwordMaxLength,omitempty"` // default 64
	// BreachedPasswords is a file of leaked passwords (text or SHA-1 hex
	// per line, HIBP format accepted) new passwords must not be on.
	BreachedPasswords string        `yaml:"breachedPasswords" json:"breachedPasswords,omitempty"`
	VerifyEmailTTL    time.Duration `yaml:"verifyEmailTTL" json:"verifyEmailTTL,omitempty"`     // default 24h
	ResetPasswordTTL  time.Duration `yaml:"resetPasswordTTL" json:"resetPasswordTTL,omitempty"` // default 1h
	VerifyOnCreate    *bool         `yaml:"verifyOnCreate" json:"verifyOnCreate,omitempty"`     // default true
	Registration      Registration  `yaml:"registration" json:"registration"`
}

// Registration configures self-registration of local accounts
// (docs/accounts.md "Self-registration").
type Registration struct {
	// Enabled shows "Create an account" on the login page (default
	// false; needs notify.email).
	Enabled bool `yaml:"enabled" json:"enabled"`
	// RequireVerifiedEmail refuses the password sign-in of a local
	// account whose address is not confirmed while registration is on
	// (default true).
	RequireVerifiedEmail bool `yaml:"requireVerifiedEmail" json:"requireVerifiedEmail"`
}

// OTPFactor turns on the SMS or e-mail code factor.
type OTPFactor struct {
	Enabled bool `yaml:"enabled" json:"enabled"`
}

func notifyDefaults(n *Notify) {
	if e := n.Email; e != nil {
		if e.TLS == "" {
			e.TLS = "starttls"
		}
		if e.Port == 0 {
			e.Port = 587
			if e.TLS == "tls" {
				e.Port = 465
			}
		}
	}
}

func (c *checker) notify(cfg *Config) {
	n := &cfg.Notify
	if e := n.Email; e != nil {
		if e.Host == "" {
			c.add("notify.email.host", "required")
		}
		if e.Port < 1 || e.Port > 65535 {
			c.add("notify.email.port", "%d is not a port", e.Port)
		}
		c.oneOf("notify.email.tls", e.TLS, []string{"starttls", "tls", "none"})
		if a, err := mail.ParseAddress(e.From); err != nil || a == nil {
			c.add("notify.email.from", "want an address such as \"Latchkey <id@example.com>\"")
		}
	}
	if s := n.SMS; s != nil {
		if (s.Twilio == nil) == (s.Webhook == nil) {
			c.add("notify.sms", "set exactly one of twilio and webhook")
		}
		if t := s.Twilio; t != nil {
			if t.AccountSID == "" {
				c.add("notify.sms.twilio.accountSID", "required")
			}
			if t.AuthToken == "" {
				c.add("notify.sms.twilio.authToken", "required")
			}
			if (t.From == "") == (t.MessagingServiceSID == "") {
				c.add("notify.sms.twilio", "set exactly one of from and messagingServiceSID")
			}
			if t.BaseURL != "" && !httpURL(t.BaseURL) {
				c.add("notify.sms.twilio.baseURL", "not an http(s) URL")
			}
		}
		if w := s.Webhook; w != nil {
			if !httpURL(w.URL) {
				c.add("notify.sms.webhook.url", "not an http(s) URL")
			}
			rest, ok := strings.CutPrefix(w.Secret.Reveal(), "whsec_")
			if k, err := base64.StdEncoding.DecodeString(rest); !ok || err != nil || len(k) < 24 {
				c.add("notify.sms.webhook.secret", "want whsec_ followed by base64 of at least 24 random bytes")
			}
		}
	}
	if cfg.MFA.SMS.Enabled && n.SMS == nil {
		c.add("mfa.sms.enabled", "needs notify.sms")
	}
	if cfg.MFA.Email.Enabled && n.Email == nil {
		c.add("mfa.email.enabled", "needs notify.email")
	}
	a := cfg.Accounts
	if a.PasswordMinLength < 0 || a.PasswordMaxLength < 0 || (a.PasswordMaxLength > 0 && a.PasswordMaxLength < max(a.PasswordMinLength, 8)) {
		c.add("accounts.passwordMaxLength", "must be at least passwordMinLength (and 8)")
	}
	if a.PasswordMaxLength > 1024 {
		c.add("accounts.passwordMaxLength", "at most 1024")
	}
	if a.Registration.Enabled && n.Email == nil {
		c.add("accounts.registration.enabled", "needs notify.email")
	}
	if a.VerifyEmailTTL < 0 || a.ResetPasswordTTL < 0 {
		c.add("accounts", "link lifetimes must not be negative")
	}
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}
