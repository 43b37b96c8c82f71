package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/latchkeyid/latchkey/api"
	"github.com/latchkeyid/latchkey/api/console"
	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/internal/config"
	"github.com/latchkeyid/latchkey/internal/httpclient"
	"github.com/latchkeyid/latchkey/internal/ratelimit"
	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/apple"
	"github.com/latchkeyid/latchkey/providers/facebook"
	"github.com/latchkeyid/latchkey/providers/github"
	"github.com/latchkeyid/latchkey/providers/ldap"
	"github.com/latchkeyid/latchkey/providers/local"
	oauth2conn "github.com/latchkeyid/latchkey/providers/oauth2"
	"github.com/latchkeyid/latchkey/providers/oidc"
	"github.com/latchkeyid/latchkey/providers/saml"
	"github.com/latchkeyid/latchkey/session"
	"github.com/latchkeyid/latchkey/storage"
)

// fieldProblems turns config problems into the API's field problems; an
// error that is not *config.Problems is one problem of the whole body.
func fieldProblems(err error) []api.FieldProblem {
	var p *config.Problems
	if !errors.As(err, &p) {
		return []api.FieldProblem{{Field: "", Message: err.Error()}}
	}
	out := make([]api.FieldProblem, 0, len(p.List))
	for _, pr := range p.List {
		out = append(out, api.FieldProblem{Field: pr.Path, Message: pr.Message})
	}
	return out
}

// adminClients validates clients for the admin API as the CLI does.
type adminClients struct{ a *app }

func (c adminClients) ParseClient(raw []byte) (storage.Client, []api.FieldProblem) {
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return storage.Client{}, []api.FieldProblem{{Message: "the body is not a JSON object"}}
	}
	cl, err := clientFromDoc(c.a.cfg, doc, c.a.clock.Now())
	if err != nil {
		return storage.Client{}, fieldProblems(err)
	}
	return cl, nil
}

// adminConnectors validates connectors by their type, seals their
// secrets and opens them to test, as the CLI and the broker do.
type adminConnectors struct {
	a    *app
	reg  providers.Registry
	deps providers.Deps
}

func newAdminConnectors(a *app) adminConnectors {
	o := a.cfg.Outbound
	return adminConnectors{a: a, reg: connectorRegistry(), deps: providers.Deps{
		HTTPClient: httpclient.New(httpclient.Options{
			Timeout: o.Timeout, MaxBodyBytes: o.MaxBodyBytes.Int64(), AllowedNetworks: o.AllowedNetworks, Logger: a.log,
		}),
		Clock: a.clock, Logger: a.log, Sealer: a.keyring,
	}}
}

func (c adminConnectors) ParseConnector(raw []byte) (storage.Connector, []api.FieldProblem) {
	cc, err := config.ParseConnector(raw, config.WithConnectorTypes(connectorValidators(c.reg)))
	if err != nil {
		return storage.Connector{}, fieldProblems(err)
	}
	return cc.ToStorage(c.a.clock.Now()), nil
}

func (c adminConnectors) InConfigFile(id string) bool { return inConfigFile(c.a.cfg, id) }

func (c adminConnectors) Seal(sc storage.Connector) (storage.Connector, error) {
	return sealConnectorSecrets(c.a.keyring, sc)
}

func (c adminConnectors) SecretKeys() []string { return secretKeys }

func (c adminConnectors) Test(ctx context.Context, sc storage.Connector) error {
	typ, ok := c.reg[sc.Type]
	if !ok {
		return fmt.Errorf("unknown connector type %q", sc.Type)
	}
	cfg, err := unsealConnectorSecrets(c.a.keyring, sc)
	if err != nil {
		return errors.New("the connector's secrets cannot be opened with the configured encryption keys")
	}
	if probs := typ.Validate(cfg); len(probs) > 0 {
		return fmt.Errorf("invalid config: %v", probs)
	}
	conn, err := typ.Open(ctx, providers.Info{ID: sc.ID, Name: sc.Name}, cfg, c.deps)
	if err != nil {
		return err
	}
	if cl, ok := conn.(io.Closer); ok {
		defer cl.Close()
	}
	// Reach the upstream as a login would: discovery for a redirect
	// connector, the service bind and search for a password connector
	// (an unknown user is the answer of a working directory).
	switch x := conn.(type) {
	case providers.CallbackConnector:
		_, err = x.LoginURL(ctx, providers.LoginRequest{
			CallbackURL: strings.TrimSuffix(c.a.cfg.Issuer, "/") + "/callback/" + sc.ID, State: "connection-test"})
		return err
	case providers.PasswordConnector:
		_, err = x.Login(ctx, "latchkey-connection-test", "x")
		if errors.Is(err, providers.ErrInvalidCredentials) {
			return nil
		}
		return err
	}
	return nil
}

// adminSessions lists sessions from the store and ends them through the
// broker (logout notifications, session-bound refresh tokens).
type adminSessions struct {
	*session.Store
	brk *broker.Broker
	db  storage.Durable
}

func (s adminSessions) EndSession(ctx context.Context, sid, actor string) (bool, error) {
	return s.brk.EndSession(ctx, sid, broker.ReasonRevoked, actor)
}

func (s adminSessions) EndSessions(ctx context.Context, userID, actor string) (int, error) {
	return s.brk.EndSessions(ctx, userID, broker.ReasonRevoked, actor)
}

