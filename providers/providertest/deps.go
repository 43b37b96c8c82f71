package providertest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/internal/httpclient"
	"github.com/latchkeyid/latchkey/internal/secretbox"
	"github.com/latchkeyid/latchkey/providers"
)

// ClientTimeout is the hardened client's timeout in NewDeps: how long a
// hanging upstream may hold a call.
const ClientTimeout = time.Second

// LogBuffer collects a connector's logs; safe for concurrent use.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything logged so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// NewDeps returns the Deps a connector under test gets: the hardened
// client (loopback allowed, ClientTimeout), the real clock, a fresh
// keyring as Sealer and a debug-level logger writing to logs (nil
// discards).
func NewDeps(t testing.TB, logs *LogBuffer) providers.Deps {
	t.Helper()
	secret := make([]byte, secretbox.KeySize)
	if _, err := rand.Read(secret); err != nil {
		t.Fatalf("random key: %v", err)
	}
	ring, err := secretbox.NewKeyring([]secretbox.Key{{ID: "test", Secret: secret}}, nil)
	if err != nil {
		t.Fatalf("keyring: %v", err)
	}
	log := slog.New(slog.DiscardHandler)
	if logs != nil {
		log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return providers.Deps{
		HTTPClient: httpclient.New(httpclient.Options{
			Timeout:         ClientTimeout,
			DialTimeout:     ClientTimeout,
			AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
			Logger:          log,
		}),
		Clock:  clock.Real{},
		Logger: log,
		Sealer: ring,
	}
}

// LoginSecrets are the per-login values the broker generates.
type LoginSecrets struct {
	State, Nonce, Verifier, Challenge string
}

// NewLoginSecrets returns fresh random state, nonce and PKCE verifier with
// its S256 challenge.
func NewLoginSecrets() LoginSecrets {
	v := Random()
	sum := sha256.Sum256([]byte(v))
	return LoginSecrets{
		State:     Random(),
		Nonce:     Random(),
		Verifier:  v,
		Challenge: base64.RawURLEncoding.EncodeToString(sum[:]),
	}
}
