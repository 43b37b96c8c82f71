package config

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// maxNodes bounds the nodes one document may expand to through aliases
// ("billion laughs"); real configurations have a few hundred.
const maxNodes = 100_000

// decoder turns a yaml.Node tree into Go values by reflection, reporting
// every unknown key, duplicate key and type error with its key path instead
// of stopping at the first. Struct fields are matched by their yaml tag.
type decoder struct {
	problems []located
	// positions maps each decoded key path to where it is in the file.
	positions map[string]position
	// present holds the key paths the file set to a non-null value that
	// decoded; applyDefaults fills the others.
	present map[string]bool
	// substituted marks nodes whose value came from an ${ENV} or file:
	// reference; their values are never quoted in problems.
	substituted map[*yaml.Node]bool
	// refs holds the key paths decoded from such nodes.
	refs map[string]bool
	// active holds the alias targets being decoded, to stop cycles.
	active    map[*yaml.Node]bool
	nodes     int
	exhausted bool
}

func newDecoder() *decoder {
	return &decoder{
		positions:   map[string]position{"": {}},
		present:     map[string]bool{},
		substituted: map[*yaml.Node]bool{},
		refs:        map[string]bool{},
		active:      map[*yaml.Node]bool{},
	}
}

func (d *decoder) add(path string, n *yaml.Node, format string, args ...any) {
	pos := position{}
	if n != nil {
		pos = position{line: n.Line, column: n.Column}
	}
	d.problems = append(d.problems, located{Problem: Problem{Path: path, Message: fmt.Sprintf(format, args...)}, pos: pos})
}

// positionOf returns where path, or its nearest parent present in the
// file, is.
func (d *decoder) positionOf(path string) position {
	for {
		if pos, ok := d.positions[path]; ok {
			return pos
		}
		if path == "" {
			return position{}
		}
		path = parentPath(path)
	}
}

func (d *decoder) mark(path string, n *yaml.Node) {
	if _, ok := d.positions[path]; !ok && n != nil {
		d.positions[path] = position{line: n.Line, column: n.Column}
	}
}

// visit counts a node against maxNodes and reports whether decoding may go
// on.
func (d *decoder) visit() bool {
	if d.exhausted {
		return false
	}
	d.nodes++
	if d.nodes > maxNodes {
		d.exhausted = true
		d.add("", nil, "the document expands to more than %d nodes (aliases?)", maxNodes)
		return false
	}
	return true
}

// follow resolves an alias node to its target, reporting an alias that
// contains itself. The caller must call release(target) when done if ok.
func (d *decoder) follow(n *yaml.Node, path string) (target *yaml.Node, ok bool) {
	if n.Kind != yaml.AliasNode {
		return n, true
	}
	t := n.Alias
	if t == nil {
		d.add(path, n, "alias to an unknown anchor")
		return nil, false
	}
	if d.active[t] {
		d.add(path, n, "alias *%s refers to a value that contains it", n.Value)
		return nil, false
	}
	if t.Kind == yaml.AliasNode {
		return d.follow(t, path)
	}
	d.active[t] = true
	return t, true
}

func (d *decoder) release(orig, target *yaml.Node) {
	if orig != target {
		delete(d.active, target)
	}
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func joinIndex(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return "a scalar"
	}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// shown quotes a scalar for a problem message, unless it came from a
// reference (it may be a secret).
func (d *decoder) shown(n *yaml.Node) string {
	if d.substituted[n] {
		return "the referenced value"
	}
	v := n.Value
	if utf8.RuneCountInString(v) > 64 {
		v = string([]rune(v)[:64]) + "..."
	}
	return strconv.Quote(v)
}

// pair is one key and value of a mapping, merge keys applied.
type pair struct {
	key     string
	keyNode *yaml.Node
	value   *yaml.Node
}

// pairs lists a mapping's entries in file order. Keys from merge keys
// ("<<: *base") come after the mapping's own and never override them.
// Duplicate and non-scalar keys are problems.
func (d *decoder) pairs(n *yaml.Node, path string) []pair {
	var own, merged []pair
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if !d.visit() {
			return nil
		}
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, d.mergePairs(v, path)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.add(path, k, "mapping keys must be strings, got %s", kindName(k))
			continue
		}
		if prev, dup := seen[k.Value]; dup {
			d.add(joinKey(path, k.Value), k, "duplicate key (first defined on line %d)", prev.Line)
			continue
		}
		seen[k.Value] = k
		own = append(own, pair{key: k.Value, keyNode: k, value: v})
	}
	for _, p := range merged {
		if _, dup := seen[p.key]; !dup {
			seen[p.key] = p.keyNode
			own = append(own, p)
		}
	}
	return own
}

