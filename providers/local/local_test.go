package local_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/providers"
	"github.com/latchkeyid/latchkey/providers/local"
)

// fakeAccounts is an in-memory Accounts that records the usernames asked.
type fakeAccounts struct {
	mu     sync.Mutex
	byName map[string]local.Account
	err    error // returned for every lookup when set
	asked  []string
}

func (f *fakeAccounts) AccountByUsername(_ context.Context, username string) (local.Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, username)
	if f.err != nil {
		return local.Account{}, f.err
	}
	a, ok := f.byName[username]
	if !ok {
		return local.Account{}, local.ErrNoAccount
	}
	return a, nil
}

func (f *fakeAccounts) takeAsked() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.asked
	f.asked = nil
	return a
}

const (
	alicePassword = "correct horse battery staple"
	bobPassword   = "bob's secret"
	emptyHashUser = "nopass"
)

// fixture builds a connector over alice (active), bob (disabled), eve (a
// hash of the empty password), nopass (no password) and broken (a corrupt
// hash), with a KDF that counts computations.
type fixture struct {
	conn     *local.Connector
	accounts *fakeAccounts
	kdfCalls *atomic.Int64
	hashes   []string
	logs     *bytes.Buffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	h := newSmallHasher(t)
	hash := func(pw string) string {
		t.Helper()
		s, err := h.Hash(t.Context(), pw)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	aliceHash, bobHash, eveHash := hash(alicePassword), hash(bobPassword), hash("")
	accounts := &fakeAccounts{byName: map[string]local.Account{
		"alice": {ID: "u-alice", Username: "alice", Email: "alice@example.com", EmailVerified: true,
			Name: "Alice Liddell", Groups: []string{"admins", "staff"}, PasswordHash: aliceHash},
		"bob":     {ID: "u-bob", Username: "bob", PasswordHash: bobHash, Disabled: true},
		"eve":     {ID: "u-eve", Username: "eve", PasswordHash: eveHash},
		"nopass":  {ID: "u-nopass", Username: "nopass"},
		"broken":  {ID: "u-broken", Username: "broken", PasswordHash: "$argon2id$v=19$m=64,t=1,p=1$bm90IGEgc2FsdA$!!"},
		"pw-long": {ID: "u-long", Username: "pw-long", PasswordHash: hash(strings.Repeat("p", local.MaxPasswordLength))},
	}}
	var calls atomic.Int64
	local.SetKDF(h, func(pw, salt []byte, p local.Params) []byte {
		calls.Add(1)
		return local.RealKDF(pw, salt, p)
	})
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	conn := local.New(accounts, h, log)
	calls.Store(0) // the dummy hash made in New
	return &fixture{conn: conn, accounts: accounts, kdfCalls: &calls,
		hashes: []string{aliceHash, bobHash, eveHash}, logs: logs}
}

func TestLogin(t *testing.T) {
	alice := providers.Identity{
		Subject: "u-alice", Username: "alice", Email: "alice@example.com", EmailVerified: true,
		Name: "Alice Liddell", Groups: []string{"admins", "staff"}, AMR: []string{"pwd"},
	}
	tests := []struct {
		name               string
		username, password string
		want               providers.Identity
		wantErr            error
		wantLookups        []string // usernames asked of Accounts
		wantHashes         int64    // argon2id computations
	}{
		{name: "right password", username: "alice", password: alicePassword, want: alice, wantLookups: []string{"alice"}, wantHashes: 1},
		{name: "wrong password", username: "alice", password: "Correct horse battery staple", wantErr: providers.ErrInvalidCredentials, wantLookups: []string{"alice"}, wantHashes: 1},
		{name: "unknown user costs a hash", username: "mallory", password: alicePassword, wantErr: providers.ErrInvalidCredentials, wantLookups: []string{"mallory"}, wantHashes: 1},
		{name: "as typed, then in lower case", username: "Alice", password: alicePassword, want: alice, wantLookups: []string{"Alice", "alice"}, wantHashes: 1},
		{name: "lower case fallback, wrong password", username: "ALICE", password: "nope", wantErr: providers.ErrInvalidCredentials, wantLookups: []string{"ALICE", "alice"}, wantHashes: 1},
		{name: "unknown in both spellings costs one hash", username: "Mallory", password: alicePassword, wantErr: providers.ErrInvalidCredentials, wantLookups: []string{"Mallory", "mallory"}, wantHashes: 1},
		{name: "whitespace-padded username", username: " \talice \n", password: alicePassword, want: alice, wantLookups: []string{"alice"}, wantHashes: 1},
		{name: "password not trimmed", username: "alice", password: alicePassword + " ", wantErr: providers.ErrInvalidCredentials, wantLookups: []string{"alice"}, wantHashes: 1},
		{name: "disabled, right password", username: "bob", password: bobPassword, wantErr: providers.ErrInvalidCredentials, wantLookups: []string{"bob"}, wantHashes: 1},
		{name: "disabled, wrong password", username: "bob", password: "nope", wantErr: providers.ErrInvalidCredentials, wantLookups: []string{"bob"}, wantHashes: 1},
		{name: "empty password", username: "alice", password: "", wantErr: providers.ErrInvalidCredentials, wantLookups: []string{"alice"}, wantHashes: 1},
		{name: "empty password matching the stored hash", username: "eve", password: "", wantErr: providers.ErrInvalidCredentials, wantLookups: []string{"eve"}, wantHashes: 1},
		{name: "empty username", username: "", password: alicePassword, wantErr: providers.ErrInvalidCredentials, wantHashes: 1},
		{name: "blank username", username: "   ", password: alicePassword, wantErr: providers.ErrInvalidCredentials, wantHashes: 1},
		{name: "account without password", username: emptyHashUser, password: "", wantErr: providers.ErrInvalidCredentials, wantLookups: []string{"nopass"}, wantHashes: 1},
		{name: "corrupt stored hash", username: "broken", password: "x", wantErr: providers.ErrInvalidCredentials, wantLookups: []string{"broken"}, wantHashes: 1},
		{name: "password at the limit", username: "pw-long", password: strings.Repeat("p", local.MaxPasswordLength),
			want:        providers.Identity{Subject: "u-long", Username: "pw-long", AMR: []string{"pwd"}},
			wantLookups: []string{"pw-long"}, wantHashes: 1},
		{name: "overlong password", username: "alice", password: strings.Repeat("p", local.MaxPasswordLength+1), wantErr: providers.ErrInvalidCredentials},
		{name: "username at the limit", username: strings.Repeat("u", local.MaxUsernameLength), password: "x", wantErr: providers.ErrInvalidCredentials,
			wantLookups: []string{strings.Repeat("u", local.MaxUsernameLength)}, wantHashes: 1},
		{name: "overlong username", username: strings.Repeat("u", local.MaxUsernameLength+1), password: "x", wantErr: providers.ErrInvalidCredentials},
		{name: "overlong username only by padding is trimmed", username: "  alice" + strings.Repeat(" ", local.MaxUsernameLength), password: alicePassword, want: alice, wantLookups: []string{"alice"}, wantHashes: 1},
	}
	f := newFixture(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f.kdfCalls.Store(0)
			f.accounts.takeAsked()
			got, err := f.conn.Login(t.Context(), tc.username, tc.password)
			if err != tc.wantErr { // exact sentinel, not wrapped
				t.Fatalf("Login error = %v, want %v", err, tc.wantErr)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Login = %+v\nwant    %+v", got, tc.want)
			}
			if asked := f.accounts.takeAsked(); !reflect.DeepEqual(asked, tc.wantLookups) {
				t.Fatalf("lookups = %q, want %q", asked, tc.wantLookups)
			}
			if n := f.kdfCalls.Load(); n != tc.wantHashes {
				t.Fatalf("hash computations = %d, want %d", n, tc.wantHashes)
			}
		})
	}

	// Nothing secret reached the log: no password, no stored hash, and no
	// typed username (people type passwords there).
	logs := f.logs.String()
	secrets := append([]string{alicePassword, bobPassword, "Correct horse", "mallory", "Alice"}, f.hashes...)
	for _, h := range f.hashes {
		secrets = append(secrets, h[strings.LastIndex(h, "$")+1:])
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("log contains %q:\n%s", s, logs)
		}
	}
	if !strings.Contains(logs, `level=ERROR msg="local login: stored password hash unreadable" user_id=u-broken error="local: malformed password hash: hash is not base64"`) {
		t.Errorf("log lacks the corrupt-hash error:\n%s", logs)
	}
}

