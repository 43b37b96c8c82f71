package ldap_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/ldap"
	"github.com/latchkeyid/latchkey/providers/mapping"
)

const (
	userFilter  = "(&(objectClass=inetOrgPerson)(uid={username}))"
	groupFilter = "(|(&(objectClass=groupOfNames)(member={dn}))(&(objectClass=posixGroup)(memberUid={username})))"
)

var info = providers.Info{ID: "corp-ldap", Name: "Corp Directory"}

// baseConfig is the OpenLDAP setup of docs/connectors/ldap.md against the
// test directory: StartTLS verified with the test CA, a service account,
// groupOfNames and posixGroup groups.
func baseConfig(d *directory) ldap.Config {
	return ldap.Config{
		URL:          d.ldapURL(),
		StartTLS:     true,
		RootCA:       d.caFile,
		BindDN:       serviceDN,
		BindPassword: servicePassword,
		UserSearch: ldap.UserSearch{
			BaseDN:          suffix,
			Filter:          userFilter,
			ExtraAttributes: []string{"departmentNumber"},
		},
		GroupSearch: &ldap.GroupSearch{
			BaseDN: "ou=groups," + suffix,
			Filter: groupFilter,
		},
		ConnectTimeout: "5s",
		RequestTimeout: "5s",
	}
}

