package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchkeyid/latchkey/broker"
	"github.com/latchkeyid/latchkey/providers/local"
	"github.com/latchkeyid/latchkey/storage"
	"github.com/latchkeyid/latchkey/web"
)

func newServeCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "run the server (migrates the schema first, under a lock)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return c.serve(cmd.Context()) },
	}
}

// eventsDrainTimeout bounds the wait for queued audit events at shutdown.
const eventsDrainTimeout = 10 * time.Second

// sweepInterval is how often the SQL ephemeral store drops expired rows;
// pruneInterval how often the refresh families that can no longer refresh
// are deleted.
const (
	sweepInterval = time.Minute
	pruneInterval = time.Hour
)

// serve runs until ctx is cancelled (SIGINT/SIGTERM), then stops accepting
// connections and drains in-flight requests for up to
// http.shutdownTimeout.
func (c *cli) serve(ctx context.Context) error {
	a, err := c.openApp(ctx, schemaMigrate, true)
	if err != nil {
		return err
	}
	defer a.close()
	cfg := a.cfg

	if err := syncConfig(ctx, a.db, cfg, a.keyring, a.clock.Now()); err != nil {
		return err
	}
	if cfg.Demo.CreateUser {
		if err := c.createDemoUser(ctx, a); err != nil {
			return err
		}
	}
	km, err := a.keyManager(ctx)
	if err != nil {
		return err
	}
	md, err := broker.NewMetadata(cfg.Issuer, km.Algorithms())
	if err != nil {
		return err
	}
	md = md.WithCodeFlow().WithLogout()
	conns, err := a.openConnectors(ctx)
	if err != nil {
		return err
	}
	hasher := local.NewHasher(local.DefaultParams, 0, 0, nil)
	brk, err := a.newBroker(km, hasher, conns)
	if err != nil {
		return err
	}
	if brk.AccountsEnabled() { // the account page signs in as its built-in client
		if err := brk.EnsureAccountClient(ctx); err != nil {
			return err
		}
	}
	// token.issued events are written in the background: every return
	// below, after the requests have drained, waits for them before the
	// store closes.
	defer func() {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), eventsDrainTimeout)
		defer cancel()
		if err := brk.WaitEvents(wctx); err != nil {
			a.log.Error("audit events still queued at shutdown", slog.Any("error", err))
		}
	}()
	jwksMaxAge := min(cfg.Keys.PrePublish/2, time.Hour)
	var theme *web.Theme
	if cfg.UI.Theme != "" {
		if theme, err = web.LoadTheme(os.DirFS(cfg.UI.Theme)); err != nil {
			return fmt.Errorf("ui.theme: %w", err)
		}
	}
	clientThemes := map[string]*web.Theme{}
	for i, ct := range cfg.UI.Clients {
		if clientThemes[ct.ClientID], err = web.LoadTheme(os.DirFS(ct.Theme)); err != nil {
			return fmt.Errorf("ui.clients[%d].theme: %w", i, err)
		}
	}
	handler, err := web.New(web.Options{
		Metadata: md,
		Keys:     km,
		Broker:   brk,
		Checks: []web.Check{
			{Name: "durable", Ping: a.db.Ping},
			{Name: "ephemeral", Ping: a.eph.Ping},
		},
		MaxBodyBytes:   cfg.HTTP.MaxBodyBytes.Int64(),
		TrustedProxies: cfg.HTTP.TrustedProxies,
		JWKSMaxAge:     jwksMaxAge,
		HTTPS:          strings.HasPrefix(cfg.Issuer, "https://"),
		Logger:         a.log,
		Clock:          a.clock,
		Theme:          theme,
		ClientThemes:   clientThemes,
	})
	if err != nil {
		return err
	}

	srv := a.httpServer(ctx, handler)
	ln, err := net.Listen("tcp", cfg.HTTP.Address)
	if err != nil {
		return fmt.Errorf("http.address: listen on %s: %w", cfg.HTTP.Address, err)
	}

	bg, stopBG := context.WithCancel(ctx)
	defer stopBG()
	go km.Run(bg)
	go conns.Watch(bg, enabledConnectors{a.db}, connectorPollInterval) // re-open changed connectors
	if cfg.Ephemeral.Redis == nil {
		go every(bg, a.log, sweepInterval, "expired ephemeral rows", a.db.Ephemeral().Sweep)
	}
	go every(bg, a.log, pruneInterval, "expired refresh token families", func(ctx context.Context) (int64, error) {
		now := a.clock.Now()
		return a.db.PruneRefreshTokens(ctx, now.Add(-cfg.Tokens.RefreshAbsoluteTTL), now.Add(-cfg.Tokens.RefreshIdleTTL))
	})

	served := make(chan error, 1)
	go func() {
		if cfg.HTTP.TLS.Enabled() {
			served <- srv.ServeTLS(ln, cfg.HTTP.TLS.Cert, cfg.HTTP.TLS.Key)
		} else {
			served <- srv.Serve(ln)
		}
	}()
	var admin *http.Server
	if cfg.Admin.Enabled {
		aln, base, err := a.listenAdmin()
		if err != nil {
			_ = srv.Close()
			return err
		}
		h, err := a.adminHandler(ctx, km, brk, hasher, base)
		if err != nil {
			_ = aln.Close()
			_ = srv.Close()
			return err
		}
		admin = a.serveAdmin(ctx, aln, h)
		defer admin.Close()
		a.log.Info("admin API and console serving", slog.String("api", base+"/api/v1"), slog.String("console", base+"/admin/"))
	}
	// Start-up hashed the local connector's dummy password with argon2id
	// (DefaultParams: a 19 MiB buffer) and parsed config, keys and
	// templates: give that garbage back to the OS now, not whenever the
	// scavenger gets to it (about 10 MB of idle RSS, docs/performance.md).
	debug.FreeOSMemory()
	scheme := "http"
	if cfg.HTTP.TLS.Enabled() {
		scheme = "https"
	}
	a.log.Info("latchkey serving", slog.String("version", version),
		slog.String("address", scheme+"://"+ln.Addr().String()), slog.String("issuer", cfg.Issuer),
		slog.String("storage", a.db.Dialect()), slog.Bool("redis", cfg.Ephemeral.Redis != nil))
	if !strings.HasPrefix(cfg.Issuer, "https://") {
		a.log.Warn("issuer is plain http: cookies cannot be Secure and lose their __Host- prefix; use this for local development only")
		if !localIssuer(cfg.Issuer) {
			a.log.Warn("issuer is plain http on a host that is not localhost: session cookies travel in clear text; serve it over https")
		}
	}

	select {
	case err := <-served:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	a.log.Info("shutting down: draining in-flight requests", slog.Duration("timeout", cfg.HTTP.ShutdownTimeout))
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.HTTP.ShutdownTimeout)
	defer cancel()
	if admin != nil {
		if err := admin.Shutdown(sctx); err != nil {
			a.log.Warn("admin listener drain", slog.Any("error", err))
		}
	}
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	if err := brk.WaitLogoutDeliveries(sctx); err != nil {
		a.log.Warn("back-channel logout deliveries still pending at shutdown", slog.Any("error", err))
	}
	a.log.Info("stopped")
	return nil
}

