package policy

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/mfa"
)

// ErrorUnmet is the OpenID Connect error code for an Unmet decision.
const ErrorUnmet = "unmet_authentication_requirements"

// Mode is how strongly a rule asks for a second factor.
type Mode string

// The modes, least restrictive first.
const (
	Off      Mode = "off"
	Optional Mode = "optional"
	Required Mode = "required"
)

func (m Mode) rank() int {
	switch m {
	case Optional:
		return 1
	case Required:
		return 2
	}
	return 0
}

// Rule is one scope's requirement.
type Rule struct {
	Mode Mode `json:"mode"`
	// Factors lists the factor types that count; empty: all. Only for
	// optional and required rules.
	Factors []string `json:"factors,omitempty"`
	// MaxAge: a second factor verified longer ago stops counting; 0: it
	// counts for the session's life. Only for optional and required rules.
	MaxAge time.Duration `json:"maxAge,omitempty"`
	// NoEnrollment: a user without a factor that reaches what is needed
	// is refused (Unmet) instead of enrolling one during login.
	NoEnrollment bool `json:"noEnrollment,omitempty"`
}

// Config holds the rules. A zero Default applies nothing.
type Config struct {
	Default    Rule            `json:"default"`
	Clients    map[string]Rule `json:"clients,omitempty"`
	Connectors map[string]Rule `json:"connectors,omitempty"`
	Groups     map[string]Rule `json:"groups,omitempty"`
}

// Problem is one thing wrong with a Config: Path is the key path below the
// policy ("clients.app.factors[1]").
type Problem struct {
	Path    string
	Message string
}

// ConfigError lists every problem of a Config.
type ConfigError struct {
	Problems []Problem
}

// Error lists the problems, one "path: message" per line.
func (e *ConfigError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Path + ": " + p.Message
	}
	return strings.Join(lines, "\n")
}

// typicalAMR is what a verification of each factor type adds, for judging
// what a step-up would reach (WebAuthn: "hwk" or "swk"; both reach phr).
func typicalAMR(typ string) ([]string, bool) {
	switch typ {
	case mfa.TypeTOTP:
		return []string{mfa.AMROTP}, true
	case mfa.TypeSMS:
		return []string{mfa.AMRSMS}, true
	case mfa.TypeEmail:
		return []string{mfa.AMRMail}, true
	case mfa.TypeRecovery:
		return []string{mfa.AMRRecovery}, true
	case mfa.TypeWebAuthn:
		return []string{mfa.AMRHardware, mfa.AMRPresence}, true
	}
	return nil, false
}

// Policy evaluates a Config. It is safe for concurrent use.
type Policy struct {
	cfg   Config
	types []string // available factor types, sorted
	clock clock.Clock
}