func open(t *testing.T, cfg ldap.Config, log *slog.Logger) *ldap.Connector {
	t.Helper()
	c, err := ldap.New(t.Context(), info, cfg, providers.Deps{Logger: log})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func alice() providers.Identity {
	return providers.Identity{Subject: aliceUUID, Username: "alice", Email: "alice@example.org", EmailVerified: true,
		Name: "Alice Liddell", Groups: []string{"admins", "staff"}, AMR: []string{"pwd"}}
}

func bob() providers.Identity {
	return providers.Identity{Subject: bobUUID, Username: "bob", Email: "bob@example.org", EmailVerified: true,
		Name: "Bob Builder", Groups: []string{"ops", "staff"}, AMR: []string{"pwd"}}
}

type loginCase struct {
	name     string
	username string
	password string
	want     providers.Identity
	wantErr  error // compared with ==: the exact sentinel, not wrapped
	noIO     bool  // refused before any directory request
}

func loginCases() []loginCase {
	carol := providers.Identity{Subject: carolUUID, Username: "carol", Name: "Carol Danvers", Groups: []string{},
		AMR: []string{"pwd"}} // no mail: email_verified false
	dave := providers.Identity{Subject: daveUUID, Username: daveUID, Email: "dave@example.org", EmailVerified: true,
		Name: "Dave Special", Groups: []string{}, AMR: []string{"pwd"}}
	erin := providers.Identity{Subject: erinUUID, Username: "erin", Email: "erin@example.org", EmailVerified: true,
		Name: "Smith, Erin", Groups: []string{"staff"}, AMR: []string{"pwd"}}
	bad := providers.ErrInvalidCredentials
	cases := []loginCase{
		{name: "alice right password", username: "alice", password: alicePassword, want: alice()},
		{name: "bob right password ({SSHA} hash)", username: "bob", password: bobPassword, want: bob()},
		{name: "carol without mail or groups", username: "carol", password: carolPassword, want: carol},
		{name: "dave: uid of filter metacharacters matches literally", username: daveUID, password: davePassword, want: dave},
		{name: "erin: DN with an escaped comma finds her group", username: "erin", password: erinPassword, want: erin},
		{name: "username trimmed", username: "  alice\t", password: alicePassword, want: alice()},
		{name: "username case as the directory matches it", username: "ALICE", password: alicePassword, want: alice()},

		{name: "wrong password", username: "alice", password: "alice-wrong-3b7e", wantErr: bad},
		{name: "another user's password", username: "alice", password: bobPassword, wantErr: bad},
		{name: "password case matters", username: "alice", password: strings.ToUpper(alicePassword), wantErr: bad},
		{name: "unknown user", username: "nobody-5c1d", password: alicePassword, wantErr: bad},
		{name: "two entries match", username: "twin", password: twinPassword, wantErr: bad},
		{name: "empty password", username: "alice", password: "", wantErr: bad, noIO: true},
		{name: "empty username", username: "", password: alicePassword, wantErr: bad, noIO: true},
		{name: "blank username", username: " \t ", password: alicePassword, wantErr: bad, noIO: true},
		{name: "username too long", username: strings.Repeat("a", ldap.MaxUsernameLength+1), password: alicePassword, wantErr: bad, noIO: true},
		{name: "password too long", username: "alice", password: strings.Repeat("p", ldap.MaxPasswordLength+1), wantErr: bad, noIO: true},
		{name: "username not UTF-8", username: "ali\xffce", password: alicePassword, wantErr: bad, noIO: true},
		{name: "username with NUL", username: "alice\x00", password: alicePassword, wantErr: bad, noIO: true},
	}
	// Injection: each is tried with alice's (and dave's) password and must
	// match no entry; without escaping several would find alice or be
	// ambiguous.
	for _, u := range []string{
		"*", "al*", "*ice", "a*e", "*)(uid=*", "admin)(|(uid=*", "alice)(|(uid=*", "alice)(uid=alice",
		"*)(objectClass=*", `\2a`, `alic\65`, `\61lice`, "alice)", "(uid=alice)", "d*", `d(a)v*`, `d\28a\29v\2ae\5c`,
	} {
		cases = append(cases,
			loginCase{name: "injection " + u, username: u, password: alicePassword, wantErr: bad},
			loginCase{name: "injection " + u + " (dave's password)", username: u, password: davePassword, wantErr: bad})
	}
	return cases
}

func TestLogin(t *testing.T) {
	d := startDirectory(t)
	var logs bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := open(t, baseConfig(d), log)
	// deadCfg points at a port where nothing listens: a case that reached
	// the network would come back unavailable, not ErrInvalidCredentials.
	deadCfg := baseConfig(d)
	deadCfg.URL = fmt.Sprintf("ldap://127.0.0.1:%d", freePort(t))
	dead := open(t, deadCfg, nil)

	for _, tc := range loginCases() {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Login(t.Context(), tc.username, tc.password)
			if err != tc.wantErr {
				t.Fatalf("Login error = %v, want %v", err, tc.wantErr)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Login identity =\n%#v\nwant\n%#v", got, tc.want)
			}
			if tc.noIO {
				if _, err := dead.Login(t.Context(), tc.username, tc.password); err != tc.wantErr {
					t.Fatalf("against a dead server: Login error = %v, want %v (the directory must not be contacted)", err, tc.wantErr)
				}
			}
		})
	}
	if st := dead.PoolStats(); st.Dials != 0 {
		t.Errorf("dead connector dialled %d times, want 0", st.Dials)
	}

	// The log names reasons, never a password or an entered username.
	logMu.Lock()
	text := logs.String()
	logMu.Unlock()
	for _, secret := range []string{servicePassword, alicePassword, bobPassword, carolPassword, davePassword,
		erinPassword, twinPassword, "alice-wrong-3b7e", strings.ToUpper(alicePassword), "nobody-5c1d", "admin)(|(uid=*"} {
		if strings.Contains(text, secret) {
			t.Errorf("log contains %q:\n%s", secret, text)
		}
	}
	for _, want := range []string{
		`reason="wrong password" dn="uid=alice,ou=people,dc=example,dc=org"`,
		`reason="no entry matches"`,
		`reason="several entries match"`,
		`reason="empty password"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("log lacks %q:\n%s", want, text)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestRulesAndMapping(t *testing.T) {
	d := startDirectory(t)
	f := false
	type attempt struct {
		username, password string
		want               providers.Identity
		wantDenied         string // the DeniedError's reason
	}
	cases := []struct {
		name     string
		edit     func(*ldap.Config)
		attempts []attempt
	}{
		{
			name: "allowedGroups, case-insensitive, default reason",
			edit: func(c *ldap.Config) { c.AllowedGroups = []string{"ADMINS", "auditors"} },
			attempts: []attempt{
				{username: "alice", password: alicePassword, want: alice()},
				{username: "bob", password: bobPassword, wantDenied: mapping.DefaultNotAllowedReason},
				{username: "carol", password: carolPassword, wantDenied: mapping.DefaultNotAllowedReason},
			},
		},
		{
			name: "allowedGroups with notAllowedReason, posixGroup membership counts",
			edit: func(c *ldap.Config) {
				c.AllowedGroups = []string{"ops"}
				c.NotAllowedReason = "Only the ops team signs in here."
			},
			attempts: []attempt{
				{username: "bob", password: bobPassword, want: bob()},
				{username: "alice", password: alicePassword, wantDenied: "Only the ops team signs in here."},
			},
		},
		{
			name: "wrong password is still invalid credentials when the user would be denied",
			edit: func(c *ldap.Config) { c.AllowedGroups = []string{"ops"} },
			attempts: []attempt{
				{username: "alice", password: "wrong-1d4f"},
			},
		},
		{
			name: "claimMapping and deny rules over attributes",
			edit: func(c *ldap.Config) {
				c.ClaimMapping = mapping.ClaimMapping{
					Email:  "claims.uid[0] + '@corp.example'",
					Name:   "claims.cn[0] + ' (' + claims.departmentNumber.join(', ') + ')'",
					Groups: "claims.groups.map(g, 'ldap:' + g)",
				}
				c.Deny = []mapping.Rule{{Expr: "'construction' in claims.departmentNumber", Reason: "Builders use the site portal."}}
				c.Allow = []string{"claims.dn.endsWith(',ou=people,dc=example,dc=org')"}
				c.UserSearch.ExtraAttributes = []string{"departmentNumber", "uid"}
			},
			attempts: []attempt{
				{username: "alice", password: alicePassword, want: providers.Identity{
					Subject: aliceUUID, Username: "alice", Email: "alice@corp.example", EmailVerified: true,
					Name: "Alice Liddell (research, wonderland)", Groups: []string{"ldap:admins", "ldap:staff"}, AMR: []string{"pwd"}}},
				{username: "bob", password: bobPassword, wantDenied: "Builders use the site portal."},
			},
		},
		{
			name: "emailVerified false",
			edit: func(c *ldap.Config) { c.EmailVerified = &f },
			attempts: []attempt{
				{username: "alice", password: alicePassword, want: func() providers.Identity {
					id := alice()
					id.EmailVerified = false
					return id
				}()},
			},
		},
		{
			name: "idAttr employeeNumber; an entry without it is identified by its DN",
			edit: func(c *ldap.Config) { c.UserSearch.IDAttr = "employeeNumber" },
			attempts: []attempt{
				{username: "alice", password: alicePassword, want: func() providers.Identity {
					id := alice()
					id.Subject = "E-1001"
					return id
				}()},
				{username: "bob", password: bobPassword, want: func() providers.Identity {
					id := bob()
					id.Subject = bobDN
					return id
				}()},
			},
		},
		{
			name: "idAttr dn, group names as DNs, no group search scope below",
			edit: func(c *ldap.Config) {
				c.UserSearch.IDAttr = "dn"
				c.GroupSearch.NameAttr = "dn"
			},
			attempts: []attempt{
				{username: "bob", password: bobPassword, want: func() providers.Identity {
					id := bob()
					id.Subject = bobDN
					id.Groups = []string{"cn=ops,ou=groups," + suffix, "cn=staff,ou=groups," + suffix}
					return id
				}()},
			},
		},
		{
			name: "scope one: only direct children of the base",
			edit: func(c *ldap.Config) {
				c.UserSearch.BaseDN = "ou=contractors," + suffix
				c.UserSearch.Scope = "one"
				c.UserSearch.IDAttr = "dn"
				c.GroupSearch = nil
			},
			attempts: []attempt{
				// One twin is a direct child: no longer ambiguous.
				{username: "twin", password: twinPassword, want: providers.Identity{Subject: "uid=twin,ou=contractors," + suffix,
					Username: "twin", Name: "Twin Two", AMR: []string{"pwd"}}},
				{username: "alice", password: alicePassword},
			},
		},
		{
			name: "anonymous search (no service account)",
			edit: func(c *ldap.Config) { c.BindDN, c.BindPassword = "", "" },
			attempts: []attempt{
				{username: "alice", password: alicePassword, want: alice()},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig(d)
			tc.edit(&cfg)
			c := open(t, cfg, nil)
			for _, a := range tc.attempts {
				got, err := c.Login(t.Context(), a.username, a.password)
				switch {
				case a.wantDenied != "":
					var de *providers.DeniedError
					if !errors.As(err, &de) || de.Reason != a.wantDenied {
						t.Fatalf("%s: Login error = %v, want DeniedError %q", a.username, err, a.wantDenied)
					}
				case a.want.Subject == "":
					if err != providers.ErrInvalidCredentials {
						t.Fatalf("%s: Login error = %v, want ErrInvalidCredentials", a.username, err)
					}
				default:
					if err != nil {
						t.Fatalf("%s: Login: %v", a.username, err)
					}
					if !reflect.DeepEqual(got, a.want) {
						t.Fatalf("%s: identity =\n%#v\nwant\n%#v", a.username, got, a.want)
					}
				}
			}
		})
	}
}

func TestTLS(t *testing.T) {
	d := startDirectory(t)
	caPEM, err := os.ReadFile(d.caFile)
	if err != nil {
		t.Fatal(err)
	}
	const unknownCA = "x509: certificate signed by unknown authority"
	cases := []struct {
		name    string
		edit    func(*ldap.Config)
		wantErr string // "" = alice signs in; else the error is unavailable and contains this
	}{
		{name: "StartTLS, rootCA file", edit: func(c *ldap.Config) {}},
		{name: "StartTLS, rootCAData", edit: func(c *ldap.Config) { c.RootCA, c.RootCAData = "", string(caPEM) }},
		{name: "LDAPS, rootCA file", edit: func(c *ldap.Config) { c.URL, c.StartTLS = d.ldapsURL(), false }},
		{name: "LDAPS by host name", edit: func(c *ldap.Config) {
			c.URL, c.StartTLS = fmt.Sprintf("ldaps://localhost:%d", d.ldapsPort), false
		}},
		{name: "plain LDAP with insecureNoTLS", edit: func(c *ldap.Config) { c.StartTLS, c.InsecureNoTLS, c.RootCA = false, true, "" }},
		{name: "StartTLS, wrong CA", edit: func(c *ldap.Config) { c.RootCA = d.otherCA }, wantErr: unknownCA},
		{name: "LDAPS, wrong CA", edit: func(c *ldap.Config) { c.URL, c.StartTLS, c.RootCA = d.ldapsURL(), false, d.otherCA }, wantErr: unknownCA},
		{name: "LDAPS, system roots do not know the test CA", edit: func(c *ldap.Config) { c.URL, c.StartTLS, c.RootCA = d.ldapsURL(), false, "" }, wantErr: unknownCA},
		{name: "StartTLS to the LDAPS port", edit: func(c *ldap.Config) { c.URL = fmt.Sprintf("ldap://127.0.0.1:%d", d.ldapsPort) }, wantErr: "StartTLS"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig(d)
			tc.edit(&cfg)
			c := open(t, cfg, nil)
			got, err := c.Login(t.Context(), "alice", alicePassword)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Login: %v", err)
				}
				if !reflect.DeepEqual(got, alice()) {
					t.Fatalf("identity = %#v", got)
				}
				return
			}
			checkUnavailable(t, err, tc.wantErr)
			// The password check never happened: nothing was sent in clear.
			if st := c.PoolStats(); st.ServiceOpens != st.Dials {
				t.Errorf("stats %+v: a password bind was attempted", st)
			}
		})
	}
}

func checkUnavailable(t *testing.T, err error, contains string) {
	t.Helper()
	var ue *providers.UnavailableError
	if !errors.As(err, &ue) || !errors.Is(err, providers.ErrUpstreamUnavailable) {
		t.Fatalf("Login error = %v (%T), want *providers.UnavailableError", err, err)
	}
	if ue.ConnectorID != info.ID || ue.Connector != info.Name {
		t.Fatalf("UnavailableError names %q/%q, want %q/%q", ue.ConnectorID, ue.Connector, info.ID, info.Name)
	}
	if !strings.Contains(err.Error(), contains) {
		t.Fatalf("error %q does not contain %q", err, contains)
	}
	if !strings.HasPrefix(err.Error(), info.Name+" is unavailable: ") {
		t.Fatalf("error %q does not start with the connector's name", err)
	}
}

func TestServiceAccountRefused(t *testing.T) {
	d := startDirectory(t)
	cfg := baseConfig(d)
	cfg.BindPassword = "not-the-service-password"
	c := open(t, cfg, nil)
	_, err := c.Login(t.Context(), "alice", alicePassword)
	const want = `ldap: user search: ldap: the directory refused the service account "cn=latchkey,ou=system,dc=example,dc=org" (check bindDN and bindPassword): LDAP Result Code 49 "Invalid Credentials": `
	if err == nil || err.Error() != want {
		t.Fatalf("Login error = %q, want %q", err, want)
	}
	if errors.Is(err, providers.ErrInvalidCredentials) || errors.Is(err, providers.ErrUpstreamUnavailable) {
		t.Fatalf("a misconfigured service account is a server error, got %v", err)
	}
}

// TestUnavailable: a directory that is stopped, refuses connections or
// hangs makes Login fail as unavailable within the configured bounds; a
// restarted one is used again.
func TestUnavailable(t *testing.T) {
	t.Run("stopped and restarted", func(t *testing.T) {
		d := startDirectory(t)
		c := open(t, baseConfig(d), nil)
		if _, err := c.Login(t.Context(), "alice", alicePassword); err != nil {
			t.Fatalf("Login: %v", err)
		}
		if st := c.PoolStats(); st.Idle != 1 {
			t.Fatalf("stats %+v, want one idle pooled connection", st)
		}
		d.stop()
		start := time.Now()
		_, err := c.Login(t.Context(), "alice", alicePassword)
		checkUnavailable(t, err, "connection refused")
		if el := time.Since(start); el > 10*time.Second {
			t.Errorf("unavailable after %s, want within the 5s connect timeout", el)
		}
		d.start()
		got, err := c.Login(t.Context(), "bob", bobPassword)
		if err != nil {
			t.Fatalf("Login after restart: %v", err)
		}
		if !reflect.DeepEqual(got, bob()) {
			t.Fatalf("identity = %#v", got)
		}
	})

	t.Run("restart while a connection is pooled", func(t *testing.T) {
		d := startDirectory(t)
		c := open(t, baseConfig(d), nil)
		if _, err := c.Login(t.Context(), "alice", alicePassword); err != nil {
			t.Fatalf("Login: %v", err)
		}
		d.stop()
		d.start()
		if _, err := c.Login(t.Context(), "alice", alicePassword); err != nil {
			t.Fatalf("Login after restart (the stale pooled connection must be replaced): %v", err)
		}
	})

	hangCases := []struct {
		name     string
		cfg      ldap.Config
		ctx      func(*testing.T) context.Context
		wantIs   error
		contains string
		within   time.Duration
	}{
		{
			name:     "hanging server, plain: requestTimeout bounds the bind",
			cfg:      ldap.Config{InsecureNoTLS: true, RequestTimeout: "300ms"},
			wantIs:   providers.ErrUpstreamUnavailable,
			contains: "operation timed out after 300ms",
			within:   5 * time.Second,
		},
		{
			name:     "hanging server, StartTLS: connectTimeout bounds StartTLS",
			cfg:      ldap.Config{StartTLS: true, ConnectTimeout: "300ms", RequestTimeout: "10s"},
			wantIs:   providers.ErrUpstreamUnavailable,
			contains: "StartTLS: ldap: operation timed out after 300ms",
			within:   5 * time.Second,
		},
		{
			name: "hanging server: the request's deadline comes first",
			cfg:  ldap.Config{InsecureNoTLS: true, RequestTimeout: "30s"},
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
				t.Cleanup(cancel)
				return ctx
			},
			wantIs:   providers.ErrUpstreamUnavailable,
			contains: "context deadline exceeded",
			within:   5 * time.Second,
		},
		{
			name: "hanging server: the request is cancelled",
			cfg:  ldap.Config{InsecureNoTLS: true, RequestTimeout: "30s"},
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithCancel(t.Context())
				time.AfterFunc(300*time.Millisecond, cancel)
				t.Cleanup(cancel)
				return ctx
			},
			wantIs:   context.Canceled,
			contains: "context canceled",
			within:   5 * time.Second,
		},
	}
	for _, tc := range hangCases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.URL = hangingServer(t)
			cfg.BindDN, cfg.BindPassword = serviceDN, servicePassword
			cfg.UserSearch = ldap.UserSearch{BaseDN: suffix, Filter: userFilter}
			c := open(t, cfg, nil)
			ctx := t.Context()
			if tc.ctx != nil {
				ctx = tc.ctx(t)
			}
			start := time.Now()
			_, err := c.Login(ctx, "alice", alicePassword)
			el := time.Since(start)
			if !errors.Is(err, tc.wantIs) || !strings.Contains(err.Error(), tc.contains) {
				t.Fatalf("Login error = %v, want %v containing %q", err, tc.wantIs, tc.contains)
			}
			if tc.wantIs == providers.ErrUpstreamUnavailable {
				checkUnavailable(t, err, tc.contains)
			}
			if el > tc.within {
				t.Errorf("returned after %s, want within %s", el, tc.within)
			}
		})
	}
}

// TestPoolReuse: 20 concurrent logins share at most maxConnections
// service connections, and a second round opens none.
func TestPoolReuse(t *testing.T) {
	d := startDirectory(t)
	cfg := baseConfig(d)
	cfg.MaxConnections = 3
	c := open(t, cfg, nil)
	round := func() {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				user, pw, want := "alice", alicePassword, alice()
				if i%2 == 1 {
					user, pw, want = "bob", bobPassword, bob()
				}
				got, err := c.Login(t.Context(), user, pw)
				switch {
				case err != nil:
					errs <- fmt.Errorf("%s: %w", user, err)
				case !reflect.DeepEqual(got, want):
					errs <- fmt.Errorf("%s: identity %#v", user, got)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
	round()
	first := c.PoolStats()
	if first.ServiceOpens < 1 || first.ServiceOpens > 3 || first.Open > 3 || first.Idle != first.Open {
		t.Fatalf("after 20 logins: %+v, want 1 to 3 service connections, all idle", first)
	}
	if first.Dials != first.ServiceOpens+20 {
		t.Fatalf("after 20 logins: %+v, want one short-lived dial per password check (20)", first)
	}
	round()
	second := c.PoolStats()
	if second.ServiceOpens != first.ServiceOpens || second.Dials != first.Dials+20 {
		t.Fatalf("second round: %+v after %+v, want no new service connection and 20 password dials", second, first)
	}
}
