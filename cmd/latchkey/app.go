package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/latchkeyid/latchkey/broker/keys"
	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/internal/config"
	"github.com/latchkeyid/latchkey/internal/logging"
	"github.com/latchkeyid/latchkey/internal/secretbox"
	"github.com/latchkeyid/latchkey/storage"
	"github.com/latchkeyid/latchkey/storage/redisstore"
	"github.com/latchkeyid/latchkey/storage/sqlstore"
)

// app is what a command that reads data holds: the validated config, the
// logger and the open stores. close releases them in reverse order.
type app struct {
	cfg     *config.Config
	log     *slog.Logger
	clock   clock.Clock
	db      *sqlstore.Store
	eph     storage.Ephemeral
	keyring *secretbox.Keyring
	closers []func() error
}

func (a *app) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](); err != nil {
			a.log.Warn("close", slog.Any("error", err))
		}
	}
}

// loadConfig reads and validates the config file. Every problem is listed
// with its key path.
func (c *cli) loadConfig() (*config.Config, error) {
	cfg, err := config.Load(c.configPath, c.env, config.WithConnectorTypes(connectorValidators(connectorRegistry())))
	if err != nil {
		var p *config.Problems
		if errors.As(err, &p) {
			return nil, fmt.Errorf("config %s is not valid:\n%w", c.configPath, err)
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	if _, err := mfaPolicy(cfg, nil); err != nil { // cmd/latchkey/mfa.go
		return nil, fmt.Errorf("config %s is not valid:\n%w", c.configPath, err)
	}
	return cfg, nil
}

// schemaMode says what openApp does about the schema.
type schemaMode int

const (
	schemaMigrate schemaMode = iota // apply pending migrations (serve)
	schemaRequire                   // refuse to run on an unmigrated database
	schemaIgnore                    // migrate status/up handle it themselves
)

// openApp loads the config and opens the durable store (and, when
// withEphemeral, the ephemeral store). It never writes anything unless
// mode is schemaMigrate.
func (c *cli) openApp(ctx context.Context, mode schemaMode, withEphemeral bool) (*app, error) {
	cfg, err := c.loadConfig()
	if err != nil {
		return nil, err
	}
	log, err := logging.New(c.stderr, cfg.Logging.Format, cfg.Logging.Level)
	if err != nil {
		return nil, fmt.Errorf("logging: %w", err)
	}
	a := &app{cfg: cfg, log: log, clock: clock.Real{}}
	ok := false
	defer func() {
		if !ok {
			a.close()
		}
	}()

	opts := sqlstore.Options{Logger: log, Clock: a.clock}
	switch {
	case cfg.Storage.Postgres != nil:
		opts.Dialect, opts.DSN = sqlstore.DialectPostgres, cfg.Storage.Postgres.DSN.Reveal()
	default:
		opts.Dialect, opts.DSN = sqlstore.DialectSQLite, cfg.Storage.SQLite.Path
	}
	db, err := sqlstore.Open(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	a.db = db
	a.closers = append(a.closers, db.Close)

	switch mode {
	case schemaMigrate:
		if err := db.Migrate(ctx); err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
	case schemaRequire:
		current, err := db.SchemaCurrent(ctx)
		if err != nil {
			return nil, fmt.Errorf("check schema: %w", err)
		}
		if !current {
			return nil, errors.New("the database schema is not up to date: run `latchkey migrate up` (or start `latchkey serve`, which migrates)")
		}
	}

	if withEphemeral {
		eph, err := openEphemeral(ctx, cfg, db, log)
		if err != nil {
			return nil, err
		}
		a.eph = eph
		a.closers = append(a.closers, eph.Close)
	}

	ring := make([]secretbox.Key, 0, len(cfg.Keys.EncryptionKeys))
	for _, k := range cfg.Keys.EncryptionKeys {
		ring = append(ring, secretbox.Key{ID: k.ID, Secret: k.Key.Reveal()})
	}
	a.keyring, err = secretbox.NewKeyring(ring, nil)
	if err != nil {
		return nil, fmt.Errorf("keys.encryptionKeys: %w", err)
	}
	ok = true
	return a, nil
}

func openEphemeral(ctx context.Context, cfg *config.Config, db *sqlstore.Store, log *slog.Logger) (storage.Ephemeral, error) {
	r := cfg.Ephemeral.Redis
	if r == nil {
		return nopCloser{db.Ephemeral()}, nil
	}
	o := redisstore.Options{
		Addrs: r.Addrs, Username: r.Username, Password: r.Password.Reveal(), DB: r.DB,
		MasterName: r.MasterName, Prefix: cfg.Ephemeral.KeyPrefix, Logger: log,
	}
	if r.TLS.Enabled {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: r.TLS.ServerName}
		if r.TLS.CAFile != "" {
			pem, err := os.ReadFile(filepath.Clean(r.TLS.CAFile))
			if err != nil {
				return nil, fmt.Errorf("ephemeral.redis.tls.caFile: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("ephemeral.redis.tls.caFile %s: no PEM certificate found", r.TLS.CAFile)
			}
			tc.RootCAs = pool
		}
		o.TLS = tc
	}
	// go-redis logs dial failures through a package-level logger (the
	// library offers no per-client one): send them to our slog handler so
	// they are structured and carry no surprises on stderr.
	redis.SetLogger(redisLogger{log})
	s, err := redisstore.Open(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("ephemeral store: %w", err)
	}
	return s, nil
}

// nopCloser keeps Close of the SQL ephemeral store from closing the
// database the durable store also uses (the durable store closes it).
type nopCloser struct{ storage.Ephemeral }

func (nopCloser) Close() error { return nil }

// IncrBy passes the SQL ephemeral store's storage.CounterAdder through.
func (n nopCloser) IncrBy(ctx context.Context, key string, by int64, ttl time.Duration) (int64, error) {
	a, ok := n.Ephemeral.(storage.CounterAdder)
	if !ok {
		return 0, errors.New("ephemeral store: IncrBy not supported")
	}
	return a.IncrBy(ctx, key, by, ttl)
}

// keyManager opens the signing keys (creating them on first use).
func (a *app) keyManager(ctx context.Context) (*keys.Manager, error) {
	k := a.cfg.Keys
	retire := k.RetireAfter
	if retire == 0 {
		retire = retireAfter(a.cfg.Tokens, k.CheckInterval)
	}
	m, err := keys.New(ctx, a.db, keys.Options{
		Algorithms:     k.Algorithms,
		RotationPeriod: k.RotationPeriod,
		PrePublish:     k.PrePublish,
		CheckInterval:  k.CheckInterval,
		RetireAfter:    retire,
		Keyring:        a.keyring,
		Clock:          a.clock,
		Logger:         a.log,
	})
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	return m, nil
}

// retireAfter is how long a replaced signing key stays in the JWKS: the
// longest lifetime of a token it signed, plus the rotation check interval
// (a replica may sign with the old key until it notices), plus skew.
func retireAfter(t config.Tokens, checkInterval time.Duration) time.Duration {
	longest := max(t.IDTokenTTL, t.AccessTokenTTL)
	return longest + checkInterval + 5*time.Minute
}

// redisLogger adapts slog to go-redis's internal logging interface.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, "redis client", slog.String("detail", fmt.Sprintf(format, v...)))
}
