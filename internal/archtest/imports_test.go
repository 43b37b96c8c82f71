package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const modulePath = "github.com/latchkeyid/latchkey"

// Groups of packages the rules talk about. A package's group is the first
// element of its module-relative path ("broker" for broker/token), except
// that internal/config is a group of its own.
const (
	gCmd        = "cmd"
	gWeb        = "web"
	gAPI        = "api"
	gBroker     = "broker"
	gProviders  = "providers"
	gMFA        = "mfa"
	gSession    = "session"
	gWebhook    = "webhook"
	gStorage    = "storage"
	gMigrations = "migrations"
	gConfig     = "internal/config"
	gInternal   = "internal" // every internal/* but internal/config
	gTest       = "test"     // test/e2e and friends
)

// testSupportMay is what test-support packages may import: anything but
// the entry points (cmd, web, api) and internal/config.
var testSupportMay = []string{gBroker, gProviders, gMFA, gSession, gWebhook, gStorage, gMigrations, gInternal, gTest}

// rules is ARCHITECTURE.md "Import rules". The importer is matched by the
// longest path prefix; may lists the groups it may import besides its own.
// anything means every package of the module.
var rules = []struct {
	prefix   string
	anything bool
	may      []string
}{
	{prefix: "cmd", anything: true},
	{prefix: "web", may: []string{gBroker, gSession, gMFA, gProviders, gStorage, gWebhook, gInternal}},
	{prefix: "api", may: []string{gBroker, gSession, gMFA, gProviders, gStorage, gWebhook, gInternal}},
	{prefix: "broker", may: []string{gProviders, gMFA, gSession, gStorage, gWebhook, gInternal}},
	{prefix: "mfa", may: []string{gStorage, gInternal}},
	{prefix: "session", may: []string{gStorage, gInternal}},
	{prefix: "webhook", may: []string{gStorage, gInternal}},
	{prefix: "providers", may: []string{gInternal}},
	{prefix: "storage", may: []string{gMigrations, gInternal}},
	{prefix: "migrations", may: nil},
	{prefix: "internal/config", may: []string{gStorage, gInternal}},
	{prefix: "internal/testenv", may: testSupportMay},
	{prefix: "internal/archtest", may: testSupportMay},
	{prefix: "test", may: testSupportMay},
	{prefix: "bench", may: testSupportMay}, // benchmarks and the load driver
	{prefix: "internal", may: []string{gStorage, gInternal}},
}

// hasPathPrefix reports whether p is prefix or below it.
func hasPathPrefix(p, prefix string) bool {
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}

// groupOf returns the group of a module-relative package path.
func groupOf(rel string) string {
	if hasPathPrefix(rel, gConfig) {
		return gConfig
	}
	first, _, _ := strings.Cut(rel, "/")
	return first
}

// isTestHelper reports whether rel is a package tests anywhere may import:
// the shared fixtures, and any package named *test (providertest, ...)
// outside the entry points.
func isTestHelper(rel string) bool {
	switch groupOf(rel) {
	case gCmd, gWeb, gAPI, gConfig:
		return false
	}
	switch rel {
	case "internal/testenv", "storage/conformance", "providers/providertest":
		return true
	}
	last := rel[strings.LastIndex(rel, "/")+1:]
	return len(last) > len("test") && strings.HasSuffix(last, "test")
}

// checkImport reports whether the package importer may import imported
// (both module-relative; test says the import is only in _test.go files)
// and, when not, why.
func checkImport(importer, imported string, test bool) (ok bool, why string) {
	var may []string
	matched := ""
	anything := false
	for _, r := range rules {
		if hasPathPrefix(importer, r.prefix) && len(r.prefix) > len(matched) {
			matched, may, anything = r.prefix, r.may, r.anything
		}
	}
	if matched == "" {
		return false, fmt.Sprintf("no import rule covers %q: add its place to ARCHITECTURE.md \"Import rules\" and internal/archtest", importer)
	}
	target := groupOf(imported)
	if anything || target == groupOf(importer) || slices.Contains(may, target) {
		return true, ""
	}
	if test && isTestHelper(imported) {
		return true, ""
	}
	allowed := make([]string, 0, len(may))
	for _, g := range may {
		allowed = append(allowed, g+"/...")
	}
	list := strings.Join(allowed, ", ")
	if list == "" {
		list = "nothing of ours"
	}
	why = fmt.Sprintf("%s/... may import only %s (and its own packages)", matched, list)
	if target == gConfig {
		why += "; internal/config is imported by cmd only"
	}
	return false, why
}

// listedPackage is the part of `go list -json` output the test reads.
type listedPackage struct {
	ImportPath     string
	Name           string
	Dir            string
	Imports        []string
	TestImports    []string
	XTestImports   []string
	IgnoredGoFiles []string
	Module         *struct{ Path string }
}

