package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/storage"
)

// DurablePrecision is the time precision the suite checks: times are
// compared after truncation to it, in UTC. A backend keeps at least this
// much (PostgreSQL's timestamptz keeps microseconds) and may return times
// in any location.
const DurablePrecision = time.Microsecond

// durWorkers is the number of goroutines racing in the concurrency tests.
const durWorkers = 20

// durBarrierWait bounds how long the keys race waits for all updaters to
// have read the record. A backend that holds a lock while the updater runs
// never lets them all arrive; after this the race goes on and the test
// reports the extra winners instead of hanging.
const durBarrierWait = 5 * time.Second

// errDurBoom is the error the suite's failing updaters and transactions
// return.
var errDurBoom = errors.New("conformance: updater failed on purpose")

// RunDurable runs the suite every storage.Durable backend passes.
//
// open is called once per sub-test and must return an empty store with its
// schema in place; it registers whatever cleanup the store needs with
// t.Cleanup (the suite never calls Close). Sub-tests do not run in
// parallel with each other.
//
// What the suite holds a backend to, beyond the interface's comments:
// every field of every record round-trips exactly (json.RawMessage byte
// for byte; Extra and Event.Data as JSON values; nil slices, maps and
// pointers stay nil; a *bool pointing to false stays so); times compare at
// DurablePrecision; errors wrap the sentinels and name the id; Update*
// call the updater with the stored record and give it no lost update under
// concurrency; EventFilter.Since is inclusive and Limit keeps the oldest.
func RunDurable(t *testing.T, open func(t *testing.T) storage.Durable) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, open func(t *testing.T) storage.Durable)
	}{
		{"Clients", func(t *testing.T, open func(t *testing.T) storage.Durable) { durRunKind(t, open, durClients) }},
		{"Connectors", func(t *testing.T, open func(t *testing.T) storage.Durable) { durRunKind(t, open, durConnectors) }},
		{"Users", func(t *testing.T, open func(t *testing.T) storage.Durable) { durRunKind(t, open, durUsers) }},
		{"UserByUsername", durTestUserByUsername},
		{"UsernameUnique", durTestUsernameUnique},
		{"ConcurrentUpdates", durTestConcurrentUpdates},
		{"Keys", durTestKeys},
		{"KeysCompareAndSwap", durTestKeysCAS},
		{"Consents", durTestConsents},
		{"UserConsents", durTestUserConsents},
		{"RefreshTokens", durTestRefreshTokens},
		{"MFACredentials", durTestMFA},
		{"Identities", durTestIdentities},
		{"APIKeys", durTestAPIKeys},
		{"Tx", durTestTx},
		{"Events", durTestEvents},
		{"ListEvents", durTestListEvents},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, durOpen(open)) })
	}
}

// durOpen checks what open returns.
func durOpen(open func(t *testing.T) storage.Durable) func(t *testing.T) storage.Durable {
	return func(t *testing.T) storage.Durable {
		t.Helper()
		s := open(t)
		if s == nil {
			t.Fatal("open returned a nil storage.Durable")
		}
		return s
	}
}

// --- helpers ---------------------------------------------------------------

// durTime is t as the suite compares it.
func durTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(DurablePrecision)
}

// durFixtureTime is a time with nanoseconds in a zone other than UTC, so a
// backend must convert and truncate it consistently.
func durFixtureTime(minute int) time.Time {
	return time.Date(2024, 5, 6, 7, minute, 9, 123456789, time.FixedZone("UTC+2", 2*3600))
}

// durWantErr fails unless err is nil (want nil) or wraps want and not the
// other sentinel.
func durWantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("%s: %v, want nil", what, err)
	case want == nil:
	case err == nil:
		t.Fatalf("%s: nil error, want errors.Is(err, %v)", what, want)
	case !errors.Is(err, want):
		t.Fatalf("%s: error %v, want errors.Is(err, %v)", what, err, want)
	case want == storage.ErrNotFound && errors.Is(err, storage.ErrConflict),
		want == storage.ErrConflict && errors.Is(err, storage.ErrNotFound):
		t.Fatalf("%s: error %v matches both ErrNotFound and ErrConflict", what, err)
	}
}

// durWantErrNaming is durWantErr for an error that must also name id.
func durWantErrNaming(t *testing.T, what string, err, want error, id string) {
	t.Helper()
	durWantErr(t, what, err, want)
	if !strings.Contains(err.Error(), id) {
		t.Fatalf("%s: error %q does not name %q", what, err, id)
	}
}

func durEqual[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got  %s\n want %s", what, durDump(got), durDump(want))
	}
}

// durDump shows a value with its types, so nil and empty differ.
func durDump(v any) string { return fmt.Sprintf("%#v", v) }

// durAllSet fails unless every exported field of the struct v is non-zero,
// so that a field added to a record without adding it to the fixture makes
// the suite fail instead of going untested.
func durAllSet(t *testing.T, v any) {
	t.Helper()
	rv := reflect.ValueOf(v)
	for i := range rv.NumField() {
		f := rv.Type().Field(i)
		if f.IsExported() && rv.Field(i).IsZero() {
			t.Fatalf("fixture %T leaves %s zero: set it so the round trip covers it", v, f.Name)
		}
	}
}

func durPtr[T any](v T) *T { return &v }

// durBarrier lets n goroutines wait until all have arrived, or until
// durBarrierWait has passed since the first arrived.
type durBarrier struct {
	n       int32
	arrived atomic.Int32
	all     chan struct{}
	expired chan struct{}
	once    sync.Once
}

func newDurBarrier(n int) *durBarrier {
	return &durBarrier{n: int32(n), all: make(chan struct{}), expired: make(chan struct{})}
}

func (b *durBarrier) wait() {
	b.once.Do(func() { time.AfterFunc(durBarrierWait, func() { close(b.expired) }) })
	if b.arrived.Add(1) == b.n {
		close(b.all)
	}
	select {
	case <-b.all:
	case <-b.expired:
	}
}

// --- CRUD, once per record kind ------------------------------------------

// durKind describes one record kind to the generic CRUD tests.
type durKind[T any] struct {
	name string
	// full sets every field; minimal only the id and the times.
	full, minimal func(id string) T
	// change returns r with every mutable field changed, UpdatedAt included.
	change func(r T) T
	// norm is r as the suite compares it.
	norm   func(r T) T
	create func(ctx context.Context, s storage.Durable, r T) error
	get    func(ctx context.Context, s storage.Durable, id string) (T, error)
	list   func(ctx context.Context, s storage.Durable) ([]T, error)
	update func(ctx context.Context, s storage.Durable, id string, fn func(T) (T, error)) error
	del    func(ctx context.Context, s storage.Durable, id string) error
	id     func(r T) string
}