func TestLoginIdentityDoesNotAliasAccount(t *testing.T) {
	f := newFixture(t)
	id, err := f.conn.Login(t.Context(), "alice", alicePassword)
	if err != nil {
		t.Fatal(err)
	}
	id.Groups[0] = "changed"
	again, err := f.conn.Login(t.Context(), "alice", alicePassword)
	if err != nil {
		t.Fatal(err)
	}
	if again.Groups[0] != "admins" {
		t.Fatalf("Groups[0] = %q after mutating an earlier Identity, want admins", again.Groups[0])
	}
}

func TestLoginServerErrors(t *testing.T) {
	t.Run("lookup error", func(t *testing.T) {
		f := newFixture(t)
		dbDown := errors.New("db down")
		f.accounts.err = dbDown
		_, err := f.conn.Login(t.Context(), "alice", alicePassword)
		if !errors.Is(err, dbDown) || err.Error() != "local: look up account: db down" {
			t.Fatalf("Login = %v; want local: look up account: db down", err)
		}
		if errors.Is(err, providers.ErrInvalidCredentials) {
			t.Fatal("a server error must not read as invalid credentials")
		}
	})
	t.Run("wrapped ErrNoAccount is an unknown user", func(t *testing.T) {
		f := newFixture(t)
		f.accounts.err = errors.Join(errors.New("lookup"), local.ErrNoAccount)
		_, err := f.conn.Login(t.Context(), "alice", alicePassword)
		if err != providers.ErrInvalidCredentials {
			t.Fatalf("Login = %v; want ErrInvalidCredentials", err)
		}
		if n := f.kdfCalls.Load(); n != 1 {
			t.Fatalf("hash computations = %d, want 1", n)
		}
	})
	t.Run("busy", func(t *testing.T) {
		h := local.NewHasher(small, 1, 50*time.Millisecond, nil)
		accounts := &fakeAccounts{byName: map[string]local.Account{}}
		conn := local.New(accounts, h, nil)
		entered, release := make(chan struct{}, 1), make(chan struct{})
		local.SetKDF(h, blockingKDF(entered, release))
		first := make(chan error, 1)
		go func() {
			_, err := h.Hash(t.Context(), "holder")
			first <- err
		}()
		<-entered
		for _, user := range []string{"alice", "mallory"} {
			_, err := conn.Login(t.Context(), user, "pw")
			if !errors.Is(err, providers.ErrBusy) || err.Error() != "local: verify password: local: no hashing slot free after 50ms: too many concurrent logins, try again later" {
				t.Errorf("Login(%s) while busy = %v; want ErrBusy", user, err)
			}
		}
		close(release)
		if err := <-first; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		f := newFixture(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := f.conn.Login(ctx, "alice", alicePassword)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Login = %v; want context.Canceled", err)
		}
	})
}

func TestAccountFormattingHidesHash(t *testing.T) {
	a := local.Account{ID: "u1", Username: "alice", PasswordHash: "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "account", a)
	for _, s := range []string{buf.String(), a.String(), a.GoString()} {
		if strings.Contains(s, "aGFzaGhhc2g") {
			t.Errorf("formatted account contains the hash: %s", s)
		}
	}
	if got, want := a.String(), `local.Account{ID: "u1", Username: "alice"}`; got != want {
		t.Errorf("String() = %s, want %s", got, want)
	}
}