type violation struct {
	importer, imported string
	test               bool
	why                string
}

func (v violation) String() string {
	where := ""
	if v.test {
		where = " (in tests)"
	}
	return fmt.Sprintf("%s imports %s%s: %s", v.importer, v.imported, where, v.why)
}

// relPath returns p relative to the module, or false when p is outside it.
func relPath(p string) (string, bool) {
	if p == modulePath {
		return "", true
	}
	rest, ok := strings.CutPrefix(p, modulePath+"/")
	return rest, ok
}

// violations checks every import of the module's own packages found in
// pkgs, test imports included, and returns all that break a rule, sorted.
func violations(pkgs []listedPackage, extra map[string][]imports) []violation {
	seen := map[violation]bool{}
	var out []violation
	add := func(importer string, list []string, test bool) {
		from, ok := relPath(importer)
		if !ok {
			return
		}
		for _, imp := range list {
			to, ok := relPath(imp)
			if !ok {
				continue // standard library and third-party modules
			}
			if ok, why := checkImport(from, to, test); !ok {
				v := violation{importer: from, imported: to, test: test, why: why}
				if !seen[v] {
					seen[v] = true
					out = append(out, v)
				}
			}
		}
	}
	for _, p := range pkgs {
		add(p.ImportPath, p.Imports, false)
		add(p.ImportPath, p.TestImports, true)
		add(p.ImportPath, p.XTestImports, true)
		for _, e := range extra[p.ImportPath] {
			add(p.ImportPath, e.paths, e.test)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// imports are the import paths of one file outside the current build
// (another GOOS, another build tag), read with go/parser.
type imports struct {
	paths []string
	test  bool
}

// ignoredFileImports parses the package's files that go list left out of
// this build, so that a forbidden import behind a build tag is seen too.
// Files of another package (a `//go:build ignore` generator) are skipped,
// as are files that do not parse.
func ignoredFileImports(p listedPackage) []imports {
	var out []imports
	fset := token.NewFileSet()
	for _, name := range p.IgnoredGoFiles {
		f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.ImportsOnly)
		if err != nil {
			continue
		}
		test := strings.HasSuffix(name, "_test.go")
		pkgName := f.Name.Name
		if p.Name != "" && pkgName != p.Name && !(test && pkgName == p.Name+"_test") {
			continue
		}
		var paths []string
		for _, spec := range f.Imports {
			if s, err := strconv.Unquote(spec.Path.Value); err == nil {
				paths = append(paths, s)
			}
		}
		out = append(out, imports{paths: paths, test: test})
	}
	return out
}

// moduleRoot finds the directory of the module's go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == "/dev/null" || gomod == "NUL" {
		t.Fatalf("go env GOMOD = %q: not inside the module", gomod)
	}
	return filepath.Dir(gomod)
}

// listPackages runs `go list -e -json ./...` at the module root. With -e
// a package that does not compile is still listed with its imports.
func listPackages(t *testing.T) []listedPackage {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "go", "list", "-e",
		"-json=ImportPath,Name,Dir,Imports,TestImports,XTestImports,IgnoredGoFiles,Module", "./...")
	cmd.Dir = moduleRoot(t)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var pkgs []listedPackage
	dec := json.NewDecoder(&stdout)
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v (stderr: %s)", err, stderr.String())
		}
		pkgs = append(pkgs, p)
	}
	if runErr != nil {
		if len(pkgs) == 0 {
			t.Fatalf("go list -e -json ./... in %s: %v\n%s", cmd.Dir, runErr, stderr.String())
		}
		t.Logf("go list -e -json ./... reported %v; checking the %d packages it listed:\n%s", runErr, len(pkgs), stderr.String())
	}
	return pkgs
}

func TestImportRules(t *testing.T) {
	pkgs := listPackages(t)
	self := modulePath + "/internal/archtest"
	found := false
	for _, p := range pkgs {
		if p.ImportPath == self {
			found = true
		}
		if p.Module != nil && p.Module.Path != modulePath {
			t.Fatalf("package %s is in module %q, want %q: update modulePath", p.ImportPath, p.Module.Path, modulePath)
		}
	}
	if !found {
		t.Fatalf("go list did not list %s among %d packages: the test is not looking at this module", self, len(pkgs))
	}
	extra := map[string][]imports{}
	for _, p := range pkgs {
		if len(p.IgnoredGoFiles) > 0 {
			extra[p.ImportPath] = ignoredFileImports(p)
		}
	}
	vs := violations(pkgs, extra)
	if len(vs) == 0 {
		t.Logf("checked the imports of %d packages", len(pkgs))
		return
	}
	lines := make([]string, len(vs))
	for i, v := range vs {
		lines[i] = "  " + v.String()
	}
	t.Errorf("%d import(s) break ARCHITECTURE.md \"Import rules\":\n%s", len(vs), strings.Join(lines, "\n"))
}