func durRunKind[T any](t *testing.T, open func(t *testing.T) storage.Durable, k durKind[T]) {
	t.Run("FixtureComplete", func(t *testing.T) { durAllSet(t, k.full("x")) })

	t.Run("RoundTrip", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		for _, tc := range []struct {
			name string
			rec  T
		}{
			{"every field", k.full(k.name + "-full")},
			{"only required", k.minimal(k.name + "-minimal")},
		} {
			t.Run(tc.name, func(t *testing.T) {
				durWantErr(t, "create", k.create(ctx, s, tc.rec), nil)
				got, err := k.get(ctx, s, k.id(tc.rec))
				durWantErr(t, "get", err, nil)
				durEqual(t, "get after create", k.norm(got), k.norm(tc.rec))
			})
		}
	})

	t.Run("List", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		got, err := k.list(ctx, s)
		durWantErr(t, "list empty store", err, nil)
		if len(got) != 0 {
			t.Fatalf("list of an empty store = %s, want nothing", durDump(got))
		}
		var want []T
		for _, id := range []string{"b", "c", "a"} {
			r := k.full(k.name + "-" + id)
			durWantErr(t, "create "+id, k.create(ctx, s, r), nil)
			want = append(want, k.norm(r))
		}
		got, err = k.list(ctx, s)
		durWantErr(t, "list", err, nil)
		byID := func(a, b T) int { return strings.Compare(k.id(a), k.id(b)) }
		for i := range got {
			got[i] = k.norm(got[i])
		}
		slices.SortFunc(got, byID)
		slices.SortFunc(want, byID)
		durEqual(t, "list (sorted by id)", got, want)
	})

	t.Run("Update", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		id := k.name + "-1"
		orig := k.full(id)
		durWantErr(t, "create", k.create(ctx, s, orig), nil)
		var seen []T
		err := k.update(ctx, s, id, func(old T) (T, error) {
			seen = append(seen, old)
			return k.change(old), nil
		})
		durWantErr(t, "update", err, nil)
		if len(seen) == 0 {
			t.Fatal("update returned nil without calling the updater")
		}
		durEqual(t, "record the updater saw", k.norm(seen[len(seen)-1]), k.norm(orig))
		got, err := k.get(ctx, s, id)
		durWantErr(t, "get", err, nil)
		durEqual(t, "get after update", k.norm(got), k.norm(k.change(orig)))
	})

	t.Run("UpdaterError", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		id := k.name + "-1"
		orig := k.full(id)
		durWantErr(t, "create", k.create(ctx, s, orig), nil)
		err := k.update(ctx, s, id, func(old T) (T, error) {
			return k.change(old), fmt.Errorf("wrapped: %w", errDurBoom)
		})
		if !errors.Is(err, errDurBoom) {
			t.Fatalf("update with a failing updater: error %v, want errors.Is(err, errDurBoom)", err)
		}
		got, err := k.get(ctx, s, id)
		durWantErr(t, "get", err, nil)
		durEqual(t, "record after a failed update", k.norm(got), k.norm(orig))
	})

	t.Run("Missing", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		durWantErr(t, "create other", k.create(ctx, s, k.full(k.name+"-other")), nil)
		id := k.name + "-missing"
		_, err := k.get(ctx, s, id)
		durWantErrNaming(t, "get missing", err, storage.ErrNotFound, id)
		called := false
		err = k.update(ctx, s, id, func(old T) (T, error) { called = true; return old, nil })
		durWantErrNaming(t, "update missing", err, storage.ErrNotFound, id)
		if called {
			t.Fatal("update of a missing record called the updater")
		}
		durWantErrNaming(t, "delete missing", k.del(ctx, s, id), storage.ErrNotFound, id)
	})

	t.Run("Delete", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		keep, gone := k.full(k.name+"-keep"), k.full(k.name+"-gone")
		durWantErr(t, "create keep", k.create(ctx, s, keep), nil)
		durWantErr(t, "create gone", k.create(ctx, s, gone), nil)
		durWantErr(t, "delete", k.del(ctx, s, k.id(gone)), nil)
		_, err := k.get(ctx, s, k.id(gone))
		durWantErr(t, "get deleted", err, storage.ErrNotFound)
		durWantErr(t, "delete again", k.del(ctx, s, k.id(gone)), storage.ErrNotFound)
		got, err := k.get(ctx, s, k.id(keep))
		durWantErr(t, "get kept", err, nil)
		durEqual(t, "kept record", k.norm(got), k.norm(keep))
		// The id is free again.
		durWantErr(t, "create again", k.create(ctx, s, gone), nil)
	})

	t.Run("DuplicateCreate", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		id := k.name + "-dup"
		orig := k.full(id)
		durWantErr(t, "create", k.create(ctx, s, orig), nil)
		err := k.create(ctx, s, k.change(orig))
		durWantErrNaming(t, "create duplicate", err, storage.ErrConflict, id)
		got, err := k.get(ctx, s, id)
		durWantErr(t, "get", err, nil)
		durEqual(t, "record after a duplicate create", k.norm(got), k.norm(orig))
	})
}

