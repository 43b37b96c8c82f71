package policy_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/mfa"
	"github.com/latchkeyid/latchkey/mfa/policy"
)

var (
	now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	all = []string{"email", "recovery", "sms", "totp", "webauthn"}
)

const (
	pwd = mfa.ACRPwd
	mf  = mfa.ACRMFA
	phr = mfa.ACRPhr
)

// Steps, each ago before now.
func primary(ago time.Duration, amr ...string) mfa.Step {
	return mfa.Step{AMR: amr, At: now.Add(-ago)}
}
func password(ago time.Duration) mfa.Step { return primary(ago, "pwd") }
func totp(ago time.Duration) mfa.Step {
	return mfa.Step{Factor: "totp", AMR: []string{"otp"}, At: now.Add(-ago)}
}
func sms(ago time.Duration) mfa.Step {
	return mfa.Step{Factor: "sms", AMR: []string{"sms"}, At: now.Add(-ago)}
}
func rcode(ago time.Duration) mfa.Step {
	return mfa.Step{Factor: "recovery", AMR: []string{"rcode"}, At: now.Add(-ago)}
}
func webauthn(ago time.Duration, amr ...string) mfa.Step {
	return mfa.Step{Factor: "webauthn", AMR: amr, At: now.Add(-ago)}
}

func steps(s ...mfa.Step) []mfa.Step { return s }
func list(s ...string) []string      { return s }

// Decisions.
func allow(target string) policy.Decision {
	return policy.Decision{Action: policy.Allow, Target: target}
}
func challenge(target string, factors ...string) policy.Decision {
	return policy.Decision{Action: policy.Challenge, Factors: factors, Target: target, Reason: "step-up to " + target}
}
func verifyFirst(target string, factors ...string) policy.Decision {
	return policy.Decision{Action: policy.Challenge, Factors: factors, Target: target, Reason: "verify an enrolled factor before enrolling another"}
}
func enroll(target string, factors ...string) policy.Decision {
	return policy.Decision{Action: policy.Enroll, Factors: factors, Target: target, Reason: "enroll a factor that reaches " + target}
}
func noEnroll(target string) policy.Decision {
	return policy.Decision{Action: policy.Unmet, Target: target, Reason: "the user has no factor that reaches " + target + " and may not enroll one during login"}
}
func nothingReaches(target string) policy.Decision {
	return policy.Decision{Action: policy.Unmet, Target: target, Reason: "no factor the policy allows reaches " + target}
}

var unsupported = policy.Decision{Action: policy.Unmet, Reason: "none of the requested acr_values is supported"}

// cfg exercises every scope and rule field.
var cfg = policy.Config{
	Clients: map[string]policy.Rule{
		"open":   {Mode: policy.Off},
		"app":    {Mode: policy.Optional},
		"bank":   {Mode: policy.Required},
		"admin":  {Mode: policy.Required, Factors: []string{"webauthn"}},
		"strict": {Mode: policy.Required, NoEnrollment: true},
		"fresh":  {Mode: policy.Required, MaxAge: 5 * time.Minute},
	},
	Connectors: map[string]policy.Rule{
		"local":  {Mode: policy.Off},
		"google": {Mode: policy.Optional, Factors: []string{"totp", "webauthn", "recovery"}},
		"saml":   {Mode: policy.Required, Factors: []string{"totp", "webauthn", "recovery"}},
	},
	Groups: map[string]policy.Rule{
		"admins":      {Mode: policy.Required, Factors: []string{"webauthn"}},
		"staff":       {Mode: policy.Optional, MaxAge: 10 * time.Minute},
		"contractors": {Mode: policy.Off, NoEnrollment: true},
		"sms-only":    {Mode: policy.Required, Factors: []string{"sms"}},
	},
}

