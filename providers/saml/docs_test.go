package saml_test

import (
	"encoding/json"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/latchkeyid/latchkey/providers/saml"
)

// TestDocumentedConfigsValidate checks that every saml connector in
// docs/connectors/saml.md passes Validate, CEL expressions and all. The
// file: and ${ENV} references (which the config loader replaces) are
// replaced here by test keys and metadata.
func TestDocumentedConfigsValidate(t *testing.T) {
	doc, err := os.ReadFile("../../docs/connectors/saml.md")
	if err != nil {
		t.Fatal(err)
	}
	k := testKeys(t)
	n := 0
	for _, block := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(doc, -1) {
		var v struct {
			Connectors []struct {
				ID     string         `yaml:"id"`
				Type   string         `yaml:"type"`
				Config map[string]any `yaml:"config"`
			} `yaml:"connectors"`
		}
		if err := yaml.Unmarshal(block[1], &v); err != nil {
			t.Fatalf("YAML block does not parse: %v\n%s", err, block[1])
		}
		for _, c := range v.Connectors {
			if c.Type != saml.TypeName {
				continue
			}
			n++
			cfg := c.Config
			for key, kp := range map[string]keyPair{"spKey": k["sp"], "spEncryptionKey": k["spenc"]} {
				if ref, _ := cfg[key].(string); isReference(ref) {
					cfg[key] = kp.keyPEM
				}
			}
			for key, kp := range map[string]keyPair{"spCertificate": k["sp"], "spEncryptionCertificate": k["spenc"]} {
				if ref, _ := cfg[key].(string); isReference(ref) {
					cfg[key] = kp.certPEM
				}
			}
			if ref, _ := cfg["idpMetadata"].(string); isReference(ref) {
				p := newTestIdP(t, k["idp"], testIdPURL)
				if id, _ := cfg["idpEntityID"].(string); id != "" {
					u, err := url.Parse(id)
					if err != nil {
						t.Fatal(err)
					}
					p.idp.MetadataURL = *u
				}
				cfg["idpMetadata"] = p.metadataXML(t)
				if pins, ok := cfg["idpMetadataCertificates"].([]any); ok {
					cfg["idpMetadata"] = signedMetadataTB(t, p)
					for i := range pins {
						pins[i] = k["idp"].certPEM
					}
				}
			}
			raw, err := json.Marshal(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if probs := (saml.Type{}).Validate(raw); len(probs) > 0 {
				t.Errorf("connector %s: %v", c.ID, probs)
			}
		}
	}
	if n < 6 {
		t.Fatalf("found %d saml connectors in the docs, want at least 6 (the examples, Entra ID, Okta, ADFS)", n)
	}
}

func isReference(s string) bool { return strings.HasPrefix(s, "file:") || strings.Contains(s, "${") }