var durClients = durKind[storage.Client]{
	name: "client",
	full: func(id string) storage.Client {
		return storage.Client{
			ID:                      id,
			Name:                    "Example <App> & Co",
			SecretHash:              "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
			Public:                  true,
			RedirectURIs:            []string{"https://app.example.com/cb", "http://127.0.0.1/cb?x=1&y=2"},
			PostLogoutRedirectURIs:  []string{"https://app.example.com/bye"},
			GrantTypes:              []string{"authorization_code", "refresh_token"},
			ResponseTypes:           []string{"code"},
			TokenEndpointAuthMethod: "private_key_jwt",
			ApplicationType:         "native",
			IDTokenSignedAlg:        "ES256",
			RequirePKCE:             durPtr(false),
			FirstParty:              durPtr(true),
			Audience:                []string{"https://api.example.com", "urn:other"},
			AllowedConnectors:       []string{"github", "local"},
			Scope:                   "openid profile email",
			SessionBoundRefresh:     true,
			BackchannelLogoutURI:    "https://app.example.com/bc-logout",
			FrontchannelLogoutURI:   "https://app.example.com/fc-logout",
			// Whitespace, key order and escapes must survive byte for byte.
			JWKS:    json.RawMessage(`{ "keys": [ {"kty":"EC", "crv":"P-256", "x":"\u0041bc"} ] }`),
			JWKSURI: "https://app.example.com/jwks.json",
			Extra: map[string]any{
				"logo_uri":         "https://app.example.com/logo.png",
				"software_version": float64(2.5),
				"contacts":         []any{"ops@example.com", "dev@example.com"},
				"nested":           map[string]any{"flag": true, "none": nil},
			},
			Disabled:      true,
			ConfigManaged: true,
			CreatedAt:     durFixtureTime(1),
			UpdatedAt:     durFixtureTime(2),
		}
	},
	minimal: func(id string) storage.Client {
		return storage.Client{ID: id, CreatedAt: durFixtureTime(1), UpdatedAt: durFixtureTime(1)}
	},
	change: func(c storage.Client) storage.Client {
		c.Name += " (renamed)"
		c.SecretHash = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"
		c.Public = !c.Public
		c.RedirectURIs = append(slices.Clone(c.RedirectURIs), "https://app.example.com/cb2")
		c.PostLogoutRedirectURIs = nil
		c.GrantTypes = []string{"client_credentials"}
		c.ResponseTypes = []string{"code", "id_token"}
		c.TokenEndpointAuthMethod = "client_secret_basic"
		c.ApplicationType = "web"
		c.IDTokenSignedAlg = "RS256"
		c.RequirePKCE = durPtr(true)
		c.FirstParty = nil
		c.Audience = []string{"https://api2.example.com"}
		c.AllowedConnectors = nil
		c.Scope = "openid"
		c.SessionBoundRefresh = !c.SessionBoundRefresh
		c.BackchannelLogoutURI = ""
		c.FrontchannelLogoutURI = "https://app.example.com/fc2"
		c.JWKS = json.RawMessage(`{"keys":[]}`)
		c.JWKSURI = ""
		c.Extra = map[string]any{"logo_uri": "https://app.example.com/logo2.png"}
		c.Disabled = !c.Disabled
		c.ConfigManaged = !c.ConfigManaged
		c.UpdatedAt = durFixtureTime(30)
		return c
	},
	norm: func(c storage.Client) storage.Client {
		c.CreatedAt, c.UpdatedAt = durTime(c.CreatedAt), durTime(c.UpdatedAt)
		return c
	},
	create: func(ctx context.Context, s storage.Durable, c storage.Client) error { return s.CreateClient(ctx, c) },
	get: func(ctx context.Context, s storage.Durable, id string) (storage.Client, error) {
		return s.GetClient(ctx, id)
	},
	list: func(ctx context.Context, s storage.Durable) ([]storage.Client, error) { return s.ListClients(ctx) },
	update: func(ctx context.Context, s storage.Durable, id string, fn func(storage.Client) (storage.Client, error)) error {
		return s.UpdateClient(ctx, id, fn)
	},
	del: func(ctx context.Context, s storage.Durable, id string) error { return s.DeleteClient(ctx, id) },
	id:  func(c storage.Client) string { return c.ID },
}

var durConnectors = durKind[storage.Connector]{
	name: "connector",
	full: func(id string) storage.Connector {
		return storage.Connector{
			ID:   id,
			Type: "oidc",
			Name: "Corporate SSO",
			Config: json.RawMessage(`{"issuer": "https://idp.example.com",
  "clientID":"latchkey", "clientSecret": {"kid":"k1","ct":"AAECAw=="}, "scopes": ["openid"] }`),
			ConfigManaged: true,
			Disabled:      true,
			CreatedAt:     durFixtureTime(3),
			UpdatedAt:     durFixtureTime(4),
		}
	},
	minimal: func(id string) storage.Connector {
		return storage.Connector{ID: id, Type: "local", CreatedAt: durFixtureTime(3), UpdatedAt: durFixtureTime(3)}
	},
	change: func(c storage.Connector) storage.Connector {
		c.Type = "github"
		c.Name = "GitHub"
		c.Config = json.RawMessage(`{"org":"example"}`)
		c.ConfigManaged = !c.ConfigManaged
		c.UpdatedAt = durFixtureTime(31)
		return c
	},
	norm: func(c storage.Connector) storage.Connector {
		c.CreatedAt, c.UpdatedAt = durTime(c.CreatedAt), durTime(c.UpdatedAt)
		return c
	},
	create: func(ctx context.Context, s storage.Durable, c storage.Connector) error {
		return s.CreateConnector(ctx, c)
	},
	get: func(ctx context.Context, s storage.Durable, id string) (storage.Connector, error) {
		return s.GetConnector(ctx, id)
	},
	list: func(ctx context.Context, s storage.Durable) ([]storage.Connector, error) {
		return s.ListConnectors(ctx)
	},
	update: func(ctx context.Context, s storage.Durable, id string, fn func(storage.Connector) (storage.Connector, error)) error {
		return s.UpdateConnector(ctx, id, fn)
	},
	del: func(ctx context.Context, s storage.Durable, id string) error { return s.DeleteConnector(ctx, id) },
	id:  func(c storage.Connector) string { return c.ID },
}

var durUsers = durKind[storage.User]{
	name: "user",
	full: func(id string) storage.User {
		return storage.User{
			ID:            id,
			Username:      "name-of-" + id,
			Email:         id + "@example.com",
			EmailVerified: true,
			Name:          "Zoë O'Brien",
			Groups:        []string{"admins", "dev-ops", "ünïcode"},
			PasswordHash:  "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
			Disabled:      true,
			CreatedAt:     durFixtureTime(5),
			UpdatedAt:     durFixtureTime(6),
		}
	},
	minimal: func(id string) storage.User {
		return storage.User{ID: id, Username: "name-of-" + id, CreatedAt: durFixtureTime(5), UpdatedAt: durFixtureTime(5)}
	},
	change: func(u storage.User) storage.User {
		u.Username += "-renamed"
		u.Email = "new-" + u.Email
		u.EmailVerified = !u.EmailVerified
		u.Name = "Someone Else"
		u.Groups = append(slices.Clone(u.Groups), "new-group")
		u.PasswordHash = ""
		u.Disabled = !u.Disabled
		u.UpdatedAt = durFixtureTime(32)
		return u
	},
	norm: func(u storage.User) storage.User {
		u.CreatedAt, u.UpdatedAt = durTime(u.CreatedAt), durTime(u.UpdatedAt)
		return u
	},
	create: func(ctx context.Context, s storage.Durable, u storage.User) error { return s.CreateUser(ctx, u) },
	get: func(ctx context.Context, s storage.Durable, id string) (storage.User, error) {
		return s.GetUser(ctx, id)
	},
	list: func(ctx context.Context, s storage.Durable) ([]storage.User, error) { return s.ListUsers(ctx) },
	update: func(ctx context.Context, s storage.Durable, id string, fn func(storage.User) (storage.User, error)) error {
		return s.UpdateUser(ctx, id, fn)
	},
	del: func(ctx context.Context, s storage.Durable, id string) error { return s.DeleteUser(ctx, id) },
	id:  func(u storage.User) string { return u.ID },
}

