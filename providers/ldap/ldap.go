package ldap

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/mapping"
)

// TypeName is the connector type's name in the registry.
const TypeName = "ldap"

// Length limits on Login's input; longer input is refused before any
// directory request.
const (
	MaxUsernameLength = 256  // bytes, after trimming
	MaxPasswordLength = 1024 // bytes
)

// Type is the ldap connector type.
type Type struct{}

var _ providers.Type = Type{}

// Validate checks an ldap connector's config; see Config. It reads no
// files: a rootCA file is read by Open.
func (Type) Validate(raw json.RawMessage) []providers.FieldProblem {
	_, _, probs := decodeConfig(raw)
	return probs
}

// Open returns a *Connector. It reads the rootCA file but does no network
// I/O: the directory is contacted at the first login.
func (Type) Open(ctx context.Context, info providers.Info, raw json.RawMessage, deps providers.Deps) (providers.Connector, error) {
	s, m, probs := decodeConfig(raw)
	if len(probs) > 0 {
		return nil, &providers.ConfigError{Problems: probs}
	}
	return newConnector(info, s, m, deps)
}

// New opens a connector from a typed Config (for tests and callers that
// build configs in Go).
func New(ctx context.Context, info providers.Info, cfg Config, deps providers.Deps) (*Connector, error) {
	return providers.OpenTyped[*Connector](ctx, Type{}, info, cfg, deps)
}

// Connector signs users in against an LDAP directory.
type Connector struct {
	info   providers.Info
	s      settings
	mapper *mapping.Mapper
	log    *slog.Logger
	dialer *dialer
	pool   *pool
	// binds bounds the short-lived connections that check users'
	// passwords, as the pool bounds the service connections.
	binds     chan struct{}
	userAttrs []string
}

var (
	_ providers.Connector         = (*Connector)(nil)
	_ providers.PasswordConnector = (*Connector)(nil)
)

func newConnector(info providers.Info, s settings, m *mapping.Mapper, deps providers.Deps) (*Connector, error) {
	if info.ID == "" {
		return nil, errors.New("ldap: connector id is empty")
	}
	if info.Name == "" {
		info.Name = info.ID
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var tlsCfg *tls.Config
	if !s.cfg.InsecureNoTLS {
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.host}
		switch {
		case s.cfg.RootCA != "":
			pemData, err := os.ReadFile(s.cfg.RootCA)
			if err != nil {
				return nil, fmt.Errorf("ldap: read rootCA: %w", err)
			}
			if tlsCfg.RootCAs, err = certPool(pemData); err != nil {
				return nil, fmt.Errorf("ldap: rootCA %s: %w", s.cfg.RootCA, err)
			}
		case s.cfg.RootCAData != "":
			var err error
			if tlsCfg.RootCAs, err = certPool([]byte(s.cfg.RootCAData)); err != nil {
				return nil, fmt.Errorf("ldap: rootCAData: %w", err)
			}
		}
	}
	c := &Connector{
		info:   info,
		s:      s,
		mapper: m,
		log:    log.With(slog.String("connector", info.ID)),
		binds:  make(chan struct{}, s.cfg.MaxConnections),
	}
	c.dialer = &dialer{s: &c.s, tls: tlsCfg}
	c.pool = newPool(c.dialer, s.cfg.MaxConnections, s.maxIdleTime, c.bindService)
	us := s.cfg.UserSearch
	for _, a := range append([]string{us.IDAttr, us.UsernameAttr, us.EmailAttr, us.NameAttr}, us.ExtraAttributes...) {
		if strings.EqualFold(a, attrDN) || slices.ContainsFunc(c.userAttrs, func(b string) bool { return strings.EqualFold(a, b) }) {
			continue
		}
		c.userAttrs = append(c.userAttrs, a)
	}
	return c, nil
}

// ID returns the connector's id.
func (c *Connector) ID() string { return c.info.ID }

// Name returns the connector's display name.
func (c *Connector) Name() string { return c.info.Name }

// Close closes the idle pooled connections; connections in use close
// when they are returned. Logins after Close fail.
func (c *Connector) Close() error {
	c.pool.close()
	return nil
}

// bindService binds a new pooled connection as the service account (or
// leaves it anonymous when no bindDN is configured).
func (c *Connector) bindService(ctx context.Context, cn *conn) error {
	if c.s.cfg.BindDN == "" {
		return nil
	}
	err := cn.run(ctx, c.s.requestTimeout, func(l *goldap.Conn) error {
		return l.Bind(c.s.cfg.BindDN, c.s.cfg.BindPassword)
	})
	if goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidCredentials) {
		return fmt.Errorf("ldap: the directory refused the service account %q (check bindDN and bindPassword): %w", c.s.cfg.BindDN, err)
	}
	if err != nil {
		return fmt.Errorf("ldap: bind as the service account: %w", err)
	}
	return nil
}

