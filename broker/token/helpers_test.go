package token_test

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchkeyid/latchkey/broker/keys"
	"github.com/latchkeyid/latchkey/broker/token"
	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/internal/secretbox"
	"github.com/latchkeyid/latchkey/storage/sqlstore"
)

// keys.Manager is the Signer production uses.
var _ token.Signer = (*keys.Manager)(nil)

const (
	issuer   = "https://id.example.com"
	clientID = "app-1"
	idTTL    = 10 * time.Minute
	atTTL    = 15 * time.Minute
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newSigner returns a real key manager over a fresh SQLite database, with
// keys for RS256, ES256 and EdDSA (or algs).
func newSigner(tb testing.TB, clk clock.Clock, algs ...string) *keys.Manager {
	tb.Helper()
	if len(algs) == 0 {
		algs = []string{token.RS256, token.ES256, token.EdDSA}
	}
	ctx := tb.Context()
	db, err := sqlstore.Open(ctx, sqlstore.Options{Dialect: "sqlite", DSN: filepath.Join(tb.TempDir(), "t.db"), Clock: clk})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	if err := db.Migrate(ctx); err != nil {
		tb.Fatalf("migrate: %v", err)
	}
	secret := sha256.Sum256([]byte("token test kek"))
	ring, err := secretbox.NewKeyring([]secretbox.Key{{ID: "k1", Secret: secret[:]}}, rand.Reader)
	if err != nil {
		tb.Fatalf("keyring: %v", err)
	}
	m, err := keys.New(ctx, db, keys.Options{Algorithms: algs, RetireAfter: time.Hour, Keyring: ring, Clock: clk})
	if err != nil {
		tb.Fatalf("keys.New: %v", err)
	}
	return m
}

// seqReader yields 0, 1, 2, ... so jti values are predictable.
type seqReader struct {
	mu sync.Mutex
	n  byte
}

func (r *seqReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range p {
		p[i] = r.n
		r.n++
	}
	return len(p), nil
}

// jtiAt is the jti the k-th token (from 0) of a fresh seqReader gets.
func jtiAt(k int) string {
	b := make([]byte, 16)
	for i := range b {
		b[i] = byte(16*k + i)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func newIssuer(tb testing.TB, signer token.Signer, clk clock.Clock, mutate ...func(*token.Options)) *token.Issuer {
	tb.Helper()
	o := token.Options{
		Issuer:         issuer,
		Signer:         signer,
		IDTokenTTL:     idTTL,
		AccessTokenTTL: atTTL,
		Clock:          clk,
		Rand:           &seqReader{},
	}
	for _, f := range mutate {
		f(&o)
	}
	iss, err := token.New(o)
	if err != nil {
		tb.Fatalf("token.New: %v", err)
	}
	return iss
}

// decoded is a token parsed and verified independently of the package.
type decoded struct {
	header map[string]any
	claims map[string]any
}

// decode verifies tok with go-jose against the manager's published keys
// and returns its raw protected header and claims.
func decode(t *testing.T, m *keys.Manager, alg, tok string) decoded {
	t.Helper()
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
	if err != nil {
		t.Fatalf("parse %s token: %v", alg, err)
	}
	kid := jws.Signatures[0].Header.KeyID
	set := m.KeySet()
	ks := set.Key(kid)
	if len(ks) != 1 {
		t.Fatalf("kid %q: %d published keys", kid, len(ks))
	}
	payload, err := jws.Verify(ks[0])
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	var d decoded
	head, _, _ := strings.Cut(tok, ".")
	rawHead, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatalf("decode header: %v", err)
	}
	if err := json.Unmarshal(rawHead, &d.header); err != nil {
		t.Fatalf("header JSON: %v", err)
	}
	if err := json.Unmarshal(payload, &d.claims); err != nil {
		t.Fatalf("claims JSON: %v", err)
	}
	return d
}

func signingKID(t testing.TB, m *keys.Manager, alg string) string {
	t.Helper()
	k, err := m.Signer(alg)
	if err != nil {
		t.Fatalf("signer %s: %v", alg, err)
	}
	return k.KeyID
}

// publicKeys returns every published public key.
func publicKeys(m *keys.Manager) []crypto.PublicKey {
	var out []crypto.PublicKey
	for _, k := range m.KeySet().Keys {
		out = append(out, k.Key)
	}
	return out
}

// unix is t as a JSON number decodes into any.
func unix(t time.Time) float64 { return float64(t.Unix()) }

// strs converts to the []any a JSON array decodes into.
func strs(s ...string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