// --- users -------------------------------------------------------------------

func durUser(id, username string) storage.User {
	return storage.User{ID: id, Username: username, Email: id + "@example.com", CreatedAt: durFixtureTime(7), UpdatedAt: durFixtureTime(7)}
}

func durTestUserByUsername(t *testing.T, open func(t *testing.T) storage.Durable) {
	s := open(t)
	ctx := t.Context()
	alice, bob := durUser("u-alice", "alice"), durUser("u-bob", "bob")
	durWantErr(t, "create alice", s.CreateUser(ctx, alice), nil)
	durWantErr(t, "create bob", s.CreateUser(ctx, bob), nil)
	tests := []struct {
		username string
		want     *storage.User // nil: ErrNotFound
	}{
		{"alice", &alice},
		{"bob", &bob},
		{"Alice", nil}, // compared exactly: the caller normalises
		{"alice ", nil},
		{"ali", nil},
		{"u-alice", nil}, // an id is not a username
		{"", nil},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%q", tc.username), func(t *testing.T) {
			got, err := s.GetUserByUsername(ctx, tc.username)
			if tc.want == nil {
				durWantErr(t, "GetUserByUsername", err, storage.ErrNotFound)
				return
			}
			durWantErr(t, "GetUserByUsername", err, nil)
			durEqual(t, "GetUserByUsername", durUsers.norm(got), durUsers.norm(*tc.want))
		})
	}
}

func durTestUsernameUnique(t *testing.T, open func(t *testing.T) storage.Durable) {
	ctx := t.Context()
	t.Run("create", func(t *testing.T) {
		s := open(t)
		durWantErr(t, "create alice", s.CreateUser(ctx, durUser("u-1", "alice")), nil)
		err := s.CreateUser(ctx, durUser("u-2", "alice"))
		durWantErr(t, "create another alice", err, storage.ErrConflict)
		_, err = s.GetUser(ctx, "u-2")
		durWantErr(t, "get the refused user", err, storage.ErrNotFound)
		got, err := s.GetUserByUsername(ctx, "alice")
		durWantErr(t, "get alice", err, nil)
		if got.ID != "u-1" {
			t.Fatalf("alice is %q, want u-1", got.ID)
		}
	})
	t.Run("rename to a taken username", func(t *testing.T) {
		s := open(t)
		durWantErr(t, "create alice", s.CreateUser(ctx, durUser("u-1", "alice")), nil)
		durWantErr(t, "create bob", s.CreateUser(ctx, durUser("u-2", "bob")), nil)
		err := s.UpdateUser(ctx, "u-2", func(u storage.User) (storage.User, error) {
			u.Username = "alice"
			u.Name = "changed"
			return u, nil
		})
		durWantErr(t, "rename bob to alice", err, storage.ErrConflict)
		got, err := s.GetUser(ctx, "u-2")
		durWantErr(t, "get bob", err, nil)
		durEqual(t, "bob after the refused rename", durUsers.norm(got), durUsers.norm(durUser("u-2", "bob")))
		// The store is still usable, and a free name is accepted.
		err = s.UpdateUser(ctx, "u-2", func(u storage.User) (storage.User, error) {
			u.Username = "carol"
			return u, nil
		})
		durWantErr(t, "rename bob to carol", err, nil)
	})
	t.Run("rename frees the old username", func(t *testing.T) {
		s := open(t)
		durWantErr(t, "create alice", s.CreateUser(ctx, durUser("u-1", "alice")), nil)
		err := s.UpdateUser(ctx, "u-1", func(u storage.User) (storage.User, error) {
			u.Username = "alicia"
			return u, nil
		})
		durWantErr(t, "rename", err, nil)
		_, err = s.GetUserByUsername(ctx, "alice")
		durWantErr(t, "get old name", err, storage.ErrNotFound)
		got, err := s.GetUserByUsername(ctx, "alicia")
		durWantErr(t, "get new name", err, nil)
		if got.ID != "u-1" {
			t.Fatalf("alicia is %q, want u-1", got.ID)
		}
		durWantErr(t, "create a new alice", s.CreateUser(ctx, durUser("u-2", "alice")), nil)
	})
	t.Run("delete frees the username", func(t *testing.T) {
		s := open(t)
		durWantErr(t, "create alice", s.CreateUser(ctx, durUser("u-1", "alice")), nil)
		durWantErr(t, "delete", s.DeleteUser(ctx, "u-1"), nil)
		durWantErr(t, "create a new alice", s.CreateUser(ctx, durUser("u-2", "alice")), nil)
	})
}

// --- concurrency -------------------------------------------------------------