func (d *decoder) mergePairs(v *yaml.Node, path string) []pair {
	t, ok := d.follow(v, path)
	if !ok {
		return nil
	}
	defer d.release(v, t)
	switch t.Kind {
	case yaml.MappingNode:
		return d.pairs(t, path)
	case yaml.SequenceNode:
		var out []pair
		for _, e := range t.Content {
			et, ok := d.follow(e, path)
			if !ok {
				continue
			}
			if et.Kind == yaml.MappingNode {
				out = append(out, d.pairs(et, path)...)
			} else {
				d.add(path, e, "a merge key (<<) takes a mapping or a list of mappings")
			}
			d.release(e, et)
		}
		return out
	default:
		d.add(path, v, "a merge key (<<) takes a mapping or a list of mappings")
		return nil
	}
}

// decodeDocument decodes the document's root mapping into cfg.
func (d *decoder) decodeDocument(root *yaml.Node, cfg *Config) {
	if isNull(root) {
		return
	}
	d.decode(root, reflect.ValueOf(cfg).Elem(), "")
}

// decode decodes n into v at key path path. A null value leaves v as it is
// (so the default applies), except that it selects an optional section
// (`sqlite:` alone means SQLite with defaults).
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if !d.visit() {
		return
	}
	d.mark(path, n)
	t, ok := d.follow(n, path)
	if !ok {
		return
	}
	defer d.release(n, t)
	if d.substituted[t] {
		d.refs[path] = true
	}
	if isNull(t) {
		if v.Kind() == reflect.Pointer && v.Type().Elem().Kind() == reflect.Struct && v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
			d.present[path] = true
		}
		return
	}
	if d.decodeValue(t, v, path) {
		d.present[path] = true
	}
}

// decodeValue decodes a non-null node and reports whether it succeeded.
func (d *decoder) decodeValue(n *yaml.Node, v reflect.Value, path string) bool {
	switch v.Type() {
	case reflect.TypeFor[time.Duration]():
		return d.scalar(n, path, "duration", func(s string) bool {
			dur, err := parseDuration(s)
			v.SetInt(int64(dur))
			return err == nil
		})
	case reflect.TypeFor[ByteSize]():
		return d.scalar(n, path, "size", func(s string) bool {
			size, err := parseByteSize(s)
			v.SetInt(int64(size))
			return err == nil
		})
	case reflect.TypeFor[netip.Prefix]():
		return d.prefix(n, v, path)
	case reflect.TypeFor[SecretBytes]():
		if n.Kind != yaml.ScalarNode {
			d.add(path, n, "expected a string, got %s", kindName(n))
			return false
		}
		b, err := decodeBase64(n.Value)
		if err != nil {
			d.add(path, n, "must be base64 (standard or URL alphabet, padding optional)")
			return false
		}
		v.SetBytes(b)
		return true
	case reflect.TypeFor[json.RawMessage]():
		raw, ok := d.toJSON(n, path)
		if ok {
			v.SetBytes(raw)
		}
		return ok
	case reflect.TypeFor[ConnectorSettings]():
		if n.Kind != yaml.MappingNode {
			d.add(path, n, "expected a mapping, got %s", kindName(n))
			return false
		}
		raw, ok := d.toJSON(n, path)
		if ok {
			v.Set(reflect.ValueOf(ConnectorSettings{raw: raw}))
		}
		return ok
	}

	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return d.decodeValue(n, v.Elem(), path)
	case reflect.Struct:
		return d.structure(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.add(path, n, "expected a list, got %s", kindName(n))
			return false
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, e := range n.Content {
			d.decode(e, s.Index(i), joinIndex(path, i))
		}
		v.Set(s)
		return true
	case reflect.Map:
		// A mapping with string keys (mfa.policy.clients and friends).
		if n.Kind != yaml.MappingNode || v.Type().Key().Kind() != reflect.String {
			d.add(path, n, "expected a mapping, got %s", kindName(n))
			return false
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			e := reflect.New(v.Type().Elem()).Elem()
			d.decode(n.Content[i+1], e, joinKey(path, k))
			m.SetMapIndex(reflect.ValueOf(k).Convert(v.Type().Key()), e)
		}
		v.Set(m)
		return true
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.add(path, n, "expected a string, got %s", kindName(n))
			return false
		}
		v.SetString(n.Value)
		return true
	case reflect.Bool:
		return d.scalar(n, path, "bool", func(s string) bool {
			b, ok := parseBool(s)
			v.SetBool(b)
			return ok
		})
	case reflect.Int, reflect.Int64:
		return d.scalar(n, path, "integer", func(s string) bool {
			i, err := strconv.ParseInt(s, 0, 64)
			v.SetInt(i)
			return err == nil
		})
	default:
		// Every field type of Config is handled above.
		panic(fmt.Sprintf("config: no decoder for %s", v.Type()))
	}
}

