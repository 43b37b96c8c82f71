package providertest

import (
	"fmt"
	"os"
	"regexp"
	"testing"

	"gopkg.in/yaml.v3"
)

// DocConnector is a connector shown in a docs page: its id and config.
type DocConnector struct {
	ID     string
	Config map[string]any
}

var yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// DocumentedConnectors returns, in page order, every connector of
// typeName in the ```yaml blocks of the Markdown file at path: the entries
// of `connectors:` lists and, when required is not nil, fragments (a
// `config:` block alone) completed with the required keys they leave out
// and the id "fragment-N" (N the block's index). A block that is not YAML
// fails the test.
func DocumentedConnectors(t testing.TB, path, typeName string, required map[string]any) []DocConnector {
	t.Helper()
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []DocConnector
	for i, block := range yamlBlock.FindAllSubmatch(doc, -1) {
		var v any
		if err := yaml.Unmarshal(block[1], &v); err != nil {
			t.Fatalf("YAML block does not parse: %v\n%s", err, block[1])
		}
		if m, ok := v.(map[string]any); ok {
			if cs, ok := m["connectors"]; ok {
				v = cs
			} else if frag, ok := m["config"].(map[string]any); ok && required != nil {
				for k, def := range required {
					if _, set := frag[k]; !set {
						frag[k] = def
					}
				}
				v = []any{map[string]any{"id": fmt.Sprintf("fragment-%d", i), "type": typeName, "config": frag}}
			} else {
				v = nil
			}
		}
		list, _ := v.([]any)
		for _, e := range list {
			c, _ := e.(map[string]any)
			if c["type"] != typeName {
				continue
			}
			id, _ := c["id"].(string)
			cfg, _ := c["config"].(map[string]any)
			out = append(out, DocConnector{ID: id, Config: cfg})
		}
	}
	return out
}
