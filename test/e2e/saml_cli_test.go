package e2e

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/providers/saml/samltest"
)

// TestCLISAMLSPMetadata: `latchkey saml sp-metadata CONNECTOR` (and
// --connector) prints the SP metadata of a saml connector from the config
// file or the store (its spKey sealed there), the same document `serve`
// answers at /saml/{connector}/metadata; the private key never shows.
func TestCLISAMLSPMetadata(t *testing.T) {
	now := time.Now()
	sp := samltest.NewKeyPair("latchkey sp", now)
	dir := t.TempDir()
	keyFile := writeFile(t, dir, "sp.key", sp.KeyPEM)
	certFile := writeFile(t, dir, "sp.crt", sp.CertPEM)
	idp := samltest.NewIdP(t, samltest.NewKeyPair("idp", now), "https://idp.example.net", samltest.SP{}, now)
	mdFile := writeFile(t, dir, "idp.xml", idp.MetadataXML(t))
	cfg := migrated(t, `connectors:
  - id: corp
    type: saml
    name: Corp
    config:
      idpMetadata: file:`+mdFile+`
      spKey: file:`+keyFile+`
      spCertificate: file:`+certFile+`
  - id: op
    type: oidc
    config:
      issuer: https://op.example.com
      clientID: x
      clientSecret: y
`)
	base := "http://" + addrOf(t, cfg)

	r := latchkey(t, "", "saml", "sp-metadata", "corp", "--config", cfg)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("sp-metadata corp: %d %q", r.code, r.stderr)
	}
	for _, want := range []string{
		`<?xml version="1.0" encoding="UTF-8"?>`,
		`entityID="` + base + `/saml/corp/metadata"`,
		`Location="` + base + `/saml/corp/acs"`,
		`Location="` + base + `/saml/corp/slo"`,
		`use="signing"`, `use="encryption"`,
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("metadata lacks %s:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "PRIVATE KEY") {
		t.Fatal("the metadata holds the private key")
	}
	if r2 := latchkey(t, "", "saml", "sp-metadata", "--connector", "corp", "--config", cfg); r2.code != 0 || r2.stdout != r.stdout {
		t.Fatalf("--connector corp: %d %q", r2.code, r2.stderr)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"nope"}, `latchkey: no connector "nope" in the config file or the store`},
		{[]string{"op"}, `latchkey: connector "op" is of type "oidc", not saml`},
		{nil, "latchkey: name the connector: latchkey saml sp-metadata CONNECTOR (or --connector ID)"},
		{[]string{"corp", "--connector", "other"}, `latchkey: connector named twice: "corp" and --connector "other"`},
	} {
		r := latchkey(t, "", append(append([]string{"saml", "sp-metadata"}, tc.args...), "--config", cfg)...)
		if r.code != 1 || r.stdout != "" || lastLine(r.stderr) != tc.want {
			t.Errorf("sp-metadata %v: %d %q %q, want %q", tc.args, r.code, r.stdout, r.stderr, tc.want)
		}
	}

	// A run-time connector: spKey sealed in the store, opened to print.
	file := writeFile(t, dir, "stored.yaml", `id: stored
type: saml
config:
  idpMetadata: |
`+indent(idp.MetadataXML(t), "    ")+`
  spKey: |
`+indent(sp.KeyPEM, "    ")+`
  spCertificate: |
`+indent(sp.CertPEM, "    "))
	if r := latchkey(t, "", "connectors", "create", "--file", file, "--config", cfg); r.code != 0 {
		t.Fatalf("connectors create: %d %q", r.code, r.stderr)
	}
	r = latchkey(t, "", "saml", "sp-metadata", "stored", "--config", cfg)
	if r.code != 0 || !strings.Contains(r.stdout, `entityID="`+base+`/saml/stored/metadata"`) || !strings.Contains(r.stdout, `use="encryption"`) {
		t.Fatalf("sp-metadata stored: %d %q\n%s", r.code, r.stderr, r.stdout)
	}
	for _, name := range []string{"latchkey.db", "latchkey.db-wal"} {
		if db, _ := os.ReadFile(filepath.Join(filepath.Dir(cfg), name)); bytes.Contains(db, []byte("PRIVATE KEY")) {
			t.Fatalf("the SP key is stored in clear (%s)", name)
		}
	}

	// serve answers the same document.
	want := latchkey(t, "", "saml", "sp-metadata", "corp", "--config", cfg).stdout
	s := startServe(t, cfg, addrOf(t, cfg))
	s.waitReady(t)
	resp, err := http.Get(base + "/saml/corp/metadata")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/samlmetadata+xml" || string(body) != want {
		t.Fatalf("GET /saml/corp/metadata: %d %q\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	s.stop(t)
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n") + "\n"
}