// scalar decodes a scalar with parse, reporting `cannot decode "x" as what`.
func (d *decoder) scalar(n *yaml.Node, path, what string, parse func(string) bool) bool {
	if n.Kind != yaml.ScalarNode {
		d.add(path, n, "expected a %s, got %s", what, kindName(n))
		return false
	}
	if !parse(strings.TrimSpace(n.Value)) {
		d.add(path, n, "cannot decode %s as %s", d.shown(n), what)
		return false
	}
	return true
}

func (d *decoder) prefix(n *yaml.Node, v reflect.Value, path string) bool {
	if n.Kind != yaml.ScalarNode {
		d.add(path, n, "expected a CIDR, got %s", kindName(n))
		return false
	}
	p, err := netip.ParsePrefix(strings.TrimSpace(n.Value))
	if err != nil {
		d.add(path, n, "cannot decode %s as CIDR (like 10.0.0.0/8 or fd00::/8)", d.shown(n))
		return false
	}
	if p.Masked() != p {
		d.add(path, n, "%s has bits set after the prefix length (did you mean %q?)", d.shown(n), p.Masked().String())
		return false
	}
	v.Set(reflect.ValueOf(p))
	return true
}

// structure decodes a mapping into a struct by yaml tag; other keys are
// "unknown key" problems.
func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) bool {
	if n.Kind != yaml.MappingNode {
		d.add(path, n, "expected a mapping, got %s", kindName(n))
		return false
	}
	fields := map[string]int{}
	for i := range v.NumField() {
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			fields[name] = i
		}
	}
	for _, p := range d.pairs(n, path) {
		key := joinKey(path, p.key)
		i, ok := fields[p.key]
		if !ok {
			d.add(key, p.keyNode, "unknown key")
			continue
		}
		d.mark(key, p.keyNode)
		d.decode(p.value, v.Field(i), key)
	}
	return true
}

// toJSON converts a free-form YAML value (a connector's config, a client's
// jwks) to JSON, keeping string values from references as strings.
func (d *decoder) toJSON(n *yaml.Node, path string) (json.RawMessage, bool) {
	before := len(d.problems)
	val := d.toAny(n, path)
	if len(d.problems) > before || d.exhausted {
		return nil, false
	}
	raw, err := json.Marshal(val)
	if err != nil {
		d.add(path, n, "cannot be represented as JSON")
		return nil, false
	}
	return raw, true
}

func (d *decoder) toAny(n *yaml.Node, path string) any {
	if !d.visit() {
		return nil
	}
	d.mark(path, n)
	t, ok := d.follow(n, path)
	if !ok {
		return nil
	}
	defer d.release(n, t)
	switch t.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		for _, p := range d.pairs(t, path) {
			key := joinKey(path, p.key)
			d.mark(key, p.keyNode)
			m[p.key] = d.toAny(p.value, key)
		}
		return m
	case yaml.SequenceNode:
		s := make([]any, len(t.Content))
		for i, e := range t.Content {
			s[i] = d.toAny(e, joinIndex(path, i))
		}
		return s
	case yaml.ScalarNode:
		if d.substituted[t] {
			return t.Value
		}
		switch t.ShortTag() {
		case "!!str", "!!binary", "!!timestamp":
			return t.Value
		case "!!null":
			return nil
		}
		var val any
		if err := t.Decode(&val); err != nil {
			d.add(path, t, "cannot decode %s as %s", d.shown(t), t.ShortTag())
			return nil
		}
		if f, ok := val.(float64); ok && (math.IsInf(f, 0) || math.IsNaN(f)) {
			d.add(path, t, "%s cannot be represented as JSON", d.shown(t))
			return nil
		}
		return val
	default:
		d.add(path, t, "unexpected YAML node")
		return nil
	}
}

func parseBool(s string) (value, ok bool) {
	switch strings.ToLower(s) {
	case "true", "yes", "on":
		return true, true
	case "false", "no", "off":
		return false, true
	}
	return false, false
}
