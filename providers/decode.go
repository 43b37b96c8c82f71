package providers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// ConfigError is returned by a Type's Open for a config Validate refuses.
type ConfigError struct {
	Problems []FieldProblem
}

func (e *ConfigError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return "invalid connector config: " + strings.Join(lines, "; ")
}

// DecodeConfig decodes a connector config object into dst (a pointer to a
// struct whose fields carry json tags) strictly: unknown keys, wrong JSON
// types and a non-object are problems, each with its path, and decoding
// goes on after a problem so all of them come out at once. A JSON null
// leaves the field at its zero value. Field names match the json tag
// exactly (Latchkey's keys are camelCase).
func DecodeConfig(raw json.RawMessage, dst any) []FieldProblem {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		panic("providers.DecodeConfig: dst must be a non-nil pointer")
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = json.RawMessage("{}")
	}
	var probs []FieldProblem
	decodeValue("", raw, v.Elem(), &probs)
	return probs
}

func joinPath(base, key string) string {
	if base == "" {
		return key
	}
	return base + "." + key
}

func isNull(raw json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

func decodeValue(path string, raw json.RawMessage, v reflect.Value, probs *[]FieldProblem) {
	if isNull(raw) {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		decodeValue(path, raw, v.Elem(), probs)
		return
	case reflect.Struct:
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			*probs = append(*probs, FieldProblem{Path: path, Message: "must be an object"})
			return
		}
		fields := structFields(v.Type())
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			idx, ok := fields[k]
			if !ok {
				*probs = append(*probs, FieldProblem{Path: joinPath(path, k), Message: "unknown key"})
				continue
			}
			decodeValue(joinPath(path, k), obj[k], v.FieldByIndex(idx), probs)
		}
		return
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 { // []byte: base64 string
			break
		}
		var arr []json.RawMessage
		if err := json.Unmarshal(raw, &arr); err != nil {
			*probs = append(*probs, FieldProblem{Path: path, Message: "must be a list"})
			return
		}
		s := reflect.MakeSlice(v.Type(), len(arr), len(arr))
		for i, el := range arr {
			decodeValue(fmt.Sprintf("%s[%d]", path, i), el, s.Index(i), probs)
		}
		v.Set(s)
		return
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			break
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			*probs = append(*probs, FieldProblem{Path: path, Message: "must be an object"})
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), len(obj))
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			el := reflect.New(v.Type().Elem()).Elem()
			decodeValue(joinPath(path, k), obj[k], el, probs)
			m.SetMapIndex(reflect.ValueOf(k).Convert(v.Type().Key()), el)
		}
		v.Set(m)
		return
	}
	if err := json.Unmarshal(raw, v.Addr().Interface()); err != nil {
		*probs = append(*probs, FieldProblem{Path: path, Message: typeMessage(v.Type(), err)})
	}
}

// structFields maps json names to field indexes, following embedded
// structs without a tag (their fields are promoted, as in encoding/json).
func structFields(t reflect.Type) map[string][]int {
	out := map[string][]int{}
	var walk func(t reflect.Type, prefix []int)
	walk = func(t reflect.Type, prefix []int) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			idx := append(append([]int(nil), prefix...), i)
			tag := f.Tag.Get("json")
			name, _, _ := strings.Cut(tag, ",")
			if name == "-" {
				continue
			}
			if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
				walk(f.Type, idx)
				continue
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			out[name] = idx
		}
	}
	walk(t, nil)
	return out
}

func typeMessage(t reflect.Type, err error) string {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		return "invalid value"
	}
	switch t.Kind() {
	case reflect.String:
		return "must be a string"
	case reflect.Bool:
		return "must be true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "must be an integer"
	case reflect.Float32, reflect.Float64:
		return "must be a number"
	default:
		return "invalid value"
	}
}

// OpenTyped opens a connector of typ from a typed config (a type's Config
// struct, for tests and callers that build configs in Go): cfg is encoded
// as JSON and goes through typ.Open, so it is validated like a config
// file's. T is the type's connector.
func OpenTyped[T Connector](ctx context.Context, typ Type, info Info, cfg any, deps Deps) (T, error) {
	var zero T
	raw, err := json.Marshal(cfg)
	if err != nil {
		return zero, fmt.Errorf("connector %q: encode config: %w", info.ID, err)
	}
	c, err := typ.Open(ctx, info, raw, deps)
	if err != nil {
		return zero, err
	}
	t, ok := c.(T)
	if !ok {
		return zero, fmt.Errorf("connector %q: Open returned %T", info.ID, c)
	}
	return t, nil
}