// New checks cfg against the available factor types (the registry's
// Types) and returns the policy, or a *ConfigError listing every problem
// of cfg. A factor type the policy does not know is a plain error.
func New(cfg Config, factorTypes []string, clk clock.Clock) (*Policy, error) {
	for _, t := range factorTypes {
		if _, ok := typicalAMR(t); !ok {
			return nil, fmt.Errorf("policy: factor type %q is unknown to the policy", t)
		}
	}
	types := slices.Compact(slices.Sorted(slices.Values(factorTypes)))
	var problems []Problem
	add := func(path, format string, args ...any) {
		problems = append(problems, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	check := func(path string, r Rule) {
		switch r.Mode {
		case Off, Optional, Required:
		case "":
			add(path+".mode", "required")
		default:
			add(path+".mode", "%q is not one of off, optional, required", r.Mode)
		}
		if r.Mode == Off && len(r.Factors) > 0 {
			add(path+".factors", "only for optional or required")
		}
		for i, f := range r.Factors {
			switch {
			case !slices.Contains(types, f):
				add(fmt.Sprintf("%s.factors[%d]", path, i), "%q is not one of %s", f, strings.Join(types, ", "))
			case slices.Index(r.Factors, f) < i:
				add(fmt.Sprintf("%s.factors[%d]", path, i), "%q is listed twice", f)
			}
		}
		switch {
		case r.MaxAge < 0:
			add(path+".maxAge", "must not be negative")
		case r.MaxAge > 0 && r.Mode == Off:
			add(path+".maxAge", "only for optional or required")
		}
	}
	if !isZero(cfg.Default) {
		check("default", cfg.Default)
	}
	for _, scope := range []struct {
		name  string
		rules map[string]Rule
	}{{"clients", cfg.Clients}, {"connectors", cfg.Connectors}, {"groups", cfg.Groups}} {
		for _, id := range slices.Sorted(maps.Keys(scope.rules)) {
			check(scope.name+"."+id, scope.rules[id])
		}
	}
	if len(problems) > 0 {
		return nil, &ConfigError{Problems: problems}
	}
	if clk == nil {
		clk = clock.Real{}
	}
	return &Policy{cfg: cfg, types: types, clock: clk}, nil
}

func isZero(r Rule) bool {
	return r.Mode == "" && len(r.Factors) == 0 && r.MaxAge == 0 && !r.NoEnrollment
}

// Input is what a decision is made from.
type Input struct {
	ClientID    string
	ConnectorID string
	Groups      []string
	// Enrolled lists the types of the user's usable credentials
	// (confirmed; recovery sets with codes left). Types the policy does
	// not have are ignored.
	Enrolled []string
	// Steps are the session's authentication steps; at least the primary
	// login.
	Steps []mfa.Step
	// ACRValues is the request's acr_values, in order of preference.
	ACRValues []string
}

// Action is what a Decision asks of the broker.
type Action string

// The actions.
const (
	Allow     Action = "allow"
	Challenge Action = "challenge"
	Enroll    Action = "enroll"
	Unmet     Action = "unmet"
)

// Decision is the outcome of Evaluate.
type Decision struct {
	Action Action
	// Factors are the factor types, sorted: for Challenge the enrolled
	// ones any of which to verify, for Enroll the ones any of which to
	// enroll.
	Factors []string
	// Target is the acr level being reached (Allow: the level met), or ""
	// when nothing was asked for.
	Target string
	// Reason says why, safe to show: for Unmet it is the
	// error_description.
	Reason string
}

// effective is the combination of the rules that apply.
type effective struct {
	mode       Mode
	allowed    []string // factor types that count, sorted
	restricted bool     // some rule listed Factors
	maxAge     time.Duration
	noEnroll   bool
}

// combine merges the rules that apply to in, the most restrictive winning.
func (p *Policy) combine(in Input) effective {
	rules := make([]Rule, 0, 3+len(in.Groups))
	if !isZero(p.cfg.Default) {
		rules = append(rules, p.cfg.Default)
	}
	if r, ok := p.cfg.Clients[in.ClientID]; ok {
		rules = append(rules, r)
	}
	if r, ok := p.cfg.Connectors[in.ConnectorID]; ok {
		rules = append(rules, r)
	}
	for _, g := range in.Groups {
		if r, ok := p.cfg.Groups[g]; ok {
			rules = append(rules, r)
		}
	}
	e := effective{mode: Off, allowed: slices.Clone(p.types)}
	for _, r := range rules {
		if r.Mode.rank() > e.mode.rank() {
			e.mode = r.Mode
		}
		if r.NoEnrollment {
			e.noEnroll = true
		}
		if r.Mode == Off {
			continue
		}
		if len(r.Factors) > 0 {
			e.restricted = true
			e.allowed = slices.DeleteFunc(e.allowed, func(t string) bool { return !slices.Contains(r.Factors, t) })
		}
		if r.MaxAge > 0 && (e.maxAge == 0 || r.MaxAge < e.maxAge) {
			e.maxAge = r.MaxAge
		}
	}
	return e
}

// Evaluate decides what the login described by in needs next. The error
// is for a malformed input (no primary login step), not for a refusal,
// which is an Unmet decision.
func (p *Policy) Evaluate(in Input) (Decision, error) {
	if !slices.ContainsFunc(in.Steps, func(s mfa.Step) bool { return s.Factor == "" }) {
		return Decision{}, errors.New("policy: the session has no primary login step")
	}
	e := p.combine(in)
	now := p.clock.Now()
	fresh := func(s mfa.Step) bool { return e.maxAge == 0 || now.Sub(s.At) <= e.maxAge }

	// The steps that count toward what the rules ask.
	var counted []mfa.Step
	verifiedAny := false // a fresh second factor of any type: may enroll another
	for _, s := range in.Steps {
		switch {
		case s.Factor == "":
			if e.restricted {
				s.AMR = slices.DeleteFunc(slices.Clone(s.AMR), func(v string) bool { return v == mfa.AMRMFA })
			}
			counted = append(counted, s)
		case fresh(s):
			verifiedAny = true
			if slices.Contains(e.allowed, s.Factor) {
				counted = append(counted, s)
			}
		}
	}
	have := mfa.ACRFor(mfa.AMR(counted))

	var enrolled, enrolledAllowed []string // available types the user has
	for _, t := range p.types {
		if slices.Contains(in.Enrolled, t) {
			enrolled = append(enrolled, t)
			if slices.Contains(e.allowed, t) {
				enrolledAllowed = append(enrolledAllowed, t)
			}
		}
	}

	need := ""
	if e.mode == Required || (e.mode == Optional && len(enrolledAllowed) > 0) {
		need = mfa.ACRMFA
	}
	var targets []string
	if len(in.ACRValues) == 0 {
		targets = []string{need}
	} else {
		for _, v := range in.ACRValues {
			if mfa.ACRRank(v) < 0 {
				continue
			}
			if mfa.ACRRank(need) > mfa.ACRRank(v) {
				v = need
			}
			if !slices.Contains(targets, v) {
				targets = append(targets, v)
			}
		}
		if len(targets) == 0 {
			return Decision{Action: Unmet, Reason: "none of the requested acr_values is supported"}, nil
		}
	}

	for _, t := range targets {
		if mfa.ACRSatisfies(have, t) {
			return Decision{Action: Allow, Target: t}, nil
		}
	}
	// reaches lists the types of candidates one more verified step of
	// which takes the counted steps to t.
	reaches := func(candidates []string, t string) []string {
		var out []string
		for _, typ := range candidates {
			amr, _ := typicalAMR(typ)
			next := append(slices.Clone(counted), mfa.Step{Factor: typ, AMR: amr, At: now})
			if mfa.ACRSatisfies(mfa.ACRFor(mfa.AMR(next)), t) {
				out = append(out, typ)
			}
		}
		return out
	}
	for _, t := range targets {
		if types := reaches(enrolledAllowed, t); len(types) > 0 {
			return Decision{Action: Challenge, Factors: types, Target: t, Reason: "step-up to " + t}, nil
		}
	}
	enrollable := slices.DeleteFunc(slices.Clone(e.allowed), func(t string) bool { return t == mfa.TypeRecovery })
	for _, t := range targets {
		types := reaches(enrollable, t)
		switch {
		case len(types) == 0:
			continue
		case e.noEnroll:
			return Decision{Action: Unmet, Target: t,
				Reason: "the user has no factor that reaches " + t + " and may not enroll one during login"}, nil
		case len(enrolled) > 0 && !verifiedAny:
			return Decision{Action: Challenge, Factors: enrolled, Target: t,
				Reason: "verify an enrolled factor before enrolling another"}, nil
		}
		return Decision{Action: Enroll, Factors: types, Target: t, Reason: "enroll a factor that reaches " + t}, nil
	}
	return Decision{Action: Unmet, Target: targets[0], Reason: "no factor the policy allows reaches " + targets[0]}, nil
}
