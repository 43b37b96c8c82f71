package oidc_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/latchkeyid/latchkey/internal/httpclient"
	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/mapping"
	"github.com/latchkeyid/latchkey/providers/oidc"
	"github.com/latchkeyid/latchkey/providers/providertest"
)

// The presets of docs/connectors/oidc.md, exactly as documented (only the
// ${ENV} client id and secret filled in), sign in end to end against
// fakes of Google, Microsoft Entra ID and GitLab. Each fake answers at the
// provider's real https addresses: a TLS front on 127.0.0.1, whose
// certificate names the provider's hosts, serves the provider's real
// discovery document verbatim (panva/wellknown's copies) and forwards its
// endpoints to a providertest fake issuing ID tokens with the provider's
// claims. The connector's hardened client resolves the provider's hosts
// to 127.0.0.1 (httpclient.Options.LookupNetIP) and reaches the front's
// port; nothing else is changed.

// Google's discovery document (https://accounts.google.com/.well-known/openid-configuration).
const googleDiscovery = `{
  "issuer": "https://accounts.google.com",
  "authorization_endpoint": "https://accounts.google.com/o/oauth2/v2/auth",
  "device_authorization_endpoint": "https://oauth2.googleapis.com/device/code",
  "token_endpoint": "https://oauth2.googleapis.com/token",
  "userinfo_endpoint": "https://openidconnect.googleapis.com/v1/userinfo",
  "revocation_endpoint": "https://oauth2.googleapis.com/revoke",
  "jwks_uri": "https://www.googleapis.com/oauth2/v3/certs",
  "response_types_supported": ["code", "token", "id_token", "code token", "code id_token", "token id_token", "code token id_token", "none"],
  "subject_types_supported": ["public"],
  "id_token_signing_alg_values_supported": ["RS256"],
  "scopes_supported": ["openid", "email", "profile"],
  "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
  "claims_supported": ["aud", "email", "email_verified", "exp", "family_name", "given_name", "iat", "iss", "name", "picture", "sub"],
  "code_challenge_methods_supported": ["plain", "S256"],
  "grant_types_supported": ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:jwt-bearer"]
}`

// Entra ID's discovery document of a tenant-independent endpoint
// ({tenant} is organizations or common): the issuer is a template.
const entraMultiDiscovery = `{
  "token_endpoint": "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
  "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
  "jwks_uri": "https://login.microsoftonline.com/{tenant}/discovery/v2.0/keys",
  "response_modes_supported": ["query", "fragment", "form_post"],
  "subject_types_supported": ["pairwise"],
  "id_token_signing_alg_values_supported": ["RS256"],
  "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
  "scopes_supported": ["openid", "profile", "email", "offline_access"],
  "issuer": "https://login.microsoftonline.com/{tenantid}/v2.0",
  "request_uri_parameter_supported": false,
  "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
  "authorization_endpoint": "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize",
  "device_authorization_endpoint": "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/devicecode",
  "http_logout_supported": true,
  "frontchannel_logout_supported": true,
  "end_session_endpoint": "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/logout",
  "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
  "kerberos_endpoint": "https://login.microsoftonline.com/{tenant}/kerberos",
  "tenant_region_scope": null,
  "cloud_instance_name": "microsoftonline.com",
  "cloud_graph_host_name": "graph.windows.net",
  "msgraph_host": "graph.microsoft.com",
  "rbac_url": "https://pas.windows.net"
}`

