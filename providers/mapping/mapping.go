package mapping

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/ext"

	"github.com/latchkeyid/latchkey/providers"
)

// CostLimit bounds the CEL cost of one evaluation (roughly: one unit per
// value visited), so claims crafted upstream cannot make an expression run
// long.
const CostLimit = 100_000

// MaxExpressionLength bounds an expression's source, in bytes.
const MaxExpressionLength = 4096

// DefaultNotAllowedReason is the reason given when allow rules exist and
// none matched, unless notAllowedReason is set.
const DefaultNotAllowedReason = "Your account is not allowed to sign in here."

// Config is the mapping part of a connector's config.
type Config struct {
	ClaimMapping     ClaimMapping `json:"claimMapping"`
	Allow            []string     `json:"allow"`
	Deny             []Rule       `json:"deny"`
	NotAllowedReason string       `json:"notAllowedReason"`
}

// ClaimMapping holds one optional expression per Latchkey claim.
type ClaimMapping struct {
	Email    string `json:"email"`
	Name     string `json:"name"`
	Username string `json:"username"`
	Groups   string `json:"groups"`
}

// Rule is a deny rule: when Expr is true the user is refused with Reason.
type Rule struct {
	Expr   string `json:"expr"`
	Reason string `json:"reason"`
}

// Options are the connector's settings that change how mapping applies.
type Options struct {
	// TrustEmail keeps emailVerified when claimMapping.email changes the
	// address (the connector's trustEmail).
	TrustEmail bool
}

type program struct {
	path string
	prg  cel.Program
}

type denyRule struct {
	program
	reason string
}

// Mapper applies a compiled Config. It is safe for concurrent use.
type Mapper struct {
	email, name, username, groups *program
	allow                         []program
	deny                          []denyRule
	notAllowed                    string
	opts                          Options
}

// Compile type-checks every expression of cfg. Problem paths are relative
// to the connector's config ("claimMapping.email", "allow[0]",
// "deny[1].expr"). A nil Mapper is returned with problems.
func Compile(cfg Config, opts Options) (*Mapper, []providers.FieldProblem) {
	var probs []providers.FieldProblem
	mapEnv, err := cel.NewEnv(baseOptions(cel.Variable("claims", cel.MapType(cel.StringType, cel.DynType)))...)
	if err != nil {
		return nil, []providers.FieldProblem{{Message: fmt.Sprintf("CEL environment: %v", err)}}
	}
	ruleEnv, err := cel.NewEnv(baseOptions(
		cel.Variable("claims", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("subject", cel.StringType),
		cel.Variable("email", cel.StringType),
		cel.Variable("emailVerified", cel.BoolType),
		cel.Variable("name", cel.StringType),
		cel.Variable("username", cel.StringType),
		cel.Variable("groups", cel.ListType(cel.StringType)),
	)...)
	if err != nil {
		return nil, []providers.FieldProblem{{Message: fmt.Sprintf("CEL environment: %v", err)}}
	}

	m := &Mapper{notAllowed: cfg.NotAllowedReason, opts: opts}
	if m.notAllowed == "" {
		m.notAllowed = DefaultNotAllowedReason
	}
	compile := func(env *cel.Env, path, src string, want func(*cel.Type) bool, wantName string) *program {
		if len(src) > MaxExpressionLength {
			probs = append(probs, providers.FieldProblem{Path: path, Message: fmt.Sprintf("longer than %d bytes", MaxExpressionLength)})
			return nil
		}
		ast, iss := env.Compile(src)
		if iss != nil && iss.Err() != nil {
			probs = append(probs, providers.FieldProblem{Path: path, Message: "does not compile: " + compactIssues(iss.Err())})
			return nil
		}
		if out := ast.OutputType(); !want(out) {
			probs = append(probs, providers.FieldProblem{Path: path, Message: fmt.Sprintf("must be of type %s, not %s", wantName, out)})
			return nil
		}
		prg, err := env.Program(ast, cel.CostLimit(CostLimit), cel.InterruptCheckFrequency(100))
		if err != nil {
			probs = append(probs, providers.FieldProblem{Path: path, Message: fmt.Sprintf("cannot build program: %v", err)})
			return nil
		}
		return &program{path: path, prg: prg}
	}
	optional := func(path, src string, want func(*cel.Type) bool, wantName string) *program {
		if strings.TrimSpace(src) == "" {
			return nil
		}
		return compile(mapEnv, path, src, want, wantName)
	}
	m.email = optional("claimMapping.email", cfg.ClaimMapping.Email, isStringish, "string")
	m.name = optional("claimMapping.name", cfg.ClaimMapping.Name, isStringish, "string")
	m.username = optional("claimMapping.username", cfg.ClaimMapping.Username, isStringish, "string")
	m.groups = optional("claimMapping.groups", cfg.ClaimMapping.Groups, isStringList, "list(string)")

	for i, src := range cfg.Allow {
		path := fmt.Sprintf("allow[%d]", i)
		if strings.TrimSpace(src) == "" {
			probs = append(probs, providers.FieldProblem{Path: path, Message: "required"})
			continue
		}
		if p := compile(ruleEnv, path, src, isBoolish, "bool"); p != nil {
			m.allow = append(m.allow, *p)
		}
	}
	for i, r := range cfg.Deny {
		path := fmt.Sprintf("deny[%d]", i)
		if strings.TrimSpace(r.Reason) == "" {
			probs = append(probs, providers.FieldProblem{Path: path + ".reason", Message: "required"})
		}
		if strings.TrimSpace(r.Expr) == "" {
			probs = append(probs, providers.FieldProblem{Path: path + ".expr", Message: "required"})
			continue
		}
		if p := compile(ruleEnv, path+".expr", r.Expr, isBoolish, "bool"); p != nil {
			m.deny = append(m.deny, denyRule{program: *p, reason: r.Reason})
		}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return m, nil
}

func baseOptions(vars ...cel.EnvOption) []cel.EnvOption {
	return append(vars,
		ext.Strings(),
		ext.Sets(),
		cel.OptionalTypes(),
		cel.CrossTypeNumericComparisons(true),
		cel.ParserExpressionSizeLimit(MaxExpressionLength),
	)
}

func isDyn(t *cel.Type) bool { return t.Kind() == types.DynKind || t.Kind() == types.AnyKind }

func isStringish(t *cel.Type) bool { return isDyn(t) || t.Kind() == types.StringKind }

func isBoolish(t *cel.Type) bool { return isDyn(t) || t.Kind() == types.BoolKind }

func isStringList(t *cel.Type) bool {
	if isDyn(t) {
		return true
	}
	if t.Kind() != types.ListKind || len(t.Parameters()) != 1 {
		return false
	}
	return isStringish(t.Parameters()[0])
}

// compactIssues turns CEL's multi-line error report (with source excerpts
// and carets) into one line per issue joined by "; ".
func compactIssues(err error) string {
	var out []string
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "ERROR: <input>:"); ok {
			out = append(out, rest)
		}
	}
	if len(out) == 0 {
		return err.Error()
	}
	return strings.Join(out, "; ")
}