func TestEvaluate(t *testing.T) {
	p, err := policy.New(cfg, all, clock.NewFake(now))
	if err != nil {
		t.Fatal(err)
	}
	h := time.Hour
	tests := []struct {
		name      string
		client    string
		connector string
		groups    []string
		enrolled  []string
		steps     []mfa.Step
		acr       []string
		want      policy.Decision
	}{
		// off, or no rule at all
		{"off", "open", "local", nil, nil, steps(password(h)), nil, allow("")},
		{"off ignores enrolled factors", "open", "local", nil, list("totp"), steps(password(h)), nil, allow("")},
		{"no rule applies", "other", "other", list("nobody"), list("totp"), steps(password(h)), nil, allow("")},

		// optional
		{"optional, nothing enrolled", "app", "local", nil, nil, steps(password(h)), nil, allow("")},
		{"optional, enrolled: asked", "app", "local", nil, list("totp"), steps(password(h)), nil, challenge(mf, "totp")},
		{"optional, every enrolled factor offered", "app", "local", nil, list("totp", "recovery", "webauthn"), steps(password(h)), nil, challenge(mf, "recovery", "totp", "webauthn")},
		{"optional, verified", "app", "local", nil, list("totp"), steps(password(h), totp(h)), nil, allow(mf)},
		{"optional, recovery code counts", "app", "local", nil, list("totp", "recovery"), steps(password(h), rcode(h)), nil, allow(mf)},
		{"optional, only a factor that does not count", "app", "google", nil, list("sms"), steps(primary(h, "fed")), nil, allow("")},

		// required
		{"required, nothing enrolled: enroll", "bank", "local", nil, nil, steps(password(h)), nil, enroll(mf, "email", "sms", "totp", "webauthn")},
		{"required, recovery codes only", "bank", "local", nil, list("recovery"), steps(password(h)), nil, challenge(mf, "recovery")},
		{"required, enrolled", "bank", "local", nil, list("totp"), steps(password(h)), nil, challenge(mf, "totp")},
		{"required, verified", "bank", "local", nil, list("totp"), steps(password(h), totp(h)), nil, allow(mf)},
		{"required, trusted upstream mfa", "bank", "oidc", nil, nil, steps(primary(h, "fed", "pwd", "otp", "mfa")), nil, allow(mf)},
		{"required, upstream factors are one login", "bank", "oidc", nil, list("totp"), steps(primary(h, "fed", "pwd", "otp")), nil, challenge(mf, "totp")},
		{"required, unknown enrolled type ignored", "bank", "local", nil, list("yubiotp", "totp"), steps(password(h)), nil, challenge(mf, "totp")},
		{"required, upstream mfa does not count when factors are restricted", "bank", "google", nil, nil, steps(primary(h, "fed", "mfa")), nil, enroll(mf, "totp", "webauthn")},

		// required with a factor list
		{"webauthn only, has totp: verify it before enrolling", "admin", "local", nil, list("totp"), steps(password(h)), nil, verifyFirst(mf, "totp")},
		{"webauthn only, totp verified: enroll webauthn", "admin", "local", nil, list("totp"), steps(password(h), totp(h)), nil, enroll(mf, "webauthn")},
		{"webauthn only, has both", "admin", "local", nil, list("totp", "webauthn"), steps(password(h)), nil, challenge(mf, "webauthn")},
		{"webauthn only, totp does not count", "admin", "local", nil, list("totp", "webauthn"), steps(password(h), totp(h)), nil, challenge(mf, "webauthn")},
		{"webauthn only, verified", "admin", "local", nil, list("webauthn"), steps(password(h), webauthn(h, "hwk", "user")), nil, allow(mf)},
		{"webauthn only, nothing enrolled", "admin", "local", nil, nil, steps(password(h)), nil, enroll(mf, "webauthn")},

		// no enrollment during login
		{"no enrollment, nothing enrolled", "strict", "local", nil, nil, steps(password(h)), nil, noEnroll(mf)},
		{"no enrollment, enrolled", "strict", "local", nil, list("sms"), steps(password(h)), nil, challenge(mf, "sms")},
		{"no enrollment from an off rule", "open", "local", list("contractors"), nil, steps(password(h)), list(mf), noEnroll(mf)},
		{"no enrollment from an off rule, enrolled", "open", "local", list("contractors"), list("totp"), steps(password(h)), list(mf), challenge(mf, "totp")},

		// max age
		{"max age, fresh", "fresh", "local", nil, list("totp"), steps(password(h), totp(4*time.Minute)), nil, allow(mf)},
		{"max age, exactly", "fresh", "local", nil, list("totp"), steps(password(h), totp(5*time.Minute)), nil, allow(mf)},
		{"max age, stale", "fresh", "local", nil, list("totp"), steps(password(h), totp(5*time.Minute+time.Second)), nil, challenge(mf, "totp")},
		{"max age, one stale one fresh", "fresh", "local", nil, list("totp"), steps(password(h), totp(h), totp(time.Minute)), nil, allow(mf)},
		{"max age does not apply to the primary login", "fresh", "local", nil, list("totp"), steps(password(24*h), totp(time.Minute)), nil, allow(mf)},
		{"shortest max age wins", "fresh", "local", list("staff"), list("totp"), steps(password(h), totp(6*time.Minute)), nil, challenge(mf, "totp")},
		{"group max age", "app", "local", list("staff"), list("totp"), steps(password(h), totp(11*time.Minute)), nil, challenge(mf, "totp")},
		{"stale factor does not authorise enrolling", "fresh", "local", list("admins"), list("totp"), steps(password(h), totp(6*time.Minute)), nil, verifyFirst(mf, "totp")},

		// groups and connectors combine, most restrictive wins
		{"group makes optional required", "app", "local", list("admins"), list("webauthn"), steps(password(h)), nil, challenge(mf, "webauthn")},
		{"off client does not exempt a required group", "open", "local", list("admins"), nil, steps(password(h)), nil, enroll(mf, "webauthn")},
		{"unknown groups ignored", "open", "local", list("x", "y"), list("totp"), steps(password(h)), nil, allow("")},
		{"disjoint factor lists: nothing counts", "bank", "local", list("admins", "sms-only"), list("sms", "webauthn"), steps(password(h)), nil, nothingReaches(mf)},
		{"factor lists intersect", "app", "saml", list("admins"), list("totp", "webauthn"), steps(password(h), totp(h)), nil, challenge(mf, "webauthn")},
		{"required connector", "app", "saml", nil, nil, steps(primary(h, "fed")), nil, enroll(mf, "totp", "webauthn")},
		{"required connector, has a factor that does not count", "app", "saml", nil, list("sms"), steps(primary(h, "fed")), nil, verifyFirst(mf, "sms")},
		{"required connector, other factor verified", "open", "saml", nil, list("sms"), steps(primary(h, "fed"), sms(h)), nil, enroll(mf, "totp", "webauthn")},
		{"optional connector, enrolled", "open", "google", nil, list("recovery"), steps(primary(h, "fed")), nil, challenge(mf, "recovery")},

		// acr_values
		{"acr pwd", "open", "local", nil, nil, steps(password(h)), list(pwd), allow(pwd)},
		{"acr mfa, nothing enrolled", "open", "local", nil, nil, steps(password(h)), list(mf), enroll(mf, "email", "sms", "totp", "webauthn")},
		{"acr mfa, enrolled", "open", "local", nil, list("totp", "sms"), steps(password(h)), list(mf), challenge(mf, "sms", "totp")},
		{"acr mfa, met", "open", "local", nil, list("totp"), steps(password(h), totp(h)), list(mf), allow(mf)},
		{"acr mfa, recovery only", "open", "local", nil, list("recovery"), steps(password(h)), list(mf), challenge(mf, "recovery")},
		{"acr phr, totp enrolled: verify before enrolling", "open", "local", nil, list("totp"), steps(password(h)), list(phr), verifyFirst(phr, "totp")},
		{"acr phr, recovery enrolled: verify before enrolling", "open", "local", nil, list("recovery"), steps(password(h)), list(phr), verifyFirst(phr, "recovery")},
		{"acr phr, totp verified: enroll webauthn", "open", "local", nil, list("totp"), steps(password(h), totp(h)), list(phr), enroll(phr, "webauthn")},
		{"acr phr, only the missing factor", "open", "local", nil, list("totp", "webauthn"), steps(password(h), totp(h)), list(phr), challenge(phr, "webauthn")},
		{"acr phr, webauthn reaches it alone", "open", "local", nil, list("totp", "webauthn"), steps(password(h)), list(phr), challenge(phr, "webauthn")},
		{"acr phr after upstream login", "open", "oidc", nil, list("webauthn"), steps(primary(h, "fed")), list(phr), challenge(phr, "webauthn")},
		{"acr phr, met by security key", "open", "local", nil, list("webauthn"), steps(password(h), webauthn(h, "hwk", "user")), list(phr), allow(phr)},
		{"acr phr, met by verified passkey", "open", "local", nil, list("webauthn"), steps(password(h), webauthn(h, "swk", "user", "mfa")), list(phr), allow(phr)},
		{"acr phr, mfa session without webauthn", "open", "local", nil, list("totp"), steps(password(h), totp(h), sms(h)), list(phr), enroll(phr, "webauthn")},
		{"acr preference: phr unreachable now, mfa reachable", "open", "local", nil, list("totp"), steps(password(h)), list(phr, mf), challenge(mf, "totp")},
		{"acr preference: any listed value met", "open", "local", nil, list("totp"), steps(password(h), totp(h)), list(phr, mf), allow(mf)},
		{"acr preference: first reachable by challenge", "open", "local", nil, list("totp", "webauthn"), steps(password(h)), list(mf, phr), challenge(mf, "totp", "webauthn")},
		{"acr unsupported only", "open", "local", nil, list("totp"), steps(password(h), totp(h)), list("urn:example:gold"), unsupported},
		{"acr unsupported ignored beside a supported one", "open", "local", nil, list("totp"), steps(password(h), totp(h)), list("urn:example:gold", mf), allow(mf)},
		{"acr pwd raised by a required rule", "bank", "local", nil, list("totp"), steps(password(h)), list(pwd), challenge(mf, "totp")},
		{"acr phr above a required rule", "bank", "local", nil, list("totp", "webauthn"), steps(password(h), totp(h)), list(phr), challenge(phr, "webauthn")},
		{"acr phr with webauthn-only rule", "admin", "local", nil, list("webauthn"), steps(password(h)), list(phr), challenge(phr, "webauthn")},
		{"acr mfa, no enrollment", "strict", "local", nil, nil, steps(password(h)), list(phr, mf), noEnroll(phr)},
		{"acr phr, sms-only rule", "open", "local", list("sms-only"), list("sms"), steps(password(h)), list(phr), nothingReaches(phr)},
		{"acr phr, sms-only rule, fallback mfa", "open", "local", list("sms-only"), list("sms"), steps(password(h)), list(phr, mf), challenge(mf, "sms")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := p.Evaluate(policy.Input{
				ClientID: tt.client, ConnectorID: tt.connector, Groups: tt.groups,
				Enrolled: tt.enrolled, Steps: tt.steps, ACRValues: tt.acr,
			})
			if err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			if got.Action != tt.want.Action || !slices.Equal(got.Factors, tt.want.Factors) || got.Target != tt.want.Target || got.Reason != tt.want.Reason {
				t.Fatalf("decision = %+v\nwant       %+v", got, tt.want)
			}
		})
	}
}

