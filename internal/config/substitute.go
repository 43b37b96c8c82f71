package config

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxSecretFileBytes bounds a file: reference's file.
const maxSecretFileBytes = 1 << 20

// expand replaces references in every scalar value (not key) of the tree,
// in place: ${NAME} by the environment variable NAME (anywhere in the
// string; $${ is a literal ${), and a value starting with file: (but not
// file://) by the named file's contents minus one trailing newline. The
// path after file: may itself contain ${NAME}. Expanded nodes become
// strings and are marked in d.substituted. A reference that cannot be
// expanded is a problem, and its node becomes null so that decoding does
// not report it a second time.
func expand(d *decoder, n *yaml.Node, path string, env func(string) (string, bool), baseDir string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			expand(d, c, path, env, baseDir)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			expand(d, c, joinIndex(path, i), env, baseDir)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := path
			if !(k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge") {
				p = joinKey(path, k.Value)
			}
			expand(d, v, p, env, baseDir)
		}
	case yaml.ScalarNode:
		expandScalar(d, n, path, env, baseDir)
	}
}

func expandScalar(d *decoder, n *yaml.Node, path string, env func(string) (string, bool), baseDir string) {
	v := n.Value
	if rest, ok := strings.CutPrefix(v, "file:"); ok && !strings.HasPrefix(rest, "//") {
		name, ok, _ := expandEnv(d, n, path, rest, env)
		if !ok {
			setNull(n)
			return
		}
		content, ok := readSecretFile(d, n, path, name, baseDir)
		if !ok {
			setNull(n)
			return
		}
		setString(n, content)
		d.substituted[n] = true
		return
	}
	if !strings.Contains(v, "$") {
		return
	}
	out, ok, referenced := expandEnv(d, n, path, v, env)
	switch {
	case !ok:
		setNull(n)
	case out != v:
		setString(n, out)
		if referenced {
			d.substituted[n] = true
		}
	}
}

func setString(n *yaml.Node, v string) {
	n.Value, n.Tag, n.Style = v, "!!str", 0
}

func setNull(n *yaml.Node) {
	n.Value, n.Tag, n.Style = "", "!!null", 0
}

// expandEnv replaces ${NAME} references and $${ escapes in s. It reports
// every unset variable in s, and whether any reference was replaced.
func expandEnv(d *decoder, n *yaml.Node, path, s string, env func(string) (string, bool)) (out string, ok, referenced bool) {
	var b strings.Builder
	ok = true
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "$${") {
			b.WriteString("${")
			i += 3
			continue
		}
		if !strings.HasPrefix(s[i:], "${") {
			b.WriteByte(s[i])
			i++
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			d.add(path, n, "unterminated ${ reference (write $${ for a literal ${)")
			return "", false, referenced
		}
		name := s[i+2 : i+2+end]
		i += 2 + end + 1
		if !isEnvName(name) {
			d.add(path, n, "invalid environment variable name %s in ${...} (write $${ for a literal ${)", quoteShort(name))
			ok = false
			continue
		}
		val, set := env(name)
		if !set {
			d.add(path, n, "environment variable %s is not set", name)
			ok = false
			continue
		}
		b.WriteString(val)
		referenced = true
	}
	return b.String(), ok, referenced
}

func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
		if !letter && (i == 0 || !isDigit(c)) {
			return false
		}
	}
	return true
}

func quoteShort(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strconv.Quote(s)
}

// readSecretFile reads a file: reference. Problems name the file, never its
// contents.
func readSecretFile(d *decoder, n *yaml.Node, path, name, baseDir string) (string, bool) {
	if name == "" {
		d.add(path, n, "file: reference without a file name")
		return "", false
	}
	if !filepath.IsAbs(name) {
		name = filepath.Join(baseDir, name)
	}
	fail := func(err error) (string, bool) {
		d.add(path, n, "cannot read file %s: %v", strconv.Quote(name), unwrapPathError(err))
		return "", false
	}
	info, err := os.Stat(name)
	if err != nil {
		return fail(err)
	}
	if !info.Mode().IsRegular() {
		d.add(path, n, "file %s is not a regular file", strconv.Quote(name))
		return "", false
	}
	f, err := os.Open(name)
	if err != nil {
		return fail(err)
	}
	defer func() { _ = f.Close() }()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFileBytes+1))
	if err != nil {
		return fail(err)
	}
	if len(data) > maxSecretFileBytes {
		d.add(path, n, "file %s is larger than 1 MiB", strconv.Quote(name))
		return "", false
	}
	s := string(data)
	if t, ok := strings.CutSuffix(s, "\n"); ok {
		s = strings.TrimSuffix(t, "\r")
	}
	return s, true
}

// unwrapPathError drops the *fs.PathError wrapper, whose text repeats the
// file name the caller already quotes.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
