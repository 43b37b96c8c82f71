package config

import (
	"fmt"
	"path/filepath"
	"slices"
	"time"
)

// Default values that the documentation and tests refer to.
const (
	DefaultAddress     = "127.0.0.1:5556"
	DefaultSQLitePath  = "data/latchkey.db"
	DefaultKeyPrefix   = "latchkey:"
	DefaultAdminListen = "127.0.0.1:5557"
)

// applyDefaults is the one place defaults live. present holds the key
// paths the file set (to a non-null value that decoded): a key the file
// set keeps its value, even when it is zero, and validate judges it. Empty
// lists count as unset.
func applyDefaults(cfg *Config, present map[string]bool) {
	str := func(path string, dst *string, v string) {
		if !present[path] {
			*dst = v
		}
	}
	dur := func(path string, dst *time.Duration, v time.Duration) {
		if !present[path] {
			*dst = v
		}
	}
	size := func(path string, dst *ByteSize, v ByteSize) {
		if !present[path] {
			*dst = v
		}
	}
	list := func(dst *[]string, v ...string) {
		if len(*dst) == 0 {
			*dst = v
		}
	}
	boolean := func(path string, dst *bool, v bool) {
		if !present[path] {
			*dst = v
		}
	}

	h := &cfg.HTTP
	str("http.address", &h.Address, DefaultAddress)
	dur("http.readHeaderTimeout", &h.ReadHeaderTimeout, 5*time.Second)
	dur("http.readTimeout", &h.ReadTimeout, 15*time.Second)
	dur("http.writeTimeout", &h.WriteTimeout, 30*time.Second)
	dur("http.idleTimeout", &h.IdleTimeout, 120*time.Second)
	dur("http.shutdownTimeout", &h.ShutdownTimeout, 20*time.Second)
	size("http.maxBodyBytes", &h.MaxBodyBytes, 1<<20)

	s := &cfg.Storage
	if s.SQLite == nil && s.Postgres == nil {
		s.SQLite = &SQLite{}
	}
	if s.SQLite != nil {
		str("storage.sqlite.path", &s.SQLite.Path, DefaultSQLitePath)
	}

	e := &cfg.Ephemeral
	if e.Redis == nil && e.SQL == nil {
		e.SQL = &EphemeralSQL{}
	}
	str("ephemeral.keyPrefix", &e.KeyPrefix, DefaultKeyPrefix)

	k := &cfg.Keys
	list(&k.Algorithms, "RS256", "ES256")
	dur("keys.rotationPeriod", &k.RotationPeriod, 720*time.Hour)
	dur("keys.prePublish", &k.PrePublish, 24*time.Hour)
	dur("keys.checkInterval", &k.CheckInterval, time.Minute)
	// keys.retireAfter: 0 (auto) is the default; the caller derives it.

	t := &cfg.Tokens
	dur("tokens.idTokenTTL", &t.IDTokenTTL, time.Hour)
	dur("tokens.accessTokenTTL", &t.AccessTokenTTL, 10*time.Minute)
	dur("tokens.codeTTL", &t.CodeTTL, 60*time.Second)
	dur("tokens.authRequestTTL", &t.AuthRequestTTL, 10*time.Minute)
	dur("tokens.refreshGraceWindow", &t.RefreshGraceWindow, 2*time.Second)
	dur("tokens.refreshIdleTTL", &t.RefreshIdleTTL, 720*time.Hour)
	dur("tokens.refreshAbsoluteTTL", &t.RefreshAbsoluteTTL, 2160*time.Hour)

	o := &cfg.Outbound
	dur("outbound.timeout", &o.Timeout, 10*time.Second)
	size("outbound.maxBodyBytes", &o.MaxBodyBytes, 1<<20)

	num := func(path string, dst *int, v int) {
		if !present[path] {
			*dst = v
		}
	}
	rule := func(name string, r *LimitRule, limit int, window time.Duration, failOpen bool) {
		num("limits."+name+".limit", &r.Limit, limit)
		dur("limits."+name+".window", &r.Window, window)
		boolean("limits."+name+".failOpen", &r.FailOpen, failOpen)
	}
	l := &cfg.Limits
	rule("loginPerIP", &l.LoginPerIP, 20, time.Minute, false)
	rule("loginPerAccount", &l.LoginPerAccount, 10, 5*time.Minute, false)
	rule("factorPerAccount", &l.FactorPerAccount, 5, 5*time.Minute, false)
	rule("tokenPerClient", &l.TokenPerClient, 600, time.Minute, true)
	rule("recoveryPerAccount", &l.RecoveryPerAccount, 5, time.Hour, false)
	rule("registrationPerIP", &l.RegistrationPerIP, 10, time.Hour, false)
	rule("enrollmentPerAccount", &l.EnrollmentPerAccount, 10, 15*time.Minute, false)
	rule("otpSendPerAccount", &l.OTPSendPerAccount, 5, 15*time.Minute, false)
	rule("recoveryPerIP", &l.RecoveryPerIP, 20, time.Hour, false)
	rule("registrationPerAddress", &l.RegistrationPerAddress, 3, time.Hour, false)
	boolean("accounts.registration.requireVerifiedEmail", &cfg.Accounts.Registration.RequireVerifiedEmail, true)
	num("limits.lockout.threshold", &l.Lockout.Threshold, 5)
	dur("limits.lockout.baseDelay", &l.Lockout.BaseDelay, 30*time.Second)
	dur("limits.lockout.maxDelay", &l.Lockout.MaxDelay, 15*time.Minute)
	dur("limits.lockout.quietPeriod", &l.Lockout.QuietPeriod, time.Hour)

	str("admin.listen", &cfg.Admin.Listen, DefaultAdminListen)
	num("admin.rateLimit.limit", &cfg.Admin.RateLimit.Limit, 600)
	dur("admin.rateLimit.window", &cfg.Admin.RateLimit.Window, time.Minute)
	str("admin.console.group", &cfg.Admin.Console.Group, "latchkey-admins")
	boolean("admin.console.requireMFA", &cfg.Admin.Console.RequireMFA, true)

	mfaDefaults(&cfg.MFA)
	notifyDefaults(&cfg.Notify)
	str("logging.level", &cfg.Logging.Level, "info")
	str("logging.format", &cfg.Logging.Format, "text")

	for i := range cfg.Clients {
		c := &cfg.Clients[i]
		p := func(key string) string { return fmt.Sprintf("clients[%d].%s", i, key) }
		list(&c.GrantTypes, "authorization_code", "refresh_token")
		if slices.Contains(c.GrantTypes, "authorization_code") {
			list(&c.ResponseTypes, "code")
		}
		if c.Public {
			str(p("token_endpoint_auth_method"), &c.TokenEndpointAuthMethod, "none")
		}
		// A confidential client without token_endpoint_auth_method accepts
		// client_secret_basic and client_secret_post (CONTRACTS.md).
		str(p("application_type"), &c.ApplicationType, "web")
		str(p("id_token_signed_response_alg"), &c.IDTokenSignedAlg, "RS256")
		boolean(p("require_pkce"), &c.RequirePKCE, true)
		boolean(p("first_party"), &c.FirstParty, true)
		if cfg.Issuer != "" {
			list(&c.Audience, cfg.Issuer)
		}
	}

	for i := range cfg.Connectors {
		c := &cfg.Connectors[i]
		str(fmt.Sprintf("connectors[%d].name", i), &c.Name, c.ID)
	}
}

// resolvePaths makes the file paths of cfg relative to baseDir.
func resolvePaths(cfg *Config, baseDir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(baseDir, *p)
		}
	}
	if cfg.Storage.SQLite != nil {
		abs(&cfg.Storage.SQLite.Path)
	}
	abs(&cfg.HTTP.TLS.Cert)
	abs(&cfg.HTTP.TLS.Key)
	abs(&cfg.UI.Theme)
	for i := range cfg.UI.Clients {
		abs(&cfg.UI.Clients[i].Theme)
	}
	if cfg.Ephemeral.Redis != nil {
		abs(&cfg.Ephemeral.Redis.TLS.CAFile)
	}
}