func TestEvaluateNeedsPrimaryStep(t *testing.T) {
	p, err := policy.New(policy.Config{}, all, clock.NewFake(now))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range [][]mfa.Step{nil, steps(totp(0))} {
		_, err := p.Evaluate(policy.Input{Steps: s})
		if err == nil || err.Error() != "policy: the session has no primary login step" {
			t.Fatalf("steps %v: err = %v", s, err)
		}
	}
}

func TestDefaultRule(t *testing.T) {
	h := time.Hour
	tests := []struct {
		name     string
		cfg      policy.Config
		types    []string
		client   string
		enrolled []string
		steps    []mfa.Step
		acr      []string
		want     policy.Decision
	}{
		{"default required", policy.Config{Default: policy.Rule{Mode: policy.Required}}, all, "c", nil, steps(password(h)), nil,
			enroll(mf, "email", "sms", "totp", "webauthn")},
		{"default required, off client", policy.Config{Default: policy.Rule{Mode: policy.Required}, Clients: map[string]policy.Rule{"c": {Mode: policy.Off}}}, all, "c", list("totp"), steps(password(h)), nil,
			challenge(mf, "totp")},
		{"default factors intersect with the client's", policy.Config{
			Default: policy.Rule{Mode: policy.Optional, Factors: []string{"totp", "sms"}},
			Clients: map[string]policy.Rule{"c": {Mode: policy.Required, Factors: []string{"totp", "webauthn"}}},
		}, all, "c", nil, steps(password(h)), nil, enroll(mf, "totp")},
		{"default max age", policy.Config{Default: policy.Rule{Mode: policy.Optional, MaxAge: h}}, all, "c", list("totp"), steps(password(2*h), totp(2*h)), nil,
			challenge(mf, "totp")},
		{"default no enrollment", policy.Config{Default: policy.Rule{Mode: policy.Off, NoEnrollment: true}}, all, "c", nil, steps(password(h)), list(mf),
			noEnroll(mf)},
		{"registry without webauthn: phr unreachable", policy.Config{}, list("totp", "recovery"), "c", list("totp"), steps(password(h), totp(h)), list(phr),
			nothingReaches(phr)},
		{"registry with recovery only: nothing to enroll", policy.Config{Default: policy.Rule{Mode: policy.Required}}, list("recovery"), "c", nil, steps(password(h)), nil,
			nothingReaches(mf)},
		{"no registry", policy.Config{}, nil, "c", list("totp"), steps(password(h)), list(mf), nothingReaches(mf)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := policy.New(tt.cfg, tt.types, clock.NewFake(now))
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Evaluate(policy.Input{ClientID: tt.client, Enrolled: tt.enrolled, Steps: tt.steps, ACRValues: tt.acr})
			if err != nil {
				t.Fatal(err)
			}
			if got.Action != tt.want.Action || !slices.Equal(got.Factors, tt.want.Factors) || got.Target != tt.want.Target || got.Reason != tt.want.Reason {
				t.Fatalf("decision = %+v\nwant       %+v", got, tt.want)
			}
		})
	}
}