// withService runs f on a pooled service connection. When a reused
// connection turns out dead (the server restarted or dropped it while
// idle), f is tried once more on another connection.
func (c *Connector) withService(ctx context.Context, f func(*goldap.Conn) error) error {
	for attempt := 0; ; attempt++ {
		cn, reused, err := c.pool.get(ctx, c.s.requestTimeout)
		if err != nil {
			return err
		}
		err = cn.run(ctx, c.s.requestTimeout, f)
		c.pool.put(cn)
		if err != nil && cn.broken && reused && attempt == 0 && ctx.Err() == nil && !errors.Is(err, errTimeout) {
			c.log.DebugContext(ctx, "ldap: pooled connection failed, retrying on another", slog.String("error", err.Error()))
			continue
		}
		return err
	}
}

// Login finds the user's entry with the service account, checks the
// password by binding as that entry on a connection of its own, reads the
// user's groups and returns the Identity. See the package doc.
func (c *Connector) Login(ctx context.Context, username, password string) (providers.Identity, error) {
	username = strings.TrimSpace(username)
	switch {
	case username == "":
		return c.refuse(ctx, "empty username")
	case password == "":
		// An LDAP simple bind with a DN and an empty password is an
		// "unauthenticated bind" that many servers answer with success:
		// never send one.
		return c.refuse(ctx, "empty password")
	case len(username) > MaxUsernameLength || len(password) > MaxPasswordLength:
		return c.refuse(ctx, "input too long")
	case !utf8.ValidString(username) || strings.ContainsFunc(username, unicode.IsControl):
		// No directory has such a name; a filter value with them may be
		// refused as a server error instead of matching nothing.
		return c.refuse(ctx, "username not valid UTF-8 text")
	}

	entry, reason, err := c.findUser(ctx, username)
	if err != nil {
		return providers.Identity{}, c.classify(fmt.Errorf("ldap: user search: %w", err))
	}
	if reason != "" {
		return c.refuse(ctx, reason)
	}

	ok, err := c.checkPassword(ctx, entry.DN, password)
	if err != nil {
		return providers.Identity{}, c.classify(fmt.Errorf("ldap: bind as the user: %w", err))
	}
	if !ok {
		return c.refuse(ctx, "wrong password", slog.String("dn", entry.DN))
	}

	us := c.s.cfg.UserSearch
	id := providers.Identity{
		Subject:       c.subject(ctx, entry),
		Username:      firstValue(entry, us.UsernameAttr),
		Email:         firstValue(entry, us.EmailAttr),
		EmailVerified: c.s.emailVerified,
		Name:          firstValue(entry, us.NameAttr),
		AMR:           []string{"pwd"},
	}
	if id.Username == "" {
		id.Username = username
	}
	if gs := c.s.cfg.GroupSearch; gs != nil {
		groups, err := c.findGroups(ctx, entry.DN, id.Username)
		if err != nil {
			return providers.Identity{}, c.classify(fmt.Errorf("ldap: group search: %w", err))
		}
		id.Groups = groups
		if len(c.s.cfg.AllowedGroups) > 0 && !anyEqualFold(groups, c.s.cfg.AllowedGroups) {
			c.log.InfoContext(ctx, "ldap login denied: in none of the allowed groups", slog.String("dn", entry.DN))
			return providers.Identity{}, &providers.DeniedError{Reason: c.notAllowedReason()}
		}
	}
	if err := c.mapper.Apply(ctx, c.claims(entry, id.Groups), &id); err != nil {
		return providers.Identity{}, err
	}
	if id.Email == "" {
		id.EmailVerified = false
	}
	return id, nil
}

func (c *Connector) refuse(ctx context.Context, reason string, attrs ...any) (providers.Identity, error) {
	// The entered username is never logged: people type their password
	// into the username field. A found entry is named by its DN.
	c.log.DebugContext(ctx, "ldap login refused", append([]any{slog.String("reason", reason)}, attrs...)...)
	return providers.Identity{}, providers.ErrInvalidCredentials
}

func (c *Connector) notAllowedReason() string {
	if c.s.cfg.NotAllowedReason != "" {
		return c.s.cfg.NotAllowedReason
	}
	return mapping.DefaultNotAllowedReason
}

// classify turns an error into what the broker tells apart: no capacity
// (providers.ErrBusy), the directory unreachable or too slow (an
// *providers.UnavailableError), or a server error.
func (c *Connector) classify(err error) error {
	switch {
	case errors.Is(err, errPoolExhausted):
		return fmt.Errorf("%w: %w", providers.ErrBusy, err)
	case errors.Is(err, context.Canceled):
		return err
	case isNetworkError(err):
		return &providers.UnavailableError{ConnectorID: c.info.ID, Connector: c.info.Name, Err: err}
	}
	return err
}

// timeLimit is the server-side time limit of a search, in whole seconds.
func (c *Connector) timeLimit() int {
	return int((c.s.requestTimeout + time.Second - 1) / time.Second)
}

