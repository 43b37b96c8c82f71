package ratelimit

import (
	"errors"
	"fmt"
	"time"
)

// Names of the rules Latchkey applies. Each is a key namespace in the
// store, so two rules never share counters.
const (
	// NameLoginIP counts password login attempts per client IP.
	NameLoginIP = "login.ip"
	// NameLoginAccount counts password login attempts per account name.
	NameLoginAccount = "login.account"
	// NameFactorAccount counts one-time-code and second-factor checks
	// (TOTP, SMS/e-mail codes, recovery codes, WebAuthn assertions) per
	// account.
	NameFactorAccount = "factor.account"
	// NameTokenClient counts token endpoint requests per client.
	NameTokenClient = "token.client"
	// NameRecoveryAccount is reserved for account recovery (password
	// reset) requests per account.
	NameRecoveryAccount = "recovery.account"
	// NameRegistrationIP counts self-registrations per client IP.
	NameRegistrationIP = "registration.ip"
	// NameRegistrationAddress counts self-registrations (and the
	// verification mails of refused sign-ins) per e-mail address.
	NameRegistrationAddress = "registration.address"
	// NameEnrollmentAccount is reserved for second-factor enrollment per
	// account.
	NameEnrollmentAccount = "enrollment.account"
	// NameOTPSendAccount counts SMS and e-mail codes sent per account.
	NameOTPSendAccount = "otp.send.account"
	// NameRecoveryIP counts password-reset requests per client IP.
	NameRecoveryIP = "recovery.ip"
)

// Bounds on a rule's window: Redis keeps expiries in milliseconds, and a
// window longer than a month is a ban, not a rate.
const (
	MinWindow = time.Millisecond
	MaxWindow = 31 * 24 * time.Hour
)

// Rule is a named limit: at most Limit events per Window for one key.
type Rule struct {
	// Name is the rule's key namespace: lower-case letters, digits, '.',
	// '_' and '-'.
	Name string
	// Limit is the number of events allowed per Window; 0 disables the
	// rule (Allow allows without touching the store).
	Limit int
	// Window is the length of the sliding window.
	Window time.Duration
	// FailOpen allows the event when the store fails (the failure is
	// logged); otherwise Allow returns an error wrapping ErrUnavailable.
	FailOpen bool
}

// Validate reports what is wrong with r, naming its fields.
func (r Rule) Validate() error {
	var errs []error
	if !validName(r.Name) {
		errs = append(errs, fmt.Errorf("name %q: want lower-case letters, digits, '.', '_' or '-'", r.Name))
	}
	if r.Limit < 0 {
		errs = append(errs, fmt.Errorf("limit %d: must not be negative", r.Limit))
	}
	if r.Limit > 0 && (r.Window < MinWindow || r.Window > MaxWindow) {
		errs = append(errs, fmt.Errorf("window %s: must be between %s and %s", r.Window, MinWindow, MaxWindow))
	}
	return errors.Join(errs...)
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Rules are the limits Latchkey applies, one field per config key under
// limits (see DefaultRules).
type Rules struct {
	LoginIP           Rule // limits.loginPerIP
	LoginAccount      Rule // limits.loginPerAccount
	FactorAccount     Rule // limits.factorPerAccount
	TokenClient       Rule // limits.tokenPerClient
	RecoveryAccount   Rule // limits.recoveryPerAccount
	RegistrationIP    Rule // limits.registrationPerIP
	EnrollmentAccount Rule // limits.enrollmentPerAccount
	OTPSendAccount    Rule // limits.otpSendPerAccount
	RecoveryIP        Rule // limits.recoveryPerIP
	// RegistrationAddress: limits.registrationPerAddress.
	RegistrationAddress Rule
}

// DefaultRules returns the default limits:
//
//	login.ip            20 / 1m   fail closed
//	login.account       10 / 5m   fail closed
//	factor.account       5 / 5m   fail closed
//	token.client       600 / 1m   fail open
//	recovery.account     5 / 1h   fail closed
//	registration.ip     10 / 1h   fail closed
//	enrollment.account  10 / 15m  fail closed
//	otp.send.account     5 / 15m  fail closed
//	recovery.ip         20 / 1h   fail closed
//	registration.address 3 / 1h   fail closed
func DefaultRules() Rules {
	return Rules{
		LoginIP:           Rule{Name: NameLoginIP, Limit: 20, Window: time.Minute},
		LoginAccount:      Rule{Name: NameLoginAccount, Limit: 10, Window: 5 * time.Minute},
		FactorAccount:     Rule{Name: NameFactorAccount, Limit: 5, Window: 5 * time.Minute},
		TokenClient:       Rule{Name: NameTokenClient, Limit: 600, Window: time.Minute, FailOpen: true},
		RecoveryAccount:   Rule{Name: NameRecoveryAccount, Limit: 5, Window: time.Hour},
		RegistrationIP:    Rule{Name: NameRegistrationIP, Limit: 10, Window: time.Hour},
		EnrollmentAccount: Rule{Name: NameEnrollmentAccount, Limit: 10, Window: 15 * time.Minute},
		OTPSendAccount:    Rule{Name: NameOTPSendAccount, Limit: 5, Window: 15 * time.Minute},
		RecoveryIP:        Rule{Name: NameRecoveryIP, Limit: 20, Window: time.Hour},
		// registration.address
		RegistrationAddress: Rule{Name: NameRegistrationAddress, Limit: 3, Window: time.Hour},
	}
}

// Validate reports every invalid rule, and rules that share a name.
func (rs Rules) Validate() error {
	var errs []error
	seen := map[string]string{}
	for _, f := range []struct {
		field string
		r     Rule
	}{
		{"loginPerIP", rs.LoginIP},
		{"loginPerAccount", rs.LoginAccount},
		{"factorPerAccount", rs.FactorAccount},
		{"tokenPerClient", rs.TokenClient},
		{"recoveryPerAccount", rs.RecoveryAccount},
		{"registrationPerIP", rs.RegistrationIP},
		{"enrollmentPerAccount", rs.EnrollmentAccount},
		{"otpSendPerAccount", rs.OTPSendAccount},
		{"recoveryPerIP", rs.RecoveryIP},
		{"registrationPerAddress", rs.RegistrationAddress},
	} {
		if err := f.r.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.field, err))
		}
		if other, dup := seen[f.r.Name]; dup {
			errs = append(errs, fmt.Errorf("%s: name %q is also %s's", f.field, f.r.Name, other))
		}
		seen[f.r.Name] = f.field
	}
	return errors.Join(errs...)
}
