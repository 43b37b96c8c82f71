package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/storage"
)

// pwTestType is a tiny upstream password connector (as ldap is one),
// registered in the fixture's registry and opened from storage through
// the same path as a real connector: config {"password": P} accepts any
// username with password P.
type pwTestType struct{}

type pwTestConnector struct {
	info     providers.Info
	password string
}

var _ providers.PasswordConnector = (*pwTestConnector)(nil)

func (pwTestType) Validate(raw json.RawMessage) []providers.FieldProblem {
	var c struct {
		Password string `json:"password"`
	}
	if json.Unmarshal(raw, &c) != nil || c.Password == "" {
		return []providers.FieldProblem{{Path: "password", Message: "required"}}
	}
	return nil
}

func (pwTestType) Open(_ context.Context, info providers.Info, raw json.RawMessage, _ providers.Deps) (providers.Connector, error) {
	var c struct {
		Password string `json:"password"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, err
	}
	return &pwTestConnector{info: info, password: c.Password}, nil
}

func (c *pwTestConnector) ID() string   { return c.info.ID }
func (c *pwTestConnector) Name() string { return c.info.Name }

func (c *pwTestConnector) Login(_ context.Context, username, password string) (providers.Identity, error) {
	if password != c.password || username == "" {
		return providers.Identity{}, providers.ErrInvalidCredentials
	}
	return providers.Identity{Subject: "uid=" + username + ",dc=example", Username: username,
		Email: username + "@dir.example", EmailVerified: true, Name: "Dir " + username, AMR: []string{"pwd"}}, nil
}

// TestPasswordConnectorLogin: an upstream PasswordConnector is offered on
// the hosted password form next to local; signing in through it links the
// identity to a new user; a wrong password shows the one generic error;
// allowed_connectors is respected on the page and on submit.
func TestPasswordConnectorLogin(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	cfg, _ := json.Marshal(map[string]any{"password": "dir-pass"})
	now := time.Now().UTC()
	if err := f.db.CreateConnector(ctx, storage.Connector{ID: "dir", Type: "pwtest", Name: "Directory", Config: cfg, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	list, _ := f.db.ListConnectors(ctx)
	if err := f.conns.Sync(ctx, list); err != nil {
		t.Fatal(err)
	}
	f.addUser(aliceRecord, alicePassword)
	f.addClient(storage.Client{ID: "app", RedirectURIs: []string{appCB}}, appSecret)
	f.addClient(storage.Client{ID: "local-only", RedirectURIs: []string{appCB}, AllowedConnectors: []string{"local"}}, appSecret)
	f.addClient(storage.Client{ID: "dir-only", RedirectURIs: []string{appCB}, AllowedConnectors: []string{"dir"}}, appSecret)
	conf := f.rp("app", appSecret, appCB, "openid", "profile", "email")

	b := f.browser()
	verifier := oauth2.GenerateVerifier()
	resp, page := b.get(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/login" {
		t.Fatalf("want the login page, got %d at %s", resp.StatusCode, resp.Request.URL)
	}
	for _, want := range []string{`<select id="connector" name="connector">`, `<option value="local">Local account</option>`,
		`<option value="dir">Directory</option>`, `name="password"`} {
		if !strings.Contains(page, want) {
			t.Fatalf("login page lacks %s:\n%s", want, page)
		}
	}
	if strings.Contains(page, `action="/login/upstream"`) {
		t.Errorf("a password connector is offered as an upstream button:\n%s", page)
	}
	form := hidden(t, page)
	form.Set("connector", "dir")

	resp, page = b.submitLogin(form, "bob", "wrong")
	assertLoginError(t, resp, page, "bob")
	if !strings.Contains(page, `<option value="dir" selected>`) {
		t.Errorf("the chosen connector is not kept:\n%s", page)
	}
	resp, page = b.submitLogin(form, "alice", "dir-pass-not")
	assertLoginError(t, resp, page, "alice")

	resp, page = b.submitLogin(form, "bob", "dir-pass")
	q := callback(t, resp, page, appCB)
	ident, err := f.db.GetIdentity(ctx, "dir", "uid=bob,dc=example")
	if err != nil {
		t.Fatalf("identity not linked: %v", err)
	}
	user, err := f.db.GetUser(ctx, ident.UserID)
	if err != nil || user.Email != "bob@dir.example" || user.PasswordHash != "" {
		t.Fatalf("linked user = %+v, %v", user, err)
	}
	tok := exchange(t, conf, q.Get("code"), verifier)
	_, _, claims := f.idToken(t, "app", tok)
	if claims["sub"] != user.ID || claims["email"] != "bob@dir.example" {
		t.Errorf("ID token claims = %v, want sub %s", claims, user.ID)
	}
	if amr, _ := claims["amr"].([]any); len(amr) != 1 || amr[0] != "pwd" {
		t.Errorf("amr = %v", claims["amr"])
	}
	events, err := f.db.ListEvents(ctx, storage.EventFilter{Type: "identity.linked"})
	if err != nil || len(events) != 1 || events[0].ConnectorID != "dir" || events[0].UserID != user.ID {
		t.Errorf("identity.linked events = %+v, %v", events, err)
	}

	// The local connector still works from the same form (the default).
	b2 := f.browser()
	q = b2.signIn(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)), "alice", alicePassword, appCB)
	if q.Get("code") == "" {
		t.Fatal("local login through the chooser form failed")
	}

	// allowed_connectors: local only offers no choice and refuses dir.
	b3 := f.browser()
	lconf := f.rp("local-only", appSecret, appCB, "openid")
	resp, page = b3.get(lconf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
	if resp.StatusCode != http.StatusOK || strings.Contains(page, `name="connector"`) || !strings.Contains(page, `name="password"`) {
		t.Fatalf("local-only login page: %d\n%s", resp.StatusCode, page)
	}
	form = hidden(t, page)
	form.Set("connector", "dir")
	resp, page = b3.submitLogin(form, "bob", "dir-pass")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "Password sign-in is not available for this application.") {
		t.Errorf("dir through a local-only client: %d\n%s", resp.StatusCode, page)
	}

	// dir only: the form names it in a hidden field.
	b4 := f.browser()
	dconf := f.rp("dir-only", appSecret, appCB, "openid")
	resp, page = b4.get(dconf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
	if resp.StatusCode != http.StatusOK || strings.Contains(page, "<select") {
		t.Fatalf("dir-only login page: %d\n%s", resp.StatusCode, page)
	}
	if !strings.Contains(page, `<input type="hidden" name="connector" value="dir">`) {
		t.Fatalf("dir-only form does not name the connector:\n%s", page)
	}
	form = hidden(t, page)
	form.Set("connector", "dir")
	resp, page = b4.submitLogin(form, "bob", "dir-pass")
	callback(t, resp, page, appCB)
}
