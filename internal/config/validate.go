package config

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Allowed values, in the order messages list them.
func signingAlgs() []string { return []string{"RS256", "ES256", "EdDSA"} }
func grantTypes() []string {
	return []string{"authorization_code", "refresh_token", "client_credentials"}
}
func authMethods() []string {
	return []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"}
}
func appTypes() []string   { return []string{"web", "native"} }
func logLevels() []string  { return []string{"debug", "info", "warn", "error"} }
func logFormats() []string { return []string{"json", "text"} }

// badSchemes run in the browser or read local files: never a redirect.
func badSchemes() []string {
	return []string{"javascript", "data", "vbscript", "file", "blob", "about"}
}

const loopbackOnly = "http is only allowed for localhost, 127.0.0.1 and ::1; use https"

// checker collects validation problems. Messages quote configured values
// only where they cannot be secrets.
type checker struct {
	problems []Problem
	// algsValid is false when keys.algorithms names an unsupported
	// algorithm; clients are then not checked against it.
	algsValid bool
	// refs holds the key paths whose values came from an ${ENV} or file:
	// reference; quote never shows those.
	refs map[string]bool
}

// quote returns the value at path for a message: quoted, shortened, or
// "the referenced value" if it came from a reference.
func (c *checker) quote(path, value string) string {
	if c.refs[path] {
		return "the referenced value"
	}
	return quoteShort(value)
}