// Entra ID's discovery document of one tenant: the same shape with the
// tenant id everywhere, the issuer included.
const entraTenantDiscovery = `{
  "token_endpoint": "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
  "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
  "jwks_uri": "https://login.microsoftonline.com/{tenant}/discovery/v2.0/keys",
  "response_modes_supported": ["query", "fragment", "form_post"],
  "subject_types_supported": ["pairwise"],
  "id_token_signing_alg_values_supported": ["RS256"],
  "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
  "scopes_supported": ["openid", "profile", "email", "offline_access"],
  "issuer": "https://login.microsoftonline.com/{tenant}/v2.0",
  "request_uri_parameter_supported": false,
  "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
  "authorization_endpoint": "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize",
  "device_authorization_endpoint": "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/devicecode",
  "http_logout_supported": true,
  "frontchannel_logout_supported": true,
  "end_session_endpoint": "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/logout",
  "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
  "kerberos_endpoint": "https://login.microsoftonline.com/{tenant}/kerberos",
  "tenant_region_scope": "EU",
  "cloud_instance_name": "microsoftonline.com",
  "cloud_graph_host_name": "graph.windows.net",
  "msgraph_host": "graph.microsoft.com",
  "rbac_url": "https://pas.windows.net"
}`

// GitLab.com's discovery document.
const gitlabDiscovery = `{
  "issuer": "https://gitlab.com",
  "authorization_endpoint": "https://gitlab.com/oauth/authorize",
  "token_endpoint": "https://gitlab.com/oauth/token",
  "revocation_endpoint": "https://gitlab.com/oauth/revoke",
  "introspection_endpoint": "https://gitlab.com/oauth/introspect",
  "userinfo_endpoint": "https://gitlab.com/oauth/userinfo",
  "jwks_uri": "https://gitlab.com/oauth/discovery/keys",
  "scopes_supported": ["api", "read_api", "read_user", "create_runner", "manage_runner", "k8s_proxy", "read_repository", "write_repository", "read_registry", "write_registry", "read_observability", "write_observability", "ai_features", "sudo", "admin_mode", "read_service_ping", "openid", "profile", "email"],
  "response_types_supported": ["code"],
  "response_modes_supported": ["query", "fragment", "form_post"],
  "grant_types_supported": ["authorization_code", "password", "client_credentials", "refresh_token"],
  "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
  "subject_types_supported": ["public"],
  "id_token_signing_alg_values_supported": ["RS256"],
  "claim_types_supported": ["normal"],
  "claims_supported": ["iss", "sub", "aud", "exp", "iat", "sub_legacy", "name", "nickname", "preferred_username", "email", "email_verified", "website", "profile", "picture", "groups", "groups_direct", "https://gitlab.org/claims/groups/owner", "https://gitlab.org/claims/groups/maintainer", "https://gitlab.org/claims/groups/developer"],
  "code_challenge_methods_supported": ["plain", "S256"]
}`

const (
	singleTenant = "00000000-0000-0000-0000-000000000000" // the docs' single-tenant issuer
	tenantA      = "11111111-1111-1111-1111-111111111111" // allowed by the docs' multi-tenant preset
	tenantB      = "22222222-2222-2222-2222-222222222222"
	tenantOther  = "33333333-3333-3333-3333-333333333333"
)

// presetHosts are the providers' hosts the front answers for.
var presetHosts = []string{
	"accounts.google.com", "oauth2.googleapis.com", "openidconnect.googleapis.com", "www.googleapis.com",
	"login.microsoftonline.com", "graph.microsoft.com", "gitlab.com",
}

// providerFront is the providers' hosts on 127.0.0.1: their discovery
// documents, and their endpoints forwarded to a providertest fake.
type providerFront struct {
	srv  *httptest.Server
	pool *x509.CertPool
	port string
}

// fakeEndpoint maps a provider's endpoint (host + path) to the generic
// fake's; "" is not found.
func fakeEndpoint(host, path string) string {
	switch host + path {
	case "accounts.google.com/o/oauth2/v2/auth", "gitlab.com/oauth/authorize":
		return providertest.AuthorizePath
	case "oauth2.googleapis.com/token", "gitlab.com/oauth/token":
		return providertest.TokenPath
	case "www.googleapis.com/oauth2/v3/certs", "gitlab.com/oauth/discovery/keys":
		return providertest.JWKSPath
	case "openidconnect.googleapis.com/v1/userinfo", "gitlab.com/oauth/userinfo", "graph.microsoft.com/oidc/userinfo":
		return providertest.UserinfoPath
	}
	if host != "login.microsoftonline.com" {
		return ""
	}
	// /{tenant}/oauth2/v2.0/authorize, /{tenant}/oauth2/v2.0/token, /{tenant}/discovery/v2.0/keys
	_, rest, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	switch rest {
	case "oauth2/v2.0/authorize":
		return providertest.AuthorizePath
	case "oauth2/v2.0/token":
		return providertest.TokenPath
	case "discovery/v2.0/keys":
		return providertest.JWKSPath
	}
	return ""
}

