package upstream

import (
	"encoding/json"
	"strconv"
	"strings"
)

// Lookup follows a dotted path ("sub", "user.email", "roles.0") through
// decoded JSON: a segment names a key of an object or, when it is a
// number, an index into a list.
func Lookup(claims map[string]any, path string) (any, bool) {
	if path == "" {
		return nil, false
	}
	var cur any = claims
	for _, seg := range strings.Split(path, ".") {
		switch x := cur.(type) {
		case map[string]any:
			v, ok := x[seg]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			cur = x[i]
		default:
			return nil, false
		}
	}
	return cur, cur != nil
}

// AsString returns a string claim; numbers (a numeric user id) are
// formatted without exponent; anything else is "".
func AsString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	}
	return ""
}

// AsStrings returns a list of strings claim; a single string is a list of
// one; non-string elements are skipped.
func AsStrings(v any) []string {
	switch x := v.(type) {
	case string:
		if x == "" {
			return nil
		}
		return []string{x}
	case []string:
		return append([]string(nil), x...)
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	}
	return nil
}

// AsBool returns a boolean claim; the strings "true" and "false" count
// (some upstreams send email_verified as a string).
func AsBool(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		return strings.EqualFold(x, "true")
	}
	return false
}