// durTestConcurrentUpdates has durWorkers goroutines each append one
// element through an updater at once; a lost update loses an element.
func durTestConcurrentUpdates(t *testing.T, open func(t *testing.T) storage.Durable) {
	s := open(t)
	ctx := t.Context()
	durWantErr(t, "create user", s.CreateUser(ctx, durUser("u-1", "alice")), nil)
	durWantErr(t, "create client", s.CreateClient(ctx, durClients.minimal("c-1")), nil)
	durWantErr(t, "create connector", s.CreateConnector(ctx, durConnectors.minimal("k-1")), nil)

	start := make(chan struct{})
	errs := make([]error, 3*durWorkers)
	var wg sync.WaitGroup
	for i := range durWorkers {
		item := fmt.Sprintf("item-%02d", i)
		wg.Go(func() {
			<-start
			errs[i] = s.UpdateUser(ctx, "u-1", func(u storage.User) (storage.User, error) {
				u.Groups = append(slices.Clone(u.Groups), item)
				return u, nil
			})
		})
		wg.Go(func() {
			<-start
			errs[durWorkers+i] = s.UpdateClient(ctx, "c-1", func(c storage.Client) (storage.Client, error) {
				c.RedirectURIs = append(slices.Clone(c.RedirectURIs), "https://example.com/"+item)
				return c, nil
			})
		})
		wg.Go(func() {
			<-start
			errs[2*durWorkers+i] = s.UpdateConnector(ctx, "k-1", func(c storage.Connector) (storage.Connector, error) {
				var items []string
				if len(c.Config) > 0 {
					if err := json.Unmarshal(c.Config, &items); err != nil {
						return c, err
					}
				}
				b, err := json.Marshal(append(items, item))
				c.Config = b
				return c, err
			})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("update #%d: %v", i, err)
		}
	}
	var want []string
	for i := range durWorkers {
		want = append(want, fmt.Sprintf("item-%02d", i))
	}

	u, err := s.GetUser(ctx, "u-1")
	durWantErr(t, "get user", err, nil)
	slices.Sort(u.Groups)
	durEqual(t, "user groups after concurrent updates (sorted)", u.Groups, want)

	c, err := s.GetClient(ctx, "c-1")
	durWantErr(t, "get client", err, nil)
	var uris []string
	for _, w := range want {
		uris = append(uris, "https://example.com/"+w)
	}
	slices.Sort(c.RedirectURIs)
	durEqual(t, "client redirect URIs after concurrent updates (sorted)", c.RedirectURIs, uris)

	k, err := s.GetConnector(ctx, "k-1")
	durWantErr(t, "get connector", err, nil)
	var items []string
	if err := json.Unmarshal(k.Config, &items); err != nil {
		t.Fatalf("connector config %q: %v", k.Config, err)
	}
	slices.Sort(items)
	durEqual(t, "connector config after concurrent updates (sorted)", items, want)
}

// --- keys --------------------------------------------------------------------

func durTestKeys(t *testing.T, open func(t *testing.T) storage.Durable) {
	s := open(t)
	ctx := t.Context()
	_, err := s.GetKeys(ctx)
	durWantErr(t, "GetKeys before the first update", err, storage.ErrNotFound)

	data1 := json.RawMessage(`{ "signing": {"kid": "k1"}, "retired": [] }`)
	var saw storage.Keys
	got, err := s.UpdateKeys(ctx, func(old storage.Keys) (storage.Keys, error) {
		saw = old
		// Version is the store's to set: this 42 is ignored.
		return storage.Keys{Version: 42, Data: data1, UpdatedAt: durFixtureTime(10)}, nil
	})
	durWantErr(t, "first UpdateKeys", err, nil)
	durEqual(t, "what the first updater saw", saw, storage.Keys{})
	want1 := storage.Keys{Version: 1, Data: data1, UpdatedAt: durTime(durFixtureTime(10))}
	got.UpdatedAt = durTime(got.UpdatedAt)
	durEqual(t, "first UpdateKeys result", got, want1)
	stored, err := s.GetKeys(ctx)
	durWantErr(t, "GetKeys", err, nil)
	stored.UpdatedAt = durTime(stored.UpdatedAt)
	durEqual(t, "GetKeys after the first update", stored, want1)

	data2 := json.RawMessage(`{"signing":{"kid":"k2"}}`)
	got, err = s.UpdateKeys(ctx, func(old storage.Keys) (storage.Keys, error) {
		saw = old
		old.Data = data2
		old.UpdatedAt = durFixtureTime(11)
		return old, nil
	})
	durWantErr(t, "second UpdateKeys", err, nil)
	saw.UpdatedAt = durTime(saw.UpdatedAt)
	durEqual(t, "what the second updater saw", saw, want1)
	want2 := storage.Keys{Version: 2, Data: data2, UpdatedAt: durTime(durFixtureTime(11))}
	got.UpdatedAt = durTime(got.UpdatedAt)
	durEqual(t, "second UpdateKeys result", got, want2)

	_, err = s.UpdateKeys(ctx, func(old storage.Keys) (storage.Keys, error) {
		old.Data = json.RawMessage(`{"never":"stored"}`)
		return old, errDurBoom
	})
	if !errors.Is(err, errDurBoom) {
		t.Fatalf("UpdateKeys with a failing updater: error %v, want errors.Is(err, errDurBoom)", err)
	}
	stored, err = s.GetKeys(ctx)
	durWantErr(t, "GetKeys", err, nil)
	stored.UpdatedAt = durTime(stored.UpdatedAt)
	durEqual(t, "keys after a failed update", stored, want2)
}

// durTestKeysCAS races durWorkers UpdateKeys from the same version: every
// updater has read the record before any writes, so exactly one may win.
func durTestKeysCAS(t *testing.T, open func(t *testing.T) storage.Durable) {
	tests := []struct {
		name  string
		start int64 // updates before the race
	}{
		{"from no record", 0},
		{"from version 1", 1},
		{"from version 3", 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			ctx := t.Context()
			for i := range tc.start {
				_, err := s.UpdateKeys(ctx, func(old storage.Keys) (storage.Keys, error) {
					old.Data = json.RawMessage(fmt.Sprintf(`{"setup":%d}`, i))
					return old, nil
				})
				durWantErr(t, "setup UpdateKeys", err, nil)
			}
			b := newDurBarrier(durWorkers)
			type result struct {
				saw  int64
				keys storage.Keys
				err  error
			}
			res := make([]result, durWorkers)
			var wg sync.WaitGroup
			for i := range durWorkers {
				wg.Go(func() {
					res[i].keys, res[i].err = s.UpdateKeys(ctx, func(old storage.Keys) (storage.Keys, error) {
						res[i].saw = old.Version
						b.wait()
						old.Data = json.RawMessage(fmt.Sprintf(`{"winner":%d}`, i))
						return old, nil
					})
				})
			}
			wg.Wait()
			winner := -1
			for i, r := range res {
				if r.saw != tc.start {
					t.Errorf("goroutine %d: updater saw version %d, want %d (the store ran updaters one after another?)", i, r.saw, tc.start)
				}
				switch {
				case r.err == nil:
					if winner >= 0 {
						t.Errorf("goroutines %d and %d both won the compare-and-swap from version %d", winner, i, tc.start)
					}
					winner = i
				case errors.Is(r.err, storage.ErrConflict) && !errors.Is(r.err, storage.ErrNotFound):
				default:
					t.Errorf("goroutine %d: UpdateKeys: %v, want nil or ErrConflict", i, r.err)
				}
			}
			if t.Failed() {
				t.FailNow()
			}
			if winner < 0 {
				t.Fatalf("none of %d racing UpdateKeys succeeded", durWorkers)
			}
			want := storage.Keys{Version: tc.start + 1, Data: json.RawMessage(fmt.Sprintf(`{"winner":%d}`, winner))}
			got := res[winner].keys
			want.UpdatedAt = durTime(got.UpdatedAt)
			got.UpdatedAt = durTime(got.UpdatedAt)
			durEqual(t, "winner's result", got, want)
			stored, err := s.GetKeys(ctx)
			durWantErr(t, "GetKeys", err, nil)
			stored.UpdatedAt = durTime(stored.UpdatedAt)
			durEqual(t, "stored keys after the race", stored, want)
		})
	}
}