// discoveryDoc returns the discovery document served at host + path.
func discoveryDoc(host, path string) (string, bool) {
	const wk = "/.well-known/openid-configuration"
	switch {
	case host == "accounts.google.com" && path == wk:
		return googleDiscovery, true
	case host == "gitlab.com" && path == wk:
		return gitlabDiscovery, true
	case host == "login.microsoftonline.com" && strings.HasSuffix(path, "/v2.0"+wk):
		tenant := strings.TrimSuffix(strings.TrimPrefix(path, "/"), "/v2.0"+wk)
		switch tenant {
		case "organizations", "common":
			return strings.ReplaceAll(entraMultiDiscovery, "{tenant}", tenant), true
		case singleTenant, tenantA, tenantB:
			return strings.ReplaceAll(entraTenantDiscovery, "{tenant}", tenant), true
		}
	}
	return "", false
}

func newProviderFront(t *testing.T, up *providertest.Upstream) *providerFront {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "latchkey preset fakes"},
		DNSNames:              presetHosts,
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	target, _ := url.Parse(up.URL)
	forward := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.URL.Path, pr.Out.URL.RawPath = fakeEndpoint(hostOnly(pr.In.Host), pr.In.URL.Path), ""
		pr.Out.Host = ""
	}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := hostOnly(r.Host)
		if doc, ok := discoveryDoc(host, r.URL.Path); ok {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(doc))
			return
		}
		if fakeEndpoint(host, r.URL.Path) == "" {
			http.NotFound(w, r)
			return
		}
		forward.ServeHTTP(w, r)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	return &providerFront{srv: srv, pool: pool, port: port}
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// toFront sends requests for the providers' hosts (port 443) to the
// front's port; the TLS server name stays the provider's host.
type toFront struct {
	base http.RoundTripper
	port string
}

func (t toFront) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "https" && r.URL.Port() == "" && slices.Contains(presetHosts, r.URL.Hostname()) {
		r = r.Clone(r.Context())
		r.URL.Host = r.URL.Hostname() + ":" + t.port
	}
	return t.base.RoundTrip(r)
}

// client is the hardened client (every guard on), resolving the
// providers' hosts to the front.
func (f *providerFront) client() *http.Client {
	hc := httpclient.New(httpclient.Options{
		Timeout:         5 * time.Second,
		AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		RootCAs:         f.pool,
		LookupNetIP: func(ctx context.Context, network, host string) ([]netip.Addr, error) {
			if slices.Contains(presetHosts, host) {
				return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
			}
			return nil, errors.New("not a preset host")
		},
	})
	hc.Transport = toFront{base: hc.Transport, port: f.port}
	return hc
}

// docPresets reads the connectors of docs/connectors/oidc.md by id.
func docPresets(t *testing.T) map[string]map[string]any {
	t.Helper()
	doc, err := os.ReadFile("../../docs/connectors/oidc.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, block := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(doc, -1) {
		var list []map[string]any
		if yaml.Unmarshal(block[1], &list) != nil {
			continue
		}
		for _, c := range list {
			if id, _ := c["id"].(string); id != "" && c["type"] == oidc.TypeName {
				out[id], _ = c["config"].(map[string]any)
			}
		}
	}
	return out
}