func TestCheckImport(t *testing.T) {
	t.Parallel()
	tests := []struct {
		importer, imported string
		test               bool
		want               bool
	}{
		// cmd -> everything
		{"cmd/latchkey", "web", false, true},
		{"cmd/latchkey", "api", false, true},
		{"cmd/latchkey", "internal/config", false, true},
		{"cmd/latchkey", "storage/sqlstore", false, true},
		{"cmd/latchkey/admin", "cmd/latchkey/shared", false, true},
		// web, api
		{"web", "broker", false, true},
		{"web", "broker/oauth2", false, true},
		{"web", "session", false, true},
		{"web", "mfa/totp", false, true},
		{"web", "providers/oidc", false, true},
		{"web", "storage", false, true},
		{"web", "webhook", false, true},
		{"web", "internal/clock", false, true},
		{"web", "web/static", false, true},
		{"web", "api", false, false},
		{"web", "cmd/latchkey", false, false},
		{"web", "internal/config", false, false},
		{"web", "migrations", false, false},
		{"api", "web", false, false},
		{"api", "broker/keys", false, true},
		// broker/...
		{"broker", "broker/oauth2", false, true},
		{"broker/token", "broker/keys", false, true},
		{"broker", "providers", false, true},
		{"broker", "mfa", false, true},
		{"broker", "session", false, true},
		{"broker", "webhook", false, true},
		{"broker/keys", "internal/secretbox", false, true},
		{"broker", "web", false, false},
		{"broker", "api", false, false},
		{"broker", "cmd/latchkey", false, false},
		{"broker", "internal/config", false, false},
		{"broker", "web", true, false},
		// mfa, session, webhook
		{"mfa/totp", "storage", false, true},
		{"mfa/totp", "mfa", false, true},
		{"mfa", "internal/clock", false, true},
		{"mfa", "session", false, false},
		{"session", "mfa", false, false},
		{"mfa", "webhook", false, false},
		{"session", "broker", false, false},
		{"webhook", "storage/sqlstore", false, true},
		{"webhook", "broker", false, false},
		{"webhook", "providers", false, false},
		// providers
		{"providers/oidc", "internal/httpclient", false, true},
		{"providers/oidc", "internal/clock", false, true},
		{"providers/oidc", "providers", false, true},
		{"providers/oidc", "providers/providertest", true, true},
		{"providers/oidc", "storage", false, false},
		{"providers/local", "storage", false, false},
		{"providers/oidc", "broker/oauth2", false, false},
		{"providers/oidc", "session", false, false},
		{"providers/oidc", "web", false, false},
		{"providers/oidc", "mfa", false, false},
		{"providers/oidc", "internal/config", false, false},
		{"providers/oidc", "storage/conformance", true, true},
		{"providers/oidc", "storage/conformance", false, false},
		{"providers/oidc", "storage/memstore", true, false},
		// storage/*, migrations
		{"storage/sqlstore", "storage", false, true},
		{"storage/sqlstore", "migrations", false, true},
		{"storage/sqlstore", "internal/clock", false, true},
		{"storage/sqlstore", "storage/conformance", true, true},
		{"storage/sqlstore", "internal/testenv", true, true},
		{"storage/sqlstore", "broker", false, false},
		{"storage/conformance", "providers", false, false},
		{"migrations", "storage", false, false},
		{"migrations/postgres", "migrations", false, true},
		// internal/*
		{"internal/config", "storage", false, true},
		{"internal/config", "internal/clock", false, true},
		{"internal/config", "internal/config/schema", false, true},
		{"internal/config", "broker", false, false},
		{"internal/httpclient", "internal/clock", false, true},
		{"internal/httpclient", "storage", false, true},
		{"internal/httpclient", "broker", false, false},
		{"internal/httpclient", "providers", false, false},
		{"internal/httpclient", "internal/config", false, false},
		{"internal/logging", "web", false, false},
		// test support
		{"internal/testenv", "storage", false, true},
		{"internal/testenv", "broker/token", false, true},
		{"internal/testenv", "providers/providertest", false, true},
		{"internal/testenv", "web", false, false},
		{"internal/testenv", "internal/config", false, false},
		{"internal/archtest", "cmd/latchkey", true, false},
		{"test/e2e", "storage/sqlstore", true, true},
		{"test/e2e", "web", true, false},
		{"test/e2e", "cmd/latchkey", true, false},
		{"bench", "broker", true, true},
		{"bench", "storage/redisstore", true, true},
		{"bench", "internal/testenv", true, true},
		{"bench", "web", true, false},
		{"bench", "cmd/latchkey", true, false},
		{"bench/load", "broker", false, true},
		{"bench/load", "internal/config", false, false},
		// tests may use helpers, never the entry points of others
		{"mfa/totp", "internal/testenv", true, true},
		{"mfa/totp", "mfa/mfatest", true, true},
		{"session", "providers/providertest", true, true},
		{"session", "providers/providertest", false, false},
		{"web", "web", true, true},
		{"web/static", "web", true, true},
		{"broker", "web/webtest", true, false},
		{"mfa", "cmd/latchkey", true, false},
		{"storage", "api", true, false},
		// places with no rule
		{"tools/gen", "storage", false, false},
		{"", "storage", false, false},
		{"broker", "tools/gen", false, false},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%s->%s", tt.importer, tt.imported)
		if tt.test {
			name += "(test)"
		}
		t.Run(name, func(t *testing.T) {
			ok, why := checkImport(tt.importer, tt.imported, tt.test)
			if ok != tt.want {
				t.Fatalf("checkImport(%q, %q, test=%v) = %v (%s), want %v", tt.importer, tt.imported, tt.test, ok, why, tt.want)
			}
			if ok != (why == "") {
				t.Errorf("checkImport(%q, %q) = %v with reason %q: a refusal needs a reason, an allowed import none", tt.importer, tt.imported, ok, why)
			}
		})
	}
}

