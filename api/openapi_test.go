package api

import (
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// loadSpec parses and validates openapi.yaml.
func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(OpenAPI)
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("openapi.yaml is not valid: %v", err)
	}
	return doc
}

// TestRoutesMatchDocument holds the router's routes and the document's
// operations equal, both ways.
func TestRoutesMatchDocument(t *testing.T) {
	doc := loadSpec(t)
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi = %q, want 3.1", doc.OpenAPI)
	}
	var inDoc []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			inDoc = append(inDoc, method+" "+path)
		}
	}
	s := &Server{}
	var inRouter []string
	for _, rt := range s.routes() {
		inRouter = append(inRouter, rt.Method+" "+rt.Path)
	}
	slices.Sort(inDoc)
	slices.Sort(inRouter)
	for _, r := range inRouter {
		if !slices.Contains(inDoc, r) {
			t.Errorf("route %s is not in openapi.yaml", r)
		}
	}
	for _, d := range inDoc {
		if !slices.Contains(inRouter, d) {
			t.Errorf("openapi.yaml has %s, the router does not", d)
		}
	}
	// Every operation names its scope in its summary, as the router does.
	for _, rt := range s.routes() {
		op := doc.Paths.Find(rt.Path).GetOperation(rt.Method)
		if op == nil || !strings.Contains(op.Summary, "(scope "+rt.Scope+")") {
			t.Errorf("%s %s: the summary should say (scope %s)", rt.Method, rt.Path, rt.Scope)
		}
	}
}