// CountActive counts the active SSO sessions of every user (the
// dashboard's number).
func (s adminSessions) CountActive(ctx context.Context) (int, error) {
	users, err := s.db.ListUsers(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, u := range users {
		list, err := s.ListByUser(ctx, u.ID)
		if err != nil {
			return 0, err
		}
		n += len(list)
	}
	return n, nil
}

// connectorSchemas are the config structs of the connector types the
// console's form is generated from (the same types as connectorRegistry).
func connectorSchemas() map[string]any {
	return map[string]any{
		"oidc": oidc.Config{}, "oauth2": oauth2conn.Config{}, "ldap": ldap.Config{},
		"github": github.Config{}, "facebook": facebook.Config{}, "apple": apple.Config{},
		saml.TypeName: saml.Config{},
	}
}

// AdminClientID is the built-in client the admin console signs in with.
const AdminClientID = "latchkey-admin"

// ensureAdminClient creates or updates the built-in admin client: public,
// PKCE, its one redirect URI on the admin listener, managed by Latchkey
// (read-only in the API and console like a config-file client).
func (a *app) ensureAdminClient(ctx context.Context, redirectURI string) error {
	now := a.clock.Now()
	yes := true
	want := storage.Client{ID: AdminClientID, Name: "Latchkey admin console", Public: true,
		RedirectURIs: []string{redirectURI}, GrantTypes: []string{"authorization_code"}, ResponseTypes: []string{"code"},
		TokenEndpointAuthMethod: "none", ApplicationType: "web", IDTokenSignedAlg: "RS256", RequirePKCE: &yes, FirstParty: &yes,
		Audience: []string{a.cfg.Issuer}, ConfigManaged: true, CreatedAt: now, UpdatedAt: now}
	err := a.db.UpdateClient(ctx, AdminClientID, func(old storage.Client) (storage.Client, error) {
		next := want
		next.CreatedAt = old.CreatedAt
		return next, nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		err = a.db.CreateClient(ctx, want)
		if errors.Is(err, storage.ErrConflict) { // another replica, at the same moment
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("admin console client: %w", err)
	}
	return nil
}

// adminHandler builds the admin listener's handler: the API under
// /api/v1 and the console under /admin, reached at baseURL.
func (a *app) adminHandler(ctx context.Context, km api.SigningKeys, brk *broker.Broker, hasher *local.Hasher, baseURL string) (http.Handler, error) {
	rl := a.cfg.Admin.RateLimit
	sessions := adminSessions{Store: a.sessionStore(), brk: brk, db: a.db}
	srv, err := api.New(api.Options{
		Store:        a.db,
		Clients:      adminClients{a},
		Connectors:   newAdminConnectors(a),
		Keys:         km,
		Sessions:     sessions,
		HashPassword: hasher.Hash,
		Limiter:      ratelimit.New(a.eph, ratelimit.Options{Clock: a.clock, Logger: a.log}),
		RateLimit:    ratelimit.Rule{Name: "admin.apikey", Limit: rl.Limit, Window: rl.Window, FailOpen: rl.FailOpen},
		MaxBodyBytes: a.cfg.HTTP.MaxBodyBytes.Int64(),
		Clock:        a.clock,
		Logger:       a.log,
	})
	if err != nil {
		return nil, err
	}
	redirect := strings.TrimSuffix(baseURL, "/") + "/admin/callback"
	if err := a.ensureAdminClient(ctx, redirect); err != nil {
		return nil, err
	}
	types := map[string][]console.Field{}
	for name, cfg := range connectorSchemas() {
		types[name] = console.FieldsOf(cfg, secretKeys)
	}
	con, err := console.New(console.Options{
		API: srv, Store: a.db, Sessions: sessions, Ephemeral: a.eph,
		Issuer: a.cfg.Issuer, ClientID: AdminClientID, RedirectURL: redirect,
		AdminGroup: a.cfg.Admin.Console.Group, RequireMFA: a.cfg.Admin.Console.RequireMFA,
		HTTPClient:     &http.Client{Timeout: a.cfg.Outbound.Timeout},
		ConnectorTypes: types,
		SecureCookies:  strings.HasPrefix(baseURL, "https://"),
		Clock:          a.clock, Logger: a.log,
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(api.BasePath+"/", srv)
	mux.Handle("/admin", con)
	mux.Handle("/admin/", con)
	return mux, nil
}

// listenAdmin listens on admin.listen and returns the listener and the
// admin base URL (admin.url, else http:// and the address).
func (a *app) listenAdmin() (net.Listener, string, error) {
	ln, err := net.Listen("tcp", a.cfg.Admin.Listen)
	if err != nil {
		return nil, "", fmt.Errorf("admin.listen: listen on %s: %w", a.cfg.Admin.Listen, err)
	}
	base := a.cfg.Admin.URL
	if base == "" {
		base = "http://" + ln.Addr().String()
	}
	return ln, strings.TrimSuffix(base, "/"), nil
}

// serveAdmin serves h on ln until the returned server is shut down.
func (a *app) serveAdmin(ctx context.Context, ln net.Listener, h http.Handler) *http.Server {
	srv := a.httpServer(ctx, h)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.ErrorContext(ctx, "admin listener stopped", slog.Any("error", err))
		}
	}()
	return srv
}

// httpServer is an http.Server for h with the http.* timeouts and limits;
// requests' contexts live as long as ctx's values, not its cancellation.
func (a *app) httpServer(ctx context.Context, h http.Handler) *http.Server {
	cfg := a.cfg
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		ReadTimeout:       cfg.HTTP.ReadTimeout,
		WriteTimeout:      cfg.HTTP.WriteTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
}
