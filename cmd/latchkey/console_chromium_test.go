package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/storage"
)

// TestConsoleInChromium: in a real browser an admin signs in to the
// console through Latchkey, adds a connector and a public client in the
// forms, and signs in to a relying party with that client. Screenshots of
// the pages go to a temporary directory, or to docs/img with
// LATCHKEY_UPDATE_SCREENSHOTS=1.
func TestConsoleInChromium(t *testing.T) {
	chromium := testenv.Program(t, "chromium")
	dir := filepath.Join("testdata", "console-chromium")
	node := testenv.NodePackage(t, dir)
	s := newStack(t, "sqlite", false)
	ctx := t.Context()

	// Some sign-ins of the last hours for the dashboard.
	now := time.Now()
	for i := range 12 {
		typ, conn := "user.login.succeeded", "local"
		if i%4 == 3 {
			typ = "user.login.failed"
		}
		if i%3 == 0 {
			conn = "corp-oidc"
		}
		e := storage.Event{Type: typ, Time: now.Add(-time.Duration(i%3) * time.Hour), ConnectorID: conn, UserID: "demo"}
		if err := s.a.db.AppendEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}

	verifier := oauth2.GenerateVerifier()
	var rpResult string
	rp := httptest.NewServer(nil)
	t.Cleanup(rp.Close)
	conf := &oauth2.Config{ClientID: "CLIENT_ID", RedirectURL: rp.URL + "/cb", Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{AuthURL: s.issuer + "/authorize", TokenURL: s.issuer + "/token", AuthStyle: oauth2.AuthStyleInParams}}
	rp.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := *conf
		c.ClientID = "shop"
		tok, err := c.Exchange(r.Context(), r.URL.Query().Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			rpResult = "exchange failed: " + err.Error()
			http.Error(w, rpResult, http.StatusBadGateway)
			return
		}
		idt, _ := tok.Extra("id_token").(string)
		rpResult = "signed in to the shop"
		_, _ = w.Write([]byte(rpResult + " (id token " + map[bool]string{true: "received", false: "missing"}[idt != ""] + ")"))
	})

	shots := t.TempDir()
	if os.Getenv("LATCHKEY_UPDATE_SCREENSHOTS") == "1" {
		shots, _ = filepath.Abs(filepath.Join("..", "..", "docs", "img"))
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	in, err := json.Marshal(map[string]string{
		"consoleURL": s.adminBase, "username": "root", "password": "pw-root",
		"clientRedirectURI": rp.URL + "/cb",
		"authorizeURL":      conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)),
		"rpDonePrefix":      rp.URL + "/cb?", "shotDir": shots,
	})
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, node, "console-flow.mjs")
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), "LATCHKEY_CHROMIUM="+chromium)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium console flow: %v\n%s\n%s", err, out, stderr.String())
	}
	var res struct {
		URLs          []string
		ConsoleErrors []string
		RPPage        string
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(res.ConsoleErrors) > 0 {
		t.Fatalf("browser console errors (CSP?): %v", res.ConsoleErrors)
	}
	if !strings.HasPrefix(res.RPPage, "signed in to the shop (id token received)") {
		t.Fatalf("relying party page %q (%s)", res.RPPage, rpResult)
	}
	conn, err := s.a.db.GetConnector(ctx, "corp-github")
	if err != nil || conn.Type != "github" || strings.Contains(string(conn.Config), "console-connector-secret") {
		t.Fatalf("connector %+v %v", conn, err)
	}
	if cl, err := s.a.db.GetClient(ctx, "shop"); err != nil || !cl.Public {
		t.Fatalf("client %+v %v", cl, err)
	}
	for _, name := range []string{"dashboard", "connectors", "clients", "users", "user", "keys", "audit"} {
		if st, err := os.Stat(filepath.Join(shots, "admin-"+name+".png")); err != nil || st.Size() < 2000 {
			t.Errorf("screenshot %s: %v", name, err)
		}
	}
}
