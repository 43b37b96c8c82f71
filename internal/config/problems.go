package config

import (
	"slices"
	"strings"
)

// Problem is one thing wrong with a configuration file. Path is the key path
// ("connectors[2].config.clientID"); it is empty for problems with the
// document as a whole, such as a YAML syntax error. Message never contains a
// secret value.
type Problem struct {
	Path    string
	Message string
}

// String returns "path: message", or the message alone when Path is empty.
func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// Problems is the error Parse and Load return for an invalid configuration:
// every problem found, in file order (problems about keys the file does not
// contain come at the position of their nearest parent that it does contain;
// those with no such parent come first), ties broken by path.
type Problems struct {
	List []Problem
}

// Error lists every problem, one "path: message" per line.
func (p *Problems) Error() string {
	lines := make([]string, len(p.List))
	for i, pr := range p.List {
		lines[i] = pr.String()
	}
	return strings.Join(lines, "\n")
}

// position is a place in the YAML text; the zero value sorts first.
type position struct {
	line, column int
}

// located is a problem with the place it sorts at.
type located struct {
	Problem
	pos position
}

// sortProblems orders problems by position, then path, then message, and
// drops exact duplicates.
func sortProblems(list []located) []Problem {
	slices.SortStableFunc(list, func(a, b located) int {
		if a.pos.line != b.pos.line {
			return a.pos.line - b.pos.line
		}
		if a.pos.column != b.pos.column {
			return a.pos.column - b.pos.column
		}
		if c := comparePaths(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Message, b.Message)
	})
	out := make([]Problem, 0, len(list))
	for _, l := range list {
		if n := len(out); n > 0 && out[n-1] == l.Problem {
			continue
		}
		out = append(out, l.Problem)
	}
	return out
}

// comparePaths compares key paths so that list indexes sort by number
// ("clients[2]" before "clients[10]").
func comparePaths(a, b string) int {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if isDigit(a[i]) && isDigit(b[j]) {
			si, sj := i, j
			for i < len(a) && isDigit(a[i]) {
				i++
			}
			for j < len(b) && isDigit(b[j]) {
				j++
			}
			na := strings.TrimLeft(a[si:i], "0")
			nb := strings.TrimLeft(b[sj:j], "0")
			if len(na) != len(nb) {
				return len(na) - len(nb)
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			continue
		}
		if a[i] != b[j] {
			return int(a[i]) - int(b[j])
		}
		i++
		j++
	}
	return (len(a) - i) - (len(b) - j)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// parentPath strips the last segment of a key path: "a.b[2]" -> "a.b",
// "a.b" -> "a", "a" -> "".
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}