// --- transactions ------------------------------------------------------------

func durTestTx(t *testing.T, open func(t *testing.T) storage.Durable) {
	ev := func(id, userID string) storage.Event {
		return storage.Event{ID: id, Type: "user.created", Time: durFixtureTime(20), Actor: "cli", UserID: userID}
	}
	// everything reads what the Tx tests may have written.
	type state struct {
		users  []string
		events []string
		keys   int64
	}
	everything := func(t *testing.T, s storage.Durable) state {
		t.Helper()
		var st state
		us, err := s.ListUsers(t.Context())
		durWantErr(t, "ListUsers", err, nil)
		for _, u := range us {
			st.users = append(st.users, u.ID)
		}
		slices.Sort(st.users)
		es, err := s.ListEvents(t.Context(), storage.EventFilter{})
		durWantErr(t, "ListEvents", err, nil)
		for _, e := range es {
			st.events = append(st.events, e.ID)
		}
		slices.Sort(st.events)
		k, err := s.GetKeys(t.Context())
		if !errors.Is(err, storage.ErrNotFound) {
			durWantErr(t, "GetKeys", err, nil)
		}
		st.keys = k.Version
		return st
	}
	changeAll := func(ctx context.Context, tx storage.Durable, n string) error {
		if err := tx.CreateUser(ctx, durUser("u-"+n, "user-"+n)); err != nil {
			return err
		}
		if err := tx.AppendEvent(ctx, ev("e-"+n, "u-"+n)); err != nil {
			return err
		}
		_, err := tx.UpdateKeys(ctx, func(k storage.Keys) (storage.Keys, error) {
			k.Data = json.RawMessage(`{"tx":"` + n + `"}`)
			return k, nil
		})
		return err
	}

	t.Run("commit", func(t *testing.T) {
		s := open(t)
		err := s.Tx(t.Context(), func(ctx context.Context, tx storage.Durable) error { return changeAll(ctx, tx, "1") })
		durWantErr(t, "Tx", err, nil)
		durEqual(t, "after commit", everything(t, s), state{users: []string{"u-1"}, events: []string{"e-1"}, keys: 1})
	})

	t.Run("rollback", func(t *testing.T) {
		s := open(t)
		durWantErr(t, "create existing user", s.CreateUser(t.Context(), durUser("u-0", "user-0")), nil)
		err := s.Tx(t.Context(), func(ctx context.Context, tx storage.Durable) error {
			if err := changeAll(ctx, tx, "1"); err != nil {
				return err
			}
			if err := tx.UpdateUser(ctx, "u-0", func(u storage.User) (storage.User, error) {
				u.Name = "changed in a rolled-back Tx"
				return u, nil
			}); err != nil {
				return err
			}
			if err := tx.DeleteUser(ctx, "u-0"); err != nil {
				return err
			}
			return fmt.Errorf("wrapped: %w", errDurBoom)
		})
		if !errors.Is(err, errDurBoom) {
			t.Fatalf("Tx: error %v, want errors.Is(err, errDurBoom)", err)
		}
		durEqual(t, "after rollback", everything(t, s), state{users: []string{"u-0"}})
		u, err := s.GetUser(t.Context(), "u-0")
		durWantErr(t, "GetUser", err, nil)
		durEqual(t, "user after rollback", durUsers.norm(u), durUsers.norm(durUser("u-0", "user-0")))
		_, err = s.GetUser(t.Context(), "u-1")
		durWantErr(t, "GetUser created in the rolled-back Tx", err, storage.ErrNotFound)
	})

	t.Run("reads see own writes", func(t *testing.T) {
		s := open(t)
		err := s.Tx(t.Context(), func(ctx context.Context, tx storage.Durable) error {
			if err := changeAll(ctx, tx, "1"); err != nil {
				return err
			}
			if _, err := tx.GetUser(ctx, "u-1"); err != nil {
				return fmt.Errorf("GetUser inside Tx: %w", err)
			}
			if _, err := tx.GetUserByUsername(ctx, "user-1"); err != nil {
				return fmt.Errorf("GetUserByUsername inside Tx: %w", err)
			}
			if es, err := tx.ListEvents(ctx, storage.EventFilter{UserID: "u-1"}); err != nil || len(es) != 1 {
				return fmt.Errorf("ListEvents inside Tx: %d events, %v; want 1", len(es), err)
			}
			if k, err := tx.GetKeys(ctx); err != nil || k.Version != 1 {
				return fmt.Errorf("GetKeys inside Tx: version %d, %v; want 1", k.Version, err)
			}
			return nil
		})
		durWantErr(t, "Tx", err, nil)
	})

	t.Run("conflict inside", func(t *testing.T) {
		// A duplicate create inside Tx reports ErrConflict and leaves the
		// transaction usable.
		s := open(t)
		durWantErr(t, "create existing user", s.CreateUser(t.Context(), durUser("u-0", "user-0")), nil)
		err := s.Tx(t.Context(), func(ctx context.Context, tx storage.Durable) error {
			if err := tx.CreateUser(ctx, durUser("u-0", "another")); !errors.Is(err, storage.ErrConflict) {
				return fmt.Errorf("duplicate CreateUser inside Tx: %v, want ErrConflict", err)
			}
			return changeAll(ctx, tx, "1")
		})
		durWantErr(t, "Tx", err, nil)
		durEqual(t, "after commit", everything(t, s), state{users: []string{"u-0", "u-1"}, events: []string{"e-1"}, keys: 1})
	})

	nested := []struct {
		name     string
		outerErr error
		want     state
	}{
		{"nested commit", nil, state{users: []string{"u-inner", "u-outer"}, events: []string{"e-inner", "e-outer"}, keys: 1}},
		{"nested, outer rolls back", errDurBoom, state{}},
	}
	for _, tc := range nested {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			err := s.Tx(t.Context(), func(ctx context.Context, tx storage.Durable) error {
				if err := tx.CreateUser(ctx, durUser("u-outer", "outer")); err != nil {
					return err
				}
				if err := tx.AppendEvent(ctx, ev("e-outer", "u-outer")); err != nil {
					return err
				}
				if err := tx.Tx(ctx, func(ctx context.Context, inner storage.Durable) error {
					return changeAll(ctx, inner, "inner")
				}); err != nil {
					return fmt.Errorf("inner Tx: %w", err)
				}
				return tc.outerErr
			})
			durWantErr(t, "Tx", err, tc.outerErr)
			durEqual(t, "after the outer Tx", everything(t, s), tc.want)
		})
	}
}