// Apply maps claims into id and then applies the deny and allow rules. It
// returns a *providers.DeniedError when a rule refuses the user and
// another error when an expression fails to evaluate (the login must then
// fail: the mapping cannot be trusted half-done).
func (m *Mapper) Apply(ctx context.Context, claims map[string]any, id *providers.Identity) error {
	if m == nil {
		return nil
	}
	c, _ := Normalize(claims).(map[string]any)
	if c == nil {
		c = map[string]any{}
	}
	vars := map[string]any{"claims": c}
	if m.email != nil {
		s, err := m.evalString(ctx, m.email, vars)
		if err != nil {
			return err
		}
		if s != id.Email && !m.opts.TrustEmail {
			id.EmailVerified = false
		}
		id.Email = s
	}
	if m.name != nil {
		s, err := m.evalString(ctx, m.name, vars)
		if err != nil {
			return err
		}
		id.Name = s
	}
	if m.username != nil {
		s, err := m.evalString(ctx, m.username, vars)
		if err != nil {
			return err
		}
		id.Username = s
	}
	if m.groups != nil {
		g, err := m.evalStrings(ctx, m.groups, vars)
		if err != nil {
			return err
		}
		id.Groups = g
	}
	if len(m.deny) == 0 && len(m.allow) == 0 {
		return nil
	}
	groups := id.Groups
	if groups == nil {
		groups = []string{}
	}
	ruleVars := map[string]any{
		"claims":        c,
		"subject":       id.Subject,
		"email":         id.Email,
		"emailVerified": id.EmailVerified,
		"name":          id.Name,
		"username":      id.Username,
		"groups":        groups,
	}
	for _, r := range m.deny {
		ok, err := m.evalBool(ctx, &r.program, ruleVars)
		if err != nil {
			return err
		}
		if ok {
			return &providers.DeniedError{Reason: r.reason}
		}
	}
	if len(m.allow) == 0 {
		return nil
	}
	for i := range m.allow {
		ok, err := m.evalBool(ctx, &m.allow[i], ruleVars)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
	}
	return &providers.DeniedError{Reason: m.notAllowed}
}

func (m *Mapper) eval(ctx context.Context, p *program, vars map[string]any) (ref.Val, error) {
	v, _, err := p.prg.ContextEval(ctx, vars)
	if err != nil {
		return nil, fmt.Errorf("mapping: evaluate %s: %w", p.path, err)
	}
	return v, nil
}

func (m *Mapper) evalString(ctx context.Context, p *program, vars map[string]any) (string, error) {
	v, err := m.eval(ctx, p, vars)
	if err != nil {
		return "", err
	}
	switch x := v.Value().(type) {
	case string:
		return x, nil
	case nil:
		return "", nil
	}
	if v == types.NullValue {
		return "", nil
	}
	return "", fmt.Errorf("mapping: evaluate %s: got %s, want string", p.path, v.Type().TypeName())
}

func (m *Mapper) evalStrings(ctx context.Context, p *program, vars map[string]any) ([]string, error) {
	v, err := m.eval(ctx, p, vars)
	if err != nil {
		return nil, err
	}
	if v == types.NullValue {
		return nil, nil
	}
	native, err := v.ConvertToNative(reflect.TypeOf([]string{}))
	if err != nil {
		return nil, fmt.Errorf("mapping: evaluate %s: got %s, want list(string)", p.path, v.Type().TypeName())
	}
	return native.([]string), nil
}

func (m *Mapper) evalBool(ctx context.Context, p *program, vars map[string]any) (bool, error) {
	v, err := m.eval(ctx, p, vars)
	if err != nil {
		return false, err
	}
	b, ok := v.Value().(bool)
	if !ok {
		return false, fmt.Errorf("mapping: evaluate %s: got %s, want bool", p.path, v.Type().TypeName())
	}
	return b, nil
}

// Normalize turns JSON values decoded with UseNumber into the types CEL
// understands: json.Number becomes int64 when it is an integer that fits,
// else float64; maps and lists are converted recursively.
func Normalize(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, err := x.Float64()
		if err != nil || math.IsInf(f, 0) {
			return x.String()
		}
		return f
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = Normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = Normalize(e)
		}
		return out
	}
	return v
}
