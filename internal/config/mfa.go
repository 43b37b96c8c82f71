package config

import (
	"strings"
	"time"
)

// MFA configures second factors (docs/mfa.md).
type MFA struct {
	TOTP   TOTP      `yaml:"totp" json:"totp"`
	Policy MFAPolicy `yaml:"policy" json:"policy"`
	SMS    OTPFactor `yaml:"sms" json:"sms"`     // codes by text message (notify.sms)
	Email  OTPFactor `yaml:"email" json:"email"` // codes by e-mail (notify.email)
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
}