// localIssuer reports whether the issuer's host is localhost or a
// loopback address (plain http is then a local development setup).
func localIssuer(issuer string) bool {
	u, err := url.Parse(issuer)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// every runs fn each interval until ctx ends: the periodic deletion of
// rows nobody can use any more (what names them in the log). Every replica
// runs it; the deletes are idempotent.
func every(ctx context.Context, log *slog.Logger, interval time.Duration, what string, fn func(context.Context) (int64, error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := fn(ctx); err != nil {
				log.WarnContext(ctx, "delete "+what, slog.Any("error", err))
			} else if n > 0 {
				log.DebugContext(ctx, "deleted "+what, slog.Int64("rows", n))
			}
		}
	}
}

// createDemoUser creates the user "demo" with a random password on the
// first start with an empty user table (CONTRACTS.md "Demo") and prints
// the password once, alone on stdout.
func (c *cli) createDemoUser(ctx context.Context, a *app) error {
	users, err := a.db.ListUsers(ctx)
	if err != nil {
		return fmt.Errorf("demo user: %w", err)
	}
	if len(users) > 0 {
		return nil
	}
	password, err := generatePassword()
	if err != nil {
		return err
	}
	_, err = createUser(ctx, a.db, local.NewHasher(local.DefaultParams, 0, 0, nil),
		storage.User{Username: "demo", Email: "demo@example.com", EmailVerified: true, Name: "Demo User", Groups: []string{"demo"}},
		password, "system")
	if err != nil {
		// Another replica starting at the same moment created it.
		a.log.WarnContext(ctx, "demo user not created", slog.Any("error", err))
		return nil
	}
	a.log.InfoContext(ctx, "created the demo user: sign in as \"demo\" with the password printed on stdout (shown once)")
	_, err = fmt.Fprintln(c.stdout, password)
	return err
}