// openPreset opens a documented preset with the test client's id and
// secret in place of its ${ENV} references.
func openPreset(t *testing.T, id string, deps providers.Deps) *oidc.Connector {
	t.Helper()
	cfg, ok := docPresets(t)[id]
	if !ok {
		t.Fatalf("no preset %q in docs/connectors/oidc.md", id)
	}
	envRef := regexp.MustCompile(`^\$\{[A-Z_]+\}$`)
	for k, want := range map[string]string{"clientID": providertest.ClientID, "clientSecret": providertest.ClientSecret} {
		if s, _ := cfg[k].(string); !envRef.MatchString(s) {
			t.Fatalf("preset %s: %s is %q, not an ${ENV} reference", id, k, s)
		}
		cfg[k] = want
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := oidc.Type{}.Open(context.Background(), providers.Info{ID: id, Name: id}, raw, deps)
	if err != nil {
		t.Fatalf("open preset %s: %v", id, err)
	}
	return c.(*oidc.Connector)
}

type presetCase struct {
	name     string
	preset   string
	options  []providertest.Option
	user     providertest.User
	idIssuer string
	// wantAuth are authorization request parameters the preset must send.
	wantAuth   map[string]string
	want       providers.Identity
	wantDenied string
	wantErr    error
	refresh    bool
	// notInIDToken are claims the provider keeps out of its ID tokens
	// (the identity then proves userinfo was read).
	notInIDToken []string
}

func TestPresetsEndToEnd(t *testing.T) {
	entraIss := func(tid string) string { return "https://login.microsoftonline.com/" + tid + "/v2.0" }
	entraUser := func(tid, sub string) providertest.User {
		return providertest.User{Subject: sub, Claims: map[string]any{
			"ver": "2.0", "tid": tid, "oid": "9f4880d8-1c9b-4d3a-8f4c-6a3c7a7a1f10", "name": "Megan Bowen",
			"preferred_username": "MeganB@contoso.example", "email": "megan.bowen@contoso.example",
			"groups": []any{"0bb5a8b3-6dab-4b8b-9d07-2b0e0c3c5a11", "c9a1c0de-7f5e-4a36-9c23-6e2f4c9d8b22"},
			"rh":     "0.AXoA...", "uti": "2x3Z8Yw", "nbf": time.Now().Unix(),
		}}
	}
	gitlabUser := func(groups []any) providertest.User {
		return providertest.User{Subject: "1234567", Claims: map[string]any{
			"sub_legacy": "2bbd4c1e1d0e5d8a4c5a8e4f0b7b8f9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a",
			"name":       "Sidney Jones", "nickname": "sjones", "preferred_username": "sjones",
			"email": "sidney@acme.example", "email_verified": true,
			"website": "", "profile": "https://gitlab.com/sjones", "picture": "https://gitlab.com/uploads/-/system/user/avatar/1234567/avatar.png",
			"groups":        groups,
			"groups_direct": groups[:1],
		}}
	}
	// GitLab puts only these in the ID token; the profile comes from userinfo.
	gitlabIDToken := providertest.WithIDTokenClaims("sub_legacy", "email", "email_verified", "groups_direct", "auth_time")
	google := func(hd string) providertest.User {
		c := map[string]any{
			"email": "jo@example.com", "email_verified": true, "name": "Jo Example", "given_name": "Jo", "family_name": "Example",
			"picture": "https://lh3.googleusercontent.com/a/ACg8ocK", "at_hash": "HK6E_P6Dh8Y93mRNtsDB1Q", "azp": providertest.ClientID,
		}
		if hd != "" {
			c["hd"] = hd
		}
		return providertest.User{Subject: "110169484474386276334", Claims: c}
	}
	tests := []presetCase{
		{
			name: "Google Workspace account of the hosted domain", preset: "google", user: google("example.com"),
			idIssuer: "https://accounts.google.com",
			wantAuth: map[string]string{"scope": "openid email profile", "hd": "example.com", "access_type": "offline", "prompt": "consent"},
			want: providers.Identity{Subject: "110169484474386276334", Email: "jo@example.com", EmailVerified: true, Name: "Jo Example",
				AMR: []string{"fed"}},
			refresh: true,
		},
		{
			name: `Google's "accounts.google.com" issuer`, preset: "google", user: google("example.com"),
			idIssuer: "accounts.google.com",
			want: providers.Identity{Subject: "110169484474386276334", Email: "jo@example.com", EmailVerified: true, Name: "Jo Example",
				AMR: []string{"fed"}},
		},
		{
			name: "Google consumer account (no hd)", preset: "google", user: google(""),
			idIssuer: "https://accounts.google.com", wantDenied: "Sign in with an account of example.com.",
		},
		{
			name: "Google Workspace account of another domain", preset: "google", user: google("other.example"),
			idIssuer: "https://accounts.google.com", wantDenied: "Sign in with an account of example.com.",
		},
		{
			name: "Entra single tenant", preset: "entra", user: entraUser(singleTenant, "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ"),
			idIssuer: entraIss(singleTenant),
			wantAuth: map[string]string{"scope": "openid email profile offline_access"},
			want: providers.Identity{Subject: "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", Username: "MeganB@contoso.example",
				Email: "megan.bowen@contoso.example", EmailVerified: true, Name: "Megan Bowen",
				Groups: []string{"0bb5a8b3-6dab-4b8b-9d07-2b0e0c3c5a11", "c9a1c0de-7f5e-4a36-9c23-6e2f4c9d8b22"}, AMR: []string{"fed"}},
			refresh: true,
		},
		{
			name: "Entra single tenant: a token of another tenant", preset: "entra", user: entraUser(tenantA, "AAAA"),
			idIssuer: entraIss(tenantA), wantErr: providers.ErrInvalidCallback,
		},
		{
			name: "Entra multi-tenant: an allowed tenant", preset: "entra-partners", user: entraUser(tenantA, "AAAAAAAAAAAAAAAAAAAAAKvUx1y0bW5xR5cMmA0hAas"),
			idIssuer: entraIss(tenantA),
			want: providers.Identity{Subject: "AAAAAAAAAAAAAAAAAAAAAKvUx1y0bW5xR5cMmA0hAas", Username: "MeganB@contoso.example",
				Email: "megan.bowen@contoso.example", Name: "Megan Bowen",
				Groups: []string{"0bb5a8b3-6dab-4b8b-9d07-2b0e0c3c5a11", "c9a1c0de-7f5e-4a36-9c23-6e2f4c9d8b22"}, AMR: []string{"fed"}},
		},
		{
			name: "Entra multi-tenant: a tenant not allowed", preset: "entra-partners", user: entraUser(tenantOther, "AAAA"),
			idIssuer: entraIss(tenantOther), wantDenied: "Accounts of your organization cannot sign in here.",
		},
		{
			name: "Entra multi-tenant: iss of one tenant, tid of another", preset: "entra-partners", user: entraUser(tenantA, "AAAA"),
			idIssuer: entraIss(tenantB), wantErr: providers.ErrInvalidCallback,
		},
		{
			name: "GitLab member of acme (groups from userinfo)", preset: "gitlab", options: []providertest.Option{gitlabIDToken},
			user: gitlabUser([]any{"acme", "acme/platform", "hobby"}), idIssuer: "https://gitlab.com",
			wantAuth: map[string]string{"scope": "openid email profile"},
			want: providers.Identity{Subject: "1234567", Username: "sjones", Email: "sidney@acme.example", EmailVerified: true,
				Name: "Sidney Jones", Groups: []string{"acme", "acme/platform", "hobby"}, AMR: []string{"fed"}},
			refresh:      true,
			notInIDToken: []string{"name", "nickname", "groups"},
		},
		{
			name: "GitLab user outside acme", preset: "gitlab", options: []providertest.Option{gitlabIDToken},
			user: gitlabUser([]any{"hobby"}), idIssuer: "https://gitlab.com", wantDenied: mapping.DefaultNotAllowedReason,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := providertest.NewUpstream(t, tt.options...)
			up.AddUser(tt.user)
			up.LoginAs(tt.user.Subject)
			up.SetBehavior(providertest.Behavior{OmitIss: true, IDTokenIssuer: tt.idIssuer})
			front := newProviderFront(t, up)
			logs := &providertest.LogBuffer{}
			deps := providertest.NewDeps(t, logs)
			deps.HTTPClient = front.client()
			conn := openPreset(t, tt.preset, deps)

			id, err := front.signIn(t, conn)
			if tt.wantAuth != nil {
				auth := up.LastAuthorize()
				for k, v := range tt.wantAuth {
					if got := auth.Get(k); got != v {
						t.Errorf("authorization request %s = %q, want %q", k, got, v)
					}
				}
			}
			switch {
			case tt.wantDenied != "":
				var d *providers.DeniedError
				if !errors.As(err, &d) || d.Reason != tt.wantDenied {
					t.Fatalf("err = %v, want DeniedError %q", err, tt.wantDenied)
				}
				t.Logf("refused (as expected): %v", err)
				return
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				t.Logf("error (as expected): %v", err)
				return
			case err != nil:
				t.Fatalf("sign in: %v", err)
			}
			if idt := lastIDToken(t, up); len(tt.notInIDToken) > 0 {
				for _, c := range tt.notInIDToken {
					if _, ok := idt[c]; ok {
						t.Fatalf("the fake's ID token has %q; the provider keeps it out", c)
					}
				}
			}
			if len(id.ConnectorData) == 0 {
				t.Fatalf("no upstream refresh token kept")
			}
			if got := withoutConnectorData(id); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("identity:\n got %#v\nwant %#v", got, tt.want)
			}
			if tt.refresh {
				got, err := conn.Refresh(context.Background(), id)
				if err != nil {
					t.Fatalf("refresh: %v", err)
				}
				if !reflect.DeepEqual(withoutConnectorData(got), tt.want) {
					t.Fatalf("refreshed identity:\n got %#v\nwant %#v", withoutConnectorData(got), tt.want)
				}
			}
			for _, s := range up.Secrets() {
				if strings.Contains(logs.String(), s) {
					t.Fatalf("a secret of the upstream is in the logs")
				}
			}
		})
	}
}