func TestConfigProblems(t *testing.T) {
	bad := policy.Config{
		Default: policy.Rule{MaxAge: time.Minute},
		Clients: map[string]policy.Rule{
			"b": {Mode: "always"},
			"a": {Mode: policy.Off, Factors: []string{"totp"}, MaxAge: time.Minute},
		},
		Connectors: map[string]policy.Rule{
			"c": {Mode: policy.Required, Factors: []string{"totp", "yubikey", "totp"}, MaxAge: -time.Second},
		},
		Groups: map[string]policy.Rule{
			"g":  {NoEnrollment: true},
			"ok": {Mode: policy.Off, NoEnrollment: true},
		},
	}
	_, err := policy.New(bad, all, nil)
	var ce *policy.ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *ConfigError", err)
	}
	want := "default.mode: required\n" +
		"clients.a.factors: only for optional or required\n" +
		"clients.a.maxAge: only for optional or required\n" +
		`clients.b.mode: "always" is not one of off, optional, required` + "\n" +
		`connectors.c.factors[1]: "yubikey" is not one of email, recovery, sms, totp, webauthn` + "\n" +
		`connectors.c.factors[2]: "totp" is listed twice` + "\n" +
		"connectors.c.maxAge: must not be negative\n" +
		"groups.g.mode: required"
	if err.Error() != want {
		t.Fatalf("err =\n%s\nwant\n%s", err, want)
	}
	if len(ce.Problems) != 8 || ce.Problems[4] != (policy.Problem{Path: "connectors.c.factors[1]", Message: `"yubikey" is not one of email, recovery, sms, totp, webauthn`}) {
		t.Fatalf("problems = %+v", ce.Problems)
	}

	_, err = policy.New(policy.Config{}, list("totp", "carrier-pigeon"), nil)
	if err == nil || err.Error() != `policy: factor type "carrier-pigeon" is unknown to the policy` {
		t.Fatalf("unknown factor type: %v", err)
	}
	if _, err := policy.New(cfg, all, nil); err != nil {
		t.Fatalf("valid config: %v", err)
	}
}