func (c *checker) add(path, format string, args ...any) {
	c.problems = append(c.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (c *checker) positive(path string, d time.Duration) {
	if d <= 0 {
		c.add(path, "must be positive")
	}
}

func (c *checker) positiveSize(path string, b ByteSize) {
	if b <= 0 {
		c.add(path, "must be positive")
	}
}

func (c *checker) oneOf(path, value string, allowed []string) bool {
	if slices.Contains(allowed, value) {
		return true
	}
	c.add(path, "%s is not one of %s", c.quote(path, value), strings.Join(allowed, ", "))
	return false
}

func (c *checker) noDuplicates(path string, list []string) {
	for i, v := range list {
		if slices.Index(list, v) < i {
			c.add(joinIndex(path, i), "%s is listed twice", c.quote(joinIndex(path, i), v))
		}
	}
}

func (c *checker) fileExists(path, name string) {
	info, err := os.Stat(name)
	switch {
	case err != nil:
		c.add(path, "cannot read file %s: %v", strconv.Quote(name), unwrapPathError(err))
	case info.IsDir():
		c.add(path, "%s is a directory, not a file", strconv.Quote(name))
	}
}

// validate checks a decoded, defaulted Config whole.
func validate(cfg *Config, o options, refs map[string]bool) []Problem {
	c := &checker{refs: refs}
	c.issuer(cfg.Issuer)
	c.http(&cfg.HTTP)
	c.storage(&cfg.Storage)
	c.ephemeral(&cfg.Ephemeral)
	c.keys(&cfg.Keys, &cfg.Tokens)
	c.tokens(&cfg.Tokens)
	c.outbound(&cfg.Outbound)
	c.limits(&cfg.Limits)
	c.mfa(&cfg.MFA)
	c.notify(cfg) // notify.go
	c.admin(&cfg.Admin)
	c.ui(&cfg.UI) // ui.go
	ids := c.connectors(cfg.Connectors, o)
	c.clients(cfg, ids)
	c.oneOf("logging.level", cfg.Logging.Level, logLevels())
	c.oneOf("logging.format", cfg.Logging.Format, logFormats())
	return c.problems
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func (c *checker) issuer(s string) {
	const path = "issuer"
	if s == "" {
		c.add(path, "required")
		return
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		c.add(path, "%s is not an absolute http(s) URL", c.quote(path, s))
		return
	}
	if u.User != nil {
		c.add(path, "must not contain user information")
	}
	if u.RawQuery != "" || u.ForceQuery || strings.Contains(s, "#") {
		c.add(path, "must not have a query or fragment")
	}
	if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		c.add(path, "%s", loopbackOnly)
	}
}

// validHostPort reports whether s is host:port with a numeric port;
// listen addresses may leave the host empty and use port 0.
func validHostPort(s string, listen bool) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || port == "" || strings.Trim(port, "0123456789") != "" {
		return false
	}
	n, err := strconv.Atoi(port)
	if err != nil || n > 65535 {
		return false
	}
	if listen {
		return true
	}
	return host != "" && n > 0
}

func (c *checker) http(h *HTTP) {
	if !validHostPort(h.Address, true) {
		c.add("http.address", "%s is not host:port", c.quote("http.address", h.Address))
	}
	switch {
	case h.TLS.Cert != "" && h.TLS.Key == "":
		c.add("http.tls.key", "required when http.tls.cert is set")
	case h.TLS.Cert == "" && h.TLS.Key != "":
		c.add("http.tls.cert", "required when http.tls.key is set")
	}
	if h.TLS.Cert != "" {
		c.fileExists("http.tls.cert", h.TLS.Cert)
	}
	if h.TLS.Key != "" {
		c.fileExists("http.tls.key", h.TLS.Key)
	}
	c.positive("http.readHeaderTimeout", h.ReadHeaderTimeout)
	c.positive("http.readTimeout", h.ReadTimeout)
	c.positive("http.writeTimeout", h.WriteTimeout)
	c.positive("http.idleTimeout", h.IdleTimeout)
	c.positive("http.shutdownTimeout", h.ShutdownTimeout)
	c.positiveSize("http.maxBodyBytes", h.MaxBodyBytes)
}

func (c *checker) storage(s *Storage) {
	if s.SQLite != nil && s.Postgres != nil {
		c.add("storage", "set exactly one of sqlite and postgres")
	}
	if s.SQLite != nil && s.SQLite.Path == "" {
		c.add("storage.sqlite.path", "required")
	}
	if s.Postgres != nil {
		dsn := s.Postgres.DSN.Reveal()
		switch {
		case dsn == "":
			c.add("storage.postgres.dsn", "required")
		case !validDSN(dsn):
			// Never quote the DSN: it holds a password.
			c.add("storage.postgres.dsn", "must be a postgres:// URL or a key=value connection string")
		}
	}
}

func validDSN(dsn string) bool {
	if strings.Contains(dsn, "://") {
		u, err := url.Parse(dsn)
		return err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql")
	}
	return strings.Contains(dsn, "=")
}

func (c *checker) ephemeral(e *Ephemeral) {
	if e.Redis != nil && e.SQL != nil {
		c.add("ephemeral", "set exactly one of redis and sql")
	}
	r := e.Redis
	if r == nil {
		return
	}
	if len(r.Addrs) == 0 {
		c.add("ephemeral.redis.addrs", "required")
	}
	for i, a := range r.Addrs {
		if !validHostPort(a, false) {
			p := joinIndex("ephemeral.redis.addrs", i)
			c.add(p, "%s is not host:port", c.quote(p, a))
		}
	}
	switch {
	case r.DB < 0:
		c.add("ephemeral.redis.db", "must not be negative")
	case r.DB != 0 && len(r.Addrs) > 1 && r.MasterName == "":
		c.add("ephemeral.redis.db", "must be 0 for a Redis Cluster (several addrs without masterName)")
	}
	if !r.TLS.Enabled && (r.TLS.CAFile != "" || r.TLS.ServerName != "") {
		c.add("ephemeral.redis.tls.enabled", "must be true when caFile or serverName is set")
	}
	if r.TLS.CAFile != "" {
		c.fileExists("ephemeral.redis.tls.caFile", r.TLS.CAFile)
	}
}

func validKeyID(id string) bool {
	return id != "" && strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == ""
}

func (c *checker) keys(k *Keys, t *Tokens) {
	algsOK := true
	for i, a := range k.Algorithms {
		if !slices.Contains(signingAlgs(), a) {
			p := joinIndex("keys.algorithms", i)
			c.add(p, "%s is not supported (use RS256, ES256 or EdDSA)", c.quote(p, a))
			algsOK = false
		}
	}
	c.noDuplicates("keys.algorithms", k.Algorithms)
	c.algsValid = algsOK
	if algsOK && !slices.Contains(k.Algorithms, "RS256") {
		c.add("keys.algorithms", "must include RS256 (OpenID Connect requires it)")
	}
	c.positive("keys.rotationPeriod", k.RotationPeriod)
	c.positive("keys.prePublish", k.PrePublish)
	c.positive("keys.checkInterval", k.CheckInterval)
	if k.RotationPeriod > 0 && k.PrePublish >= k.RotationPeriod {
		c.add("keys.prePublish", "must be shorter than keys.rotationPeriod (%s)", k.RotationPeriod)
	}
	longest := max(t.IDTokenTTL, t.AccessTokenTTL)
	switch {
	case k.RetireAfter < 0:
		c.add("keys.retireAfter", "must not be negative")
	case k.RetireAfter > 0 && k.RetireAfter < longest:
		c.add("keys.retireAfter", "must be 0 (auto) or at least the longest token lifetime (%s)", longest)
	}

	if len(k.EncryptionKeys) == 0 {
		c.add("keys.encryptionKeys", "required")
	}
	for i, ek := range k.EncryptionKeys {
		p := joinIndex("keys.encryptionKeys", i)
		switch {
		case ek.ID == "":
			c.add(p+".id", "required")
		case !validKeyID(ek.ID):
			c.add(p+".id", "must match [A-Za-z0-9._-]+")
		default:
			if j := slices.IndexFunc(k.EncryptionKeys, func(o EncryptionKey) bool { return o.ID == ek.ID }); j < i {
				c.add(p+".id", "%s is already used by keys.encryptionKeys[%d]", c.quote(p+".id", ek.ID), j)
			}
		}
		switch len(ek.Key) {
		case 0:
			c.add(p+".key", "required")
		case 32:
		default:
			c.add(p+".key", "must decode to 32 bytes (base64)")
		}
	}
}

func (c *checker) tokens(t *Tokens) {
	c.positive("tokens.idTokenTTL", t.IDTokenTTL)
	c.positive("tokens.accessTokenTTL", t.AccessTokenTTL)
	c.positive("tokens.codeTTL", t.CodeTTL)
	c.positive("tokens.authRequestTTL", t.AuthRequestTTL)
	if t.RefreshGraceWindow < 0 {
		c.add("tokens.refreshGraceWindow", "must not be negative")
	}
	c.positive("tokens.refreshIdleTTL", t.RefreshIdleTTL)
	c.positive("tokens.refreshAbsoluteTTL", t.RefreshAbsoluteTTL)
	if t.RefreshAbsoluteTTL > 0 && t.RefreshIdleTTL > t.RefreshAbsoluteTTL {
		c.add("tokens.refreshIdleTTL", "must not exceed tokens.refreshAbsoluteTTL (%s)", t.RefreshAbsoluteTTL)
	}
}

func (c *checker) outbound(o *Outbound) {
	c.positive("outbound.timeout", o.Timeout)
	c.positiveSize("outbound.maxBodyBytes", o.MaxBodyBytes)
}

// limitRule checks one rate-limit rule at path p.
func (c *checker) limitRule(p string, r LimitRule) {
	if r.Limit < 0 {
		c.add(p+".limit", "must not be negative (0 turns the rule off)")
	}
	if r.Limit > 0 && (r.Window < time.Millisecond || r.Window > 31*24*time.Hour) {
		c.add(p+".window", "must be between 1ms and 31d")
	}
}

func (c *checker) limits(l *Limits) {
	rules := []struct {
		name string
		r    LimitRule
	}{
		{"loginPerIP", l.LoginPerIP}, {"loginPerAccount", l.LoginPerAccount}, {"factorPerAccount", l.FactorPerAccount},
		{"tokenPerClient", l.TokenPerClient}, {"recoveryPerAccount", l.RecoveryPerAccount},
		{"registrationPerIP", l.RegistrationPerIP}, {"enrollmentPerAccount", l.EnrollmentPerAccount},
		{"otpSendPerAccount", l.OTPSendPerAccount}, {"recoveryPerIP", l.RecoveryPerIP},
		{"registrationPerAddress", l.RegistrationPerAddress},
	}
	for _, r := range rules {
		c.limitRule("limits."+r.name, r.r)
	}
	lo := l.Lockout
	if lo.Threshold < 0 {
		c.add("limits.lockout.threshold", "must not be negative (0 turns lockout off)")
	}
	if lo.Threshold > 0 {
		c.positive("limits.lockout.baseDelay", lo.BaseDelay)
		c.positive("limits.lockout.quietPeriod", lo.QuietPeriod)
		if lo.MaxDelay < lo.BaseDelay {
			c.add("limits.lockout.maxDelay", "must be at least limits.lockout.baseDelay (%s)", lo.BaseDelay)
		}
		if lo.MaxDelay > 24*time.Hour {
			c.add("limits.lockout.maxDelay", "must be at most 24h: a lockout is never permanent")
		}
	}
}

func (c *checker) admin(a *Admin) {
	if !validHostPort(a.Listen, true) {
		c.add("admin.listen", "%s is not host:port", c.quote("admin.listen", a.Listen))
	}
	c.limitRule("admin.rateLimit", a.RateLimit)
	if a.URL != "" {
		u, err := url.Parse(a.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
			c.add("admin.url", "%s is not an http(s) base URL without a path", c.quote("admin.url", a.URL))
		}
	}
	if a.Console.Group == "" {
		c.add("admin.console.group", "must not be empty")
	}
}

func validConnectorID(id string) bool {
	return id != "" && strings.Trim(id, "abcdefghijklmnopqrstuvwxyz0123456789-") == ""
}

// connectors checks the connector entries and returns their ids.
func (c *checker) connectors(list []ConnectorConfig, o options) map[string]bool {
	ids := map[string]bool{}
	for i, cc := range list {
		p := joinIndex("connectors", i)
		switch {
		case cc.ID == "":
			c.add(p+".id", "required")
		case !validConnectorID(cc.ID):
			c.add(p+".id", "must match [a-z0-9-]+")
		case ids[cc.ID]:
			j := slices.IndexFunc(list, func(o ConnectorConfig) bool { return o.ID == cc.ID })
			c.add(p+".id", "%s is already used by connectors[%d]", c.quote(p+".id", cc.ID), j)
		default:
			ids[cc.ID] = true
		}
		if cc.Type == "" {
			c.add(p+".type", "required")
			continue
		}
		if o.connectorTypes == nil {
			continue
		}
		check, known := o.connectorTypes[cc.Type]
		if !known {
			c.add(p+".type", "unknown connector type %s (known: %s)", c.quote(p+".type", cc.Type), o.knownTypes())
			continue
		}
		if check == nil {
			continue
		}
		for _, pr := range check(cc.Config.JSON()) {
			path := p + ".config"
			switch {
			case pr.Path == "":
			case strings.HasPrefix(pr.Path, "["):
				path += pr.Path
			default:
				path += "." + pr.Path
			}
			c.add(path, "%s", pr.Message)
		}
	}
	return ids
}

func validClientID(id string) bool {
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return id != ""
}

// validScope reports whether s is space-separated RFC 6749 scope-tokens.
func validScope(s string) bool {
	for _, tok := range strings.Split(s, " ") {
		if tok == "" {
			return false
		}
		for i := 0; i < len(tok); i++ {
			ch := tok[i]
			if ch < 0x21 || ch > 0x7e || ch == '"' || ch == '\\' {
				return false
			}
		}
	}
	return true
}

func (c *checker) clients(cfg *Config, connectorIDs map[string]bool) {
	seen := map[string]int{}
	for i := range cfg.Clients {
		cl := &cfg.Clients[i]
		p := func(key string) string { return joinIndex("clients", i) + "." + key }

		switch {
		case cl.ID == "":
			c.add(p("client_id"), "required")
		case !validClientID(cl.ID):
			c.add(p("client_id"), "must be printable ASCII without spaces")
		default:
			if j, dup := seen[cl.ID]; dup {
				c.add(p("client_id"), "%s is already used by clients[%d]", c.quote(p("client_id"), cl.ID), j)
			} else {
				seen[cl.ID] = i
			}
		}

		method := cl.TokenEndpointAuthMethod
		if method != "" {
			c.oneOf(p("token_endpoint_auth_method"), method, authMethods())
		}
		switch {
		case cl.Public && method != "none":
			c.add(p("token_endpoint_auth_method"), `must be "none" for a public client`)
		case !cl.Public && method == "none":
			c.add(p("token_endpoint_auth_method"), `"none" requires public: true`)
		}
		switch {
		case cl.Public && cl.Secret != "":
			c.add(p("client_secret"), "must not be set for a public client")
		case !cl.Public && method == "private_key_jwt" && cl.Secret != "":
			c.add(p("client_secret"), "must not be set with token_endpoint_auth_method private_key_jwt")
		case !cl.Public && method != "private_key_jwt" && method != "none" && cl.Secret == "":
			c.add(p("client_secret"), "required for a confidential client")
		}
		if method == "private_key_jwt" && len(cl.JWKS) == 0 && cl.JWKSURI == "" {
			c.add(p("token_endpoint_auth_method"), "private_key_jwt needs jwks or jwks_uri")
		}
		if len(cl.JWKS) > 0 {
			var set struct {
				Keys []json.RawMessage `json:"keys"`
			}
			if err := json.Unmarshal(cl.JWKS, &set); err != nil || set.Keys == nil {
				c.add(p("jwks"), `must be a JWK Set (a mapping with a "keys" list)`)
			}
			if cl.JWKSURI != "" {
				c.add(p("jwks_uri"), "must not be set together with jwks")
			}
		}
		if cl.JWKSURI != "" {
			c.httpURL(p("jwks_uri"), cl.JWKSURI)
		}

		codeFlow := slices.Contains(cl.GrantTypes, "authorization_code")
		for j, g := range cl.GrantTypes {
			c.oneOf(joinIndex(p("grant_types"), j), g, grantTypes())
		}
		c.noDuplicates(p("grant_types"), cl.GrantTypes)
		if cl.Public && slices.Contains(cl.GrantTypes, "client_credentials") {
			c.add(p("grant_types"), "client_credentials needs a confidential client")
		}
		for j, r := range cl.ResponseTypes {
			if r != "code" {
				rp := joinIndex(p("response_types"), j)
				c.add(rp, `%s is not supported (only "code")`, c.quote(rp, r))
			}
		}
		if len(cl.ResponseTypes) > 0 && !codeFlow {
			c.add(p("response_types"), "needs grant type authorization_code")
		}
		c.oneOf(p("application_type"), cl.ApplicationType, appTypes())
		if c.oneOf(p("id_token_signed_response_alg"), cl.IDTokenSignedAlg, signingAlgs()) && c.algsValid &&
			!slices.Contains(cfg.Keys.Algorithms, cl.IDTokenSignedAlg) {
			c.add(p("id_token_signed_response_alg"), "%s is not in keys.algorithms", c.quote(p("id_token_signed_response_alg"), cl.IDTokenSignedAlg))
		}
		if cl.Public && !cl.RequirePKCE {
			c.add(p("require_pkce"), "cannot be false for a public client")
		}

		if codeFlow && len(cl.RedirectURIs) == 0 {
			c.add(p("redirect_uris"), "required")
		}
		for j, u := range cl.RedirectURIs {
			c.redirectURI(joinIndex(p("redirect_uris"), j), u, cl.ApplicationType)
		}
		for j, u := range cl.PostLogoutRedirectURIs {
			c.redirectURI(joinIndex(p("post_logout_redirect_uris"), j), u, cl.ApplicationType)
		}
		for j, a := range cl.Audience {
			if a == "" {
				c.add(joinIndex(p("audience"), j), "must not be empty")
			}
		}
		for j, id := range cl.AllowedConnectors {
			if id != "local" && !connectorIDs[id] {
				ap := joinIndex(p("allowed_connectors"), j)
				c.add(ap, `%s is not a configured connector (or "local")`, c.quote(ap, id))
			}
		}
		if cl.Scope != "" && !validScope(cl.Scope) {
			c.add(p("scope"), "must be scope tokens separated by single spaces")
		}
		if cl.BackchannelLogoutURI != "" {
			c.httpURL(p("backchannel_logout_uri"), cl.BackchannelLogoutURI)
		}
		if cl.FrontchannelLogoutURI != "" {
			c.httpURL(p("frontchannel_logout_uri"), cl.FrontchannelLogoutURI)
		}
	}
}

// redirectURI checks a redirect or post-logout redirect URI: absolute, no
// fragment, https (http only to a loopback host), a custom scheme only for
// native apps, never a scheme that runs in the browser.
func (c *checker) redirectURI(path, raw, appType string) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		c.add(path, "%s is not an absolute URL", c.quote(path, raw))
		return
	}
	if strings.Contains(raw, "#") {
		c.add(path, "%s must not have a fragment", c.quote(path, raw))
	}
	switch {
	case u.Scheme == "https" || u.Scheme == "http":
		if u.Host == "" {
			c.add(path, "%s is not an absolute URL", c.quote(path, raw))
		} else if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
			c.add(path, "%s: %s", c.quote(path, raw), loopbackOnly)
		}
	case slices.Contains(badSchemes(), u.Scheme):
		c.add(path, "%s: scheme %s is not allowed", c.quote(path, raw), u.Scheme)
	case appType != "native":
		c.add(path, "%s: a custom scheme needs application_type native", c.quote(path, raw))
	}
}

// httpURL checks a URL Latchkey itself calls or frames: absolute https
// (http only to a loopback host), no fragment.
func (c *checker) httpURL(path, raw string) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		c.add(path, "%s is not an absolute http(s) URL", c.quote(path, raw))
		return
	}
	if strings.Contains(raw, "#") {
		c.add(path, "%s must not have a fragment", c.quote(path, raw))
	}
	if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		c.add(path, "%s: %s", c.quote(path, raw), loopbackOnly)
	}
}