// findUser returns the one entry the user filter matches, or a reason to
// refuse the login (no entry, several).
func (c *Connector) findUser(ctx context.Context, username string) (*goldap.Entry, string, error) {
	us := c.s.cfg.UserSearch
	req := goldap.NewSearchRequest(us.BaseDN, c.s.userScope, goldap.NeverDerefAliases,
		2, c.timeLimit(), false, // two entries are enough to know the match is not unique
		expandFilter(us.Filter, map[string]string{placeholderUsername: username}),
		c.userAttrs, nil)
	var res *goldap.SearchResult
	err := c.withService(ctx, func(l *goldap.Conn) error {
		var err error
		res, err = l.Search(req)
		return err
	})
	switch {
	case goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded):
		c.log.WarnContext(ctx, "ldap: the user filter matched several entries; the login is refused")
		return nil, "several entries match", nil
	case err != nil:
		return nil, "", err
	case len(res.Entries) == 0:
		return nil, "no entry matches", nil
	case len(res.Entries) > 1:
		c.log.WarnContext(ctx, "ldap: the user filter matched several entries; the login is refused",
			slog.Int("entries", len(res.Entries)))
		return nil, "several entries match", nil
	}
	return res.Entries[0], "", nil
}

// checkPassword binds as dn with password on a connection of its own,
// closed afterwards, so pooled connections stay bound as the service
// account. It reports false when the directory refuses the credentials
// (result 49: wrong password, and in Active Directory also a disabled,
// locked or expired account).
func (c *Connector) checkPassword(ctx context.Context, dn, password string) (bool, error) {
	timer := time.NewTimer(c.s.requestTimeout)
	defer timer.Stop()
	select {
	case c.binds <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	case <-timer.C:
		return false, errPoolExhausted
	}
	defer func() { <-c.binds }()

	cn, err := c.dialer.dial(ctx)
	if err != nil {
		return false, err
	}
	defer cn.close()
	err = cn.run(ctx, c.s.requestTimeout, func(l *goldap.Conn) error { return l.Bind(dn, password) })
	switch {
	case err == nil:
		return true, nil
	case goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidCredentials):
		return false, nil
	}
	return false, err
}

// findGroups returns the names of the user's groups, sorted, without
// duplicates. A truncated answer (a server size limit) is an error: the
// group list decides access and must be whole.
func (c *Connector) findGroups(ctx context.Context, userDN, username string) ([]string, error) {
	gs := c.s.cfg.GroupSearch
	var attrs []string
	if !strings.EqualFold(gs.NameAttr, attrDN) {
		attrs = []string{gs.NameAttr}
	} else {
		attrs = []string{"1.1"} // RFC 4511: no attributes
	}
	req := goldap.NewSearchRequest(gs.BaseDN, c.s.groupScope, goldap.NeverDerefAliases, 0, c.timeLimit(), false,
		expandFilter(gs.Filter, map[string]string{placeholderDN: userDN, placeholderUsername: username}),
		attrs, nil)
	var res *goldap.SearchResult
	err := c.withService(ctx, func(l *goldap.Conn) error {
		var err error
		res, err = l.Search(req)
		return err
	})
	if err != nil {
		return nil, err
	}
	groups := []string{}
	for _, e := range res.Entries {
		if strings.EqualFold(gs.NameAttr, attrDN) {
			groups = append(groups, e.DN)
			continue
		}
		for _, v := range e.GetEqualFoldRawAttributeValues(gs.NameAttr) {
			groups = append(groups, valueString(gs.NameAttr, v))
		}
	}
	slices.Sort(groups)
	return slices.Compact(groups), nil
}

// subject returns the entry's stable id: the idAttr value, or the DN
// when idAttr is "dn" or the entry has no value for it.
func (c *Connector) subject(ctx context.Context, e *goldap.Entry) string {
	a := c.s.cfg.UserSearch.IDAttr
	if strings.EqualFold(a, attrDN) {
		return e.DN
	}
	if v := e.GetEqualFoldRawAttributeValue(a); len(v) > 0 {
		return valueString(a, v)
	}
	c.log.WarnContext(ctx, "ldap: entry has no idAttr value; its DN is the subject (it changes when the entry is renamed)",
		slog.String("dn", e.DN), slog.String("id_attr", a))
	return e.DN
}

// claims are what claimMapping and the rules see: every attribute read
// from the user's entry as a list of strings (empty when the entry has
// none), under its configured name; dn; and groups.
func (c *Connector) claims(e *goldap.Entry, groups []string) map[string]any {
	out := make(map[string]any, len(c.userAttrs)+2)
	for _, a := range c.userAttrs {
		vals := []any{}
		for _, v := range e.GetEqualFoldRawAttributeValues(a) {
			vals = append(vals, valueString(a, v))
		}
		out[a] = vals
	}
	out[reservedClaimDN] = e.DN
	gs := make([]any, len(groups))
	for i, g := range groups {
		gs[i] = g
	}
	out[reservedClaimGroups] = gs
	return out
}

func firstValue(e *goldap.Entry, attr string) string {
	if v := e.GetEqualFoldRawAttributeValue(attr); len(v) > 0 {
		return valueString(attr, v)
	}
	return ""
}

func anyEqualFold(have, want []string) bool {
	for _, h := range have {
		for _, w := range want {
			if strings.EqualFold(h, w) {
				return true
			}
		}
	}
	return false
}