// lastIDToken decodes the payload of the last ID token the fake issued.
func lastIDToken(t *testing.T, up *providertest.Upstream) map[string]any {
	t.Helper()
	secrets := up.Secrets()
	for i := len(secrets) - 1; i >= 0; i-- {
		parts := strings.Split(secrets[i], ".")
		if len(parts) != 3 {
			continue
		}
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		var claims map[string]any
		if err := json.Unmarshal(payload, &claims); err != nil {
			t.Fatal(err)
		}
		return claims
	}
	t.Fatal("the fake issued no ID token")
	return nil
}

func withoutConnectorData(id providers.Identity) providers.Identity {
	id.ConnectorData = nil
	return id
}

// signIn plays the broker and the browser: LoginURL, the provider's
// authorization endpoint (at its real address), HandleCallback.
func (f *providerFront) signIn(t *testing.T, conn *oidc.Connector) (providers.Identity, error) {
	t.Helper()
	sec := providertest.NewLoginSecrets()
	loginURL, err := conn.LoginURL(context.Background(), providers.LoginRequest{
		CallbackURL: providertest.CallbackURL, State: sec.State, Nonce: sec.Nonce, CodeChallenge: sec.Challenge,
	})
	if err != nil {
		t.Fatalf("LoginURL: %v", err)
	}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil || !slices.Contains(presetHosts, host) {
			return nil, errors.New("the browser reaches only the preset hosts")
		}
		return (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
	}
	browser := &http.Client{
		Timeout:       5 * time.Second,
		Transport:     toFront{base: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.pool}, DialContext: dial}, port: f.port},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := browser.Get(loginURL)
	if err != nil {
		t.Fatalf("authorize: %v", err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), providertest.CallbackURL+"?") {
		t.Fatalf("authorize answered %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return conn.HandleCallback(context.Background(), providers.CallbackRequest{
		CallbackURL: providertest.CallbackURL, Query: loc.Query(), State: sec.State, Nonce: sec.Nonce, CodeVerifier: sec.Verifier,
	})
}
