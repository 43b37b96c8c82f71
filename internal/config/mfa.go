package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// MFA configures second factors (docs/mfa.md).
type MFA struct {
	TOTP     TOTP      `yaml:"totp" json:"totp"`
	WebAuthn WebAuthn  `yaml:"webauthn" json:"webauthn"`
	Policy   MFAPolicy `yaml:"policy" json:"policy"`
	SMS      OTPFactor `yaml:"sms" json:"sms"`     // codes by text message (notify.sms)
	Email    OTPFactor `yaml:"email" json:"email"` // codes by e-mail (notify.email)
}

// TOTP are the code parameters of new TOTP enrollments.
type TOTP struct {
	// Issuer names the service in authenticator apps (default
	// "Latchkey"); no ':'.
	Issuer    string        `yaml:"issuer" json:"issuer"`
	Algorithm string        `yaml:"algorithm" json:"algorithm"` // SHA1 (default), SHA256, SHA512
	Digits    int           `yaml:"digits" json:"digits"`       // 6 (default) or 8
	Period    time.Duration `yaml:"period" json:"period"`       // default 30s
}

// WebAuthn configures security keys and passkeys (docs/mfa.md
// "Passkeys and security keys"). Empty values take the defaults of
// mfa/webauthn; the RP ID and origins come from the issuer.
type WebAuthn struct {
	// Disabled turns WebAuthn off. Without rpID it is also off when the
	// issuer's host is an IP address (browsers need a domain name).
	Disabled bool `yaml:"disabled" json:"disabled"`
	// RPID is the relying party id (default: the issuer's host); a
	// registrable suffix of it (example.com for id.example.com) lets
	// the credentials work on other hosts of that domain too.
	RPID string `yaml:"rpID" json:"rpID"`
	// RPName is shown by browsers when a credential is created (default
	// Latchkey).
	RPName string `yaml:"rpName" json:"rpName"`
	// Origins allowed in the browser's answers (default: the issuer's
	// origin).
	Origins []string `yaml:"origins" json:"origins"`
	// UserVerification: required, preferred (default) or discouraged.
	UserVerification string `yaml:"userVerification" json:"userVerification"`
	// ResidentKey: whether new credentials should be discoverable
	// (passkeys): required, preferred (default) or discouraged.
	ResidentKey string `yaml:"residentKey" json:"residentKey"`
	// Attestation: none (default), indirect or direct.
	Attestation string `yaml:"attestation" json:"attestation"`
	// AllowedAAGUIDs, when set, are the only authenticator models that
	// may register.
	AllowedAAGUIDs []string `yaml:"allowedAAGUIDs" json:"allowedAAGUIDs"`
}

// MFAPolicy says when a second factor is needed: a default rule and rules
// per client, connector and group; the most restrictive that applies wins.
// cmd checks it whole with mfa/policy.New (problems under mfa.policy.).
type MFAPolicy struct {
	Default    MFARule            `yaml:"default" json:"default"`
	Clients    map[string]MFARule `yaml:"clients" json:"clients"`
	Connectors map[string]MFARule `yaml:"connectors" json:"connectors"`
	Groups     map[string]MFARule `yaml:"groups" json:"groups"`
}

// MFARule is one rule: mode off, optional (default: asked of users who
// enrolled a factor, and whenever acr_values ask) or required; the factor
// types that count (empty: all); how long a verified factor counts (0: the
// session's life); noEnrollment refuses users without a factor instead of
// enrolling one during login.
type MFARule struct {
	Mode         string        `yaml:"mode" json:"mode"`
	Factors      []string      `yaml:"factors" json:"factors"`
	MaxAge       time.Duration `yaml:"maxAge" json:"maxAge"`
	NoEnrollment bool          `yaml:"noEnrollment" json:"noEnrollment"`
}

func mfaDefaults(m *MFA) {
	if m.TOTP.Issuer == "" {
		m.TOTP.Issuer = "Latchkey"
	}
	if m.TOTP.Algorithm == "" {
		m.TOTP.Algorithm = "SHA1"
	}
	if m.TOTP.Digits == 0 {
		m.TOTP.Digits = 6
	}
	if m.TOTP.Period == 0 {
		m.TOTP.Period = 30 * time.Second
	}
	if m.Policy.Default.Mode == "" {
		m.Policy.Default.Mode = "optional"
	}
}

func (c *checker) mfa(m *MFA) {
	if strings.Contains(m.TOTP.Issuer, ":") {
		c.add("mfa.totp.issuer", "must not contain ':'")
	}
	c.oneOf("mfa.totp.algorithm", m.TOTP.Algorithm, []string{"SHA1", "SHA256", "SHA512"})
	if m.TOTP.Digits != 6 && m.TOTP.Digits != 8 {
		c.add("mfa.totp.digits", "%d is not 6 or 8", m.TOTP.Digits)
	}
	if m.TOTP.Period < time.Second || m.TOTP.Period%time.Second != 0 {
		c.add("mfa.totp.period", "%s is not a whole number of seconds >= 1s", m.TOTP.Period)
	}
	c.webauthn(&m.WebAuthn)
}

var aaguidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func (c *checker) webauthn(w *WebAuthn) {
	levels := []string{"required", "preferred", "discouraged"}
	if w.UserVerification != "" {
		c.oneOf("mfa.webauthn.userVerification", w.UserVerification, levels)
	}
	if w.ResidentKey != "" {
		c.oneOf("mfa.webauthn.residentKey", w.ResidentKey, levels)
	}
	if w.Attestation != "" {
		c.oneOf("mfa.webauthn.attestation", w.Attestation, []string{"none", "indirect", "direct"})
	}
	if w.RPID != "" && (net.ParseIP(w.RPID) != nil || strings.ContainsAny(w.RPID, ":/ ") || !strings.Contains(w.RPID, ".") && w.RPID != "localhost") {
		c.add("mfa.webauthn.rpID", "%q is not a domain name", w.RPID)
	}
	for i, o := range w.Origins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && !(u.Scheme == "http" && u.Hostname() == "localhost")) || u.Host == "" || u.Path != "" || u.RawQuery != "" {
			c.add(fmt.Sprintf("mfa.webauthn.origins[%d]", i), "%q is not an https origin (or http://localhost)", o)
		}
	}
	for i, a := range w.AllowedAAGUIDs {
		if !aaguidRE.MatchString(a) {
			c.add(fmt.Sprintf("mfa.webauthn.allowedAAGUIDs[%d]", i), "%q is not a UUID", a)
		}
	}
}