func TestViolationsReportsEveryOne(t *testing.T) {
	t.Parallel()
	m := func(rel string) string { return modulePath + "/" + rel }
	pkgs := []listedPackage{
		{ImportPath: m("web"), Imports: []string{"net/http", m("broker"), m("api"), "github.com/go-jose/go-jose/v4"}},
		{ImportPath: m("providers/oidc"), Imports: []string{m("internal/httpclient"), m("storage")},
			XTestImports: []string{m("providers/oidc"), m("storage/conformance"), m("web")}},
		{ImportPath: m("broker"), Imports: []string{m("internal/config"), m("internal/config")}},
		{ImportPath: m("storage/sqlstore"), Imports: []string{m("storage")}},
		{ImportPath: "example.com/other/pkg", Imports: []string{m("web")}},
	}
	extra := map[string][]imports{
		m("storage/sqlstore"): {{paths: []string{m("broker")}}},
	}
	got := violations(pkgs, extra)
	want := []violation{
		{importer: "broker", imported: "internal/config"},
		{importer: "providers/oidc", imported: "storage"},
		{importer: "providers/oidc", imported: "web", test: true},
		{importer: "storage/sqlstore", imported: "broker"},
		{importer: "web", imported: "api"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d violations, want %d:\n%v", len(got), len(want), got)
	}
	for i := range want {
		g := got[i]
		if g.importer != want[i].importer || g.imported != want[i].imported || g.test != want[i].test || g.why == "" {
			t.Errorf("violation %d = %+v, want %+v with a reason", i, g, want[i])
		}
	}
	wantLine := `providers/oidc imports storage: providers/... may import only internal/... (and its own packages)`
	if s := got[1].String(); s != wantLine {
		t.Errorf("line = %q, want %q", s, wantLine)
	}
}

func TestIgnoredFileImports(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := map[string]string{
		"x_windows.go":      "//go:build windows\n\npackage x\n\nimport \"" + modulePath + "/web\"\n",
		"x_windows_test.go": "//go:build windows\n\npackage x_test\n\nimport (\n\t\"testing\"\n\t\"" + modulePath + "/api\"\n)\n",
		"gen.go":            "//go:build ignore\n\npackage main\n\nimport \"" + modulePath + "/cmd/latchkey\"\n",
		"broken.go":         "//go:build ignore\n\npackage x\n\nimport (\n",
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatalf("write %s: %v", name, err)
		}
	}
	p := listedPackage{ImportPath: modulePath + "/broker/x", Name: "x", Dir: dir,
		IgnoredGoFiles: []string{"broken.go", "gen.go", "x_windows.go", "x_windows_test.go"}}
	got := ignoredFileImports(p)
	want := []imports{
		{paths: []string{modulePath + "/web"}},
		{paths: []string{"testing", modulePath + "/api"}, test: true},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if !slices.Equal(got[i].paths, want[i].paths) || got[i].test != want[i].test {
			t.Errorf("file %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	vs := violations([]listedPackage{p}, map[string][]imports{p.ImportPath: got})
	if len(vs) != 2 || vs[0].imported != "api" || !vs[0].test || vs[1].imported != "web" || vs[1].test {
		t.Errorf("violations = %v, want broker/x -> api (test) and broker/x -> web", vs)
	}
}