// --- events ------------------------------------------------------------------

func durFullEvent(id string) storage.Event {
	return storage.Event{
		ID:          id,
		Type:        "user.login.failed",
		Time:        durFixtureTime(15),
		Actor:       "user:u-1",
		UserID:      "u-1",
		ClientID:    "app",
		ConnectorID: "local",
		IP:          "2001:db8::1",
		UserAgent:   "Mozilla/5.0 (X11; Linux x86_64)",
		RequestID:   "req-123",
		Data: map[string]any{
			"reason":   "bad password",
			"attempts": float64(3),
			"locked":   false,
			"factors":  []any{"pwd", "otp"},
			"detail":   map[string]any{"amr": []any{"pwd"}, "none": nil},
		},
	}
}

func durNormEvents(es []storage.Event) []storage.Event {
	out := make([]storage.Event, len(es))
	for i, e := range es {
		e.Time = durTime(e.Time)
		out[i] = e
	}
	return out
}

func durTestEvents(t *testing.T, open func(t *testing.T) storage.Durable) {
	t.Run("FixtureComplete", func(t *testing.T) { durAllSet(t, durFullEvent("x")) })

	t.Run("round trip", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		full := durFullEvent("e-full")
		minimal := storage.Event{ID: "e-minimal", Type: "keys.rotated", Time: durFixtureTime(16)}
		durWantErr(t, "append full", s.AppendEvent(ctx, full), nil)
		durWantErr(t, "append minimal", s.AppendEvent(ctx, minimal), nil)
		got, err := s.ListEvents(ctx, storage.EventFilter{})
		durWantErr(t, "ListEvents", err, nil)
		durEqual(t, "events", durNormEvents(got), durNormEvents([]storage.Event{full, minimal}))
	})

	t.Run("fills id and time", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		for range 2 {
			durWantErr(t, "append", s.AppendEvent(ctx, storage.Event{Type: "system.started", Actor: "system"}), nil)
		}
		got, err := s.ListEvents(ctx, storage.EventFilter{})
		durWantErr(t, "ListEvents", err, nil)
		if len(got) != 2 {
			t.Fatalf("ListEvents = %d events, want 2", len(got))
		}
		for i, e := range got {
			if e.ID == "" || e.Time.IsZero() {
				t.Fatalf("event %d: ID %q, Time %v: want both filled in", i, e.ID, e.Time)
			}
			if e.Type != "system.started" || e.Actor != "system" {
				t.Fatalf("event %d = %s", i, durDump(e))
			}
		}
		if got[0].ID == got[1].ID {
			t.Fatalf("two events got the same ID %q", got[0].ID)
		}
	})

	t.Run("duplicate id", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		first := durFullEvent("e-1")
		durWantErr(t, "append", s.AppendEvent(ctx, first), nil)
		second := durFullEvent("e-1")
		second.Type = "other.type"
		durWantErrNaming(t, "append duplicate", s.AppendEvent(ctx, second), storage.ErrConflict, "e-1")
		got, err := s.ListEvents(ctx, storage.EventFilter{})
		durWantErr(t, "ListEvents", err, nil)
		durEqual(t, "events", durNormEvents(got), durNormEvents([]storage.Event{first}))
	})
}

func durTestListEvents(t *testing.T, open func(t *testing.T) storage.Durable) {
	s := open(t)
	ctx := t.Context()
	base := durFixtureTime(0)
	at := func(min int) time.Time { return base.Add(time.Duration(min) * time.Minute) }
	events := []storage.Event{
		{ID: "e0", Type: "user.login.succeeded", Time: at(0), UserID: "u1"},
		{ID: "e1", Type: "user.login.failed", Time: at(1), UserID: "u2"},
		{ID: "e2", Type: "user.login.succeeded", Time: at(2), UserID: "u2"},
		{ID: "e3", Type: "keys.rotated", Time: at(3)},
		{ID: "e4", Type: "user.login.succeeded", Time: at(4), UserID: "u1"},
		{ID: "e5", Type: "user.login.failed", Time: at(5).Add(time.Microsecond), UserID: "u1"},
	}
	// Appended out of time order: the order comes from Time.
	for _, i := range []int{3, 0, 5, 1, 4, 2} {
		durWantErr(t, "append "+events[i].ID, s.AppendEvent(ctx, events[i]), nil)
	}
	tests := []struct {
		name string
		f    storage.EventFilter
		want []string
	}{
		{"no filter", storage.EventFilter{}, []string{"e0", "e1", "e2", "e3", "e4", "e5"}},
		{"since is inclusive", storage.EventFilter{Since: at(2)}, []string{"e2", "e3", "e4", "e5"}},
		{"since between events", storage.EventFilter{Since: at(2).Add(time.Second)}, []string{"e3", "e4", "e5"}},
		{"since, microsecond apart", storage.EventFilter{Since: at(5).Add(time.Microsecond)}, []string{"e5"}},
		{"since after all", storage.EventFilter{Since: at(6)}, nil},
		{"type", storage.EventFilter{Type: "user.login.succeeded"}, []string{"e0", "e2", "e4"}},
		{"type is exact", storage.EventFilter{Type: "user.login"}, nil},
		{"user", storage.EventFilter{UserID: "u1"}, []string{"e0", "e4", "e5"}},
		{"type and user", storage.EventFilter{Type: "user.login.failed", UserID: "u2"}, []string{"e1"}},
		{"since and type", storage.EventFilter{Since: at(1), Type: "user.login.succeeded"}, []string{"e2", "e4"}},
		{"limit keeps the oldest", storage.EventFilter{Limit: 2}, []string{"e0", "e1"}},
		{"limit with filters", storage.EventFilter{UserID: "u1", Since: at(1), Limit: 1}, []string{"e4"}},
		{"limit above count", storage.EventFilter{Limit: 100}, []string{"e0", "e1", "e2", "e3", "e4", "e5"}},
		{"no match", storage.EventFilter{UserID: "nobody"}, nil},
		{"after", storage.EventFilter{After: "e1"}, []string{"e2", "e3", "e4", "e5"}},
		{"after with limit", storage.EventFilter{After: "e1", Limit: 2}, []string{"e2", "e3"}},
		{"after with type", storage.EventFilter{After: "e0", Type: "user.login.succeeded"}, []string{"e2", "e4"}},
		{"after the last", storage.EventFilter{After: "e5"}, nil},
		{"after an unknown id", storage.EventFilter{After: "nope"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListEvents(ctx, tc.f)
			durWantErr(t, "ListEvents", err, nil)
			var ids []string
			for _, e := range got {
				ids = append(ids, e.ID)
			}
			durEqual(t, fmt.Sprintf("ListEvents(%+v) ids", tc.f), ids, tc.want)
		})
	}
	t.Run("records intact", func(t *testing.T) {
		got, err := s.ListEvents(ctx, storage.EventFilter{})
		durWantErr(t, "ListEvents", err, nil)
		durEqual(t, "events", durNormEvents(got), durNormEvents(events))
	})
	t.Run("after, same time", func(t *testing.T) {
		s := open(t)
		// Paging one by one through events with one time visits each once,
		// in the order they were appended.
		for _, id := range []string{"s2", "s0", "s1"} {
			durWantErr(t, "append "+id, s.AppendEvent(ctx, storage.Event{ID: id, Type: "x", Time: base}), nil)
		}
		var ids []string
		cursor := ""
		for range 5 {
			page, err := s.ListEvents(ctx, storage.EventFilter{After: cursor, Limit: 1})
			durWantErr(t, "ListEvents", err, nil)
			if len(page) == 0 {
				break
			}
			ids = append(ids, page[0].ID)
			cursor = page[0].ID
		}
		durEqual(t, "paged ids", ids, []string{"s2", "s0", "s1"})
	})
}

