package main

import (
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/internal/httpclient"
	"github.com/latchkeyid/latchkey/internal/notify/email"
	"github.com/latchkeyid/latchkey/internal/notify/sms"
	"github.com/latchkeyid/latchkey/mfa"
	"github.com/latchkeyid/latchkey/mfa/otp"
	"github.com/latchkeyid/latchkey/providers/local"
	"github.com/latchkeyid/latchkey/web/i18n"
)

// deriveKey derives a 32-byte key for one purpose from the first
// key-encryption key, which every replica has.
func (a *app) deriveKey(info string) ([]byte, error) {
	k, err := hkdf.Key(sha256.New, []byte(a.cfg.Keys.EncryptionKeys[0].Key.Reveal()), nil, "latchkey "+info, 32)
	if err != nil {
		return nil, fmt.Errorf("derive %s key: %w", info, err)
	}
	return k, nil
}

// emailSender is the SMTP sender of notify.email; nil when unset.
func (a *app) emailSender() (*email.Sender, error) {
	e := a.cfg.Notify.Email
	if e == nil {
		return nil, nil
	}
	tr, err := i18n.New()
	if err != nil {
		return nil, err
	}
	t, err := email.LoadTemplates(nil)
	if err != nil {
		return nil, err
	}
	s, err := email.New(email.Options{Host: e.Host, Port: e.Port, TLS: e.TLS, Username: e.Username, Password: e.Password.Reveal(),
		From: e.From, Templates: t, Translator: tr, Clock: a.clock, Rand: rand.Reader})
	if err != nil {
		return nil, fmt.Errorf("notify.email: %w", err)
	}
	return s, nil
}

// smsSender is the sender of notify.sms (Twilio or the webhook) over the
// hardened HTTP client; nil when unset.
func (a *app) smsSender() (sms.Sender, error) {
	s := a.cfg.Notify.SMS
	if s == nil {
		return nil, nil
	}
	o := a.cfg.Outbound
	hc := httpclient.New(httpclient.Options{Timeout: o.Timeout, MaxBodyBytes: o.MaxBodyBytes.Int64(), AllowedNetworks: o.AllowedNetworks, Logger: a.log})
	if t := s.Twilio; t != nil {
		tw, err := sms.NewTwilio(sms.TwilioOptions{BaseURL: t.BaseURL, AccountSID: t.AccountSID, AuthToken: t.AuthToken.Reveal(),
			From: t.From, MessagingServiceSID: t.MessagingServiceSID, HTTPClient: hc})
		if err != nil {
			return nil, fmt.Errorf("notify.sms.twilio: %w", err)
		}
		return tw, nil
	}
	w, err := sms.NewWebhook(sms.WebhookOptions{URL: s.Webhook.URL, Secret: s.Webhook.Secret.Reveal(), HTTPClient: hc, Clock: a.clock, Rand: rand.Reader})
	if err != nil {
		return nil, fmt.Errorf("notify.sms.webhook: %w", err)
	}
	return w, nil
}

// addOTPFactors registers the SMS and e-mail code factors that
// mfa.sms.enabled and mfa.email.enabled turn on.
func (a *app) addOTPFactors(o *broker.MFAOptions) error {
	if !a.cfg.MFA.SMS.Enabled && !a.cfg.MFA.Email.Enabled {
		return nil
	}
	key, err := a.deriveKey("otp")
	if err != nil {
		return err
	}
	add := func(typ string, d otp.Deliverer) error {
		f, err := otp.New(otp.Options{Type: typ, Deliver: d, Key: key, Clock: a.clock, Rand: rand.Reader})
		if err != nil {
			return err
		}
		o.Factors[typ] = f
		return nil
	}
	product, lang := "", ""
	if e := a.cfg.Notify.Email; e != nil {
		product, lang = e.Product, e.Lang
	}
	if a.cfg.MFA.SMS.Enabled {
		s, err := a.smsSender()
		if err != nil {
			return err
		}
		tr, err := i18n.New() // the texts in the language of the request
		if err != nil {
			return err
		}
		if err := add(mfa.TypeSMS, otp.SMS{Sender: s, Product: product, Translator: tr, Lang: lang}); err != nil {
			return err
		}
	}
	if a.cfg.MFA.Email.Enabled {
		s, err := a.emailSender()
		if err != nil {
			return err
		}
		if err := add(mfa.TypeEmail, otp.Email{Sender: s, Product: product, Lang: lang}); err != nil {
			return err
		}
	}
	return nil
}

// accountOptions turns on the account e-mail flows when notify.email is
// set.
func (a *app) accountOptions(hasher *local.Hasher) (*broker.AccountOptions, error) {
	s, err := a.emailSender()
	if err != nil {
		return nil, err
	}
	c := a.cfg.Accounts
	pol := &local.PasswordPolicy{MinLength: c.PasswordMinLength, MaxLength: c.PasswordMaxLength}
	if c.BreachedPasswords != "" {
		p := c.BreachedPasswords
		if !filepath.IsAbs(p) {
			p = filepath.Join(a.cfg.BaseDir, p)
		}
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("accounts.breachedPasswords: %w", err)
		}
		n, err := pol.LoadBreached(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("accounts.breachedPasswords: %w", err)
		}
		a.log.Info("breached-password list loaded", "entries", n)
	}
	key, err := a.deriveKey("account links")
	if err != nil {
		return nil, err
	}
	// The account page works without mail; what needs mail (verification,
	// reset, address change, registration) is on only with notify.email.
	o := &broker.AccountOptions{Users: a.db, Hasher: hasher, Policy: pol, LinkKey: key,
		VerifyTTL: c.VerifyEmailTTL, ResetTTL: c.ResetPasswordTTL}
	if e := a.cfg.Notify.Email; s != nil && e != nil {
		o.Mailer, o.Product, o.Lang = s, e.Product, e.Lang
		o.Registration = broker.RegistrationOptions{Enabled: c.Registration.Enabled, RequireVerifiedEmail: c.Registration.RequireVerifiedEmail}
	}
	return o, nil
}

// sendVerification mails a new local user the link that confirms their
// address (users create, when notify.email is set and the address is not
// marked verified).
func (a *app) sendVerification(ctx context.Context, userID string) error {
	if a.cfg.Notify.Email == nil || (a.cfg.Accounts.VerifyOnCreate != nil && !*a.cfg.Accounts.VerifyOnCreate) {
		return nil
	}
	brk, err := a.sessionBroker(ctx)
	if err != nil {
		return err
	}
	return brk.SendEmailVerification(ctx, userID, "", broker.RequestMeta{})
}
