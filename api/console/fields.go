package console

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/latchkeyid/latchkey/api"
)

// Field is one setting of a connector type's config, as the form shows
// it. Kind is "string" (a text box), "bool" (a checkbox), "list" (one
// value per line) or "json" (any other JSON value).
type Field struct {
	Name   string
	Kind   string
	Secret bool
}

// FieldsOf derives a connector type's form from its config struct (the
// type's schema): every JSON-tagged field, in declaration order.
// Embedded structs contribute their fields; secret names are marked.
func FieldsOf(config any, secrets []string) []Field {
	t := reflect.TypeOf(config)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var out []Field
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" {
			out = append(out, FieldsOf(reflect.New(f.Type).Interface(), secrets)...)
			continue
		}
		if name == "" || name == "-" {
			continue
		}
		kind := "json"
		switch {
		case f.Type.Kind() == reflect.String && f.Type.PkgPath() == "":
			kind = "string"
		case f.Type.Kind() == reflect.Bool:
			kind = "bool"
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.String:
			kind = "list"
		}
		secret := false
		for _, s := range secrets {
			secret = secret || s == name
		}
		out = append(out, Field{Name: name, Kind: kind, Secret: secret})
	}
	return out
}

// configFromForm builds a connector config from the form's fields
// ("config.<name>"); empty fields are left out so the type's defaults
// apply. A "json" field that is not JSON is taken as a string.
func configFromForm(fields []Field, get func(string) string) (map[string]any, []api.FieldProblem) {
	cfg := map[string]any{}
	var probs []api.FieldProblem
	for _, f := range fields {
		v := strings.TrimSpace(get("config." + f.Name))
		switch {
		case f.Kind == "bool":
			if v == "true" {
				cfg[f.Name] = true
			}
		case v == "":
		case f.Kind == "string":
			cfg[f.Name] = v
		case f.Kind == "list":
			cfg[f.Name] = lines(v)
		default:
			var x any
			if err := json.Unmarshal([]byte(v), &x); err != nil {
				if strings.ContainsAny(v[:1], "{[") {
					probs = append(probs, api.FieldProblem{Field: "config." + f.Name, Message: fmt.Sprintf("not valid JSON: %v", err)})
					continue
				}
				x = v
			}
			cfg[f.Name] = x
		}
	}
	return cfg, probs
}