// --- consents ----------------------------------------------------------------

func durTestConsents(t *testing.T, open func(t *testing.T) storage.Durable) {
	ctx := context.Background()
	s := open(t)
	if err := s.CreateUser(ctx, durUser("cu1", "consent-user")); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateClient(ctx, storage.Client{ID: "cc1", RedirectURIs: []string{"https://app.example/cb"}}); err != nil {
		t.Fatal(err)
	}
	_, err := s.GetConsent(ctx, "cu1", "cc1")
	durWantErr(t, "get before put", err, storage.ErrNotFound)

	first := storage.Consent{UserID: "cu1", ClientID: "cc1", Scopes: []string{"openid", "email"}, GrantedAt: durFixtureTime(1)}
	if err := s.PutConsent(ctx, first); err != nil {
		t.Fatalf("put: %v", err)
	}
	got, err := s.GetConsent(ctx, "cu1", "cc1")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	want := first
	want.GrantedAt = durTime(first.GrantedAt)
	durEqual(t, "consent", got, want)

	second := storage.Consent{UserID: "cu1", ClientID: "cc1", Scopes: []string{"openid", "profile"}, GrantedAt: durFixtureTime(2)}
	if err := s.PutConsent(ctx, second); err != nil {
		t.Fatalf("replace: %v", err)
	}
	got, err = s.GetConsent(ctx, "cu1", "cc1")
	if err != nil {
		t.Fatalf("get after replace: %v", err)
	}
	want = second
	want.GrantedAt = durTime(second.GrantedAt)
	durEqual(t, "replaced consent", got, want)

	durWantErr(t, "put for a missing user", s.PutConsent(ctx, storage.Consent{UserID: "nobody", ClientID: "cc1", Scopes: []string{"openid"}}), storage.ErrNotFound)
	durWantErr(t, "put for a missing client", s.PutConsent(ctx, storage.Consent{UserID: "cu1", ClientID: "nope", Scopes: []string{"openid"}}), storage.ErrNotFound)

	if err := s.DeleteConsent(ctx, "cu1", "cc1"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	durWantErr(t, "delete again", s.DeleteConsent(ctx, "cu1", "cc1"), storage.ErrNotFound)

	// Deleting the user or the client deletes their consents.
	if err := s.PutConsent(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteClient(ctx, "cc1"); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetConsent(ctx, "cu1", "cc1")
	durWantErr(t, "get after client deleted", err, storage.ErrNotFound)
	if err := s.CreateClient(ctx, storage.Client{ID: "cc1", RedirectURIs: []string{"https://app.example/cb"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutConsent(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, "cu1"); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetConsent(ctx, "cu1", "cc1")
	durWantErr(t, "get after user deleted", err, storage.ErrNotFound)
	if list, err := s.ListUserConsents(ctx, "cu1"); err != nil || len(list) != 0 {
		t.Fatalf("list after user deleted: %v %v", list, err)
	}
}

// durTestUserConsents lists a user's consents, oldest grant first, and
// only theirs.
func durTestUserConsents(t *testing.T, open func(t *testing.T) storage.Durable) {
	ctx := context.Background()
	s := open(t)
	for _, u := range []string{"lu1", "lu2"} {
		durWantErr(t, "create user", s.CreateUser(ctx, durUser(u, "user-"+u)), nil)
	}
	for _, c := range []string{"lc1", "lc2"} {
		durWantErr(t, "create client", s.CreateClient(ctx, storage.Client{ID: c, RedirectURIs: []string{"https://app.example/cb"}}), nil)
	}
	list, err := s.ListUserConsents(ctx, "lu1")
	if err != nil || list == nil || len(list) != 0 {
		t.Fatalf("list before any: %#v %v", list, err)
	}
	second := storage.Consent{UserID: "lu1", ClientID: "lc1", Scopes: []string{"openid"}, GrantedAt: durFixtureTime(5)}
	first := storage.Consent{UserID: "lu1", ClientID: "lc2", Scopes: []string{"openid", "email"}, GrantedAt: durFixtureTime(4)}
	for _, c := range []storage.Consent{second, first, {UserID: "lu2", ClientID: "lc1", Scopes: []string{"openid"}, GrantedAt: durFixtureTime(3)}} {
		durWantErr(t, "put", s.PutConsent(ctx, c), nil)
	}
	list, err = s.ListUserConsents(ctx, "lu1")
	durWantErr(t, "list", err, nil)
	first.GrantedAt, second.GrantedAt = durTime(first.GrantedAt), durTime(second.GrantedAt)
	durEqual(t, "consents of lu1", list, []storage.Consent{first, second})
}
