package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/internal/secretbox"
	"github.com/latchkeyid/latchkey/storage"
)

// Store is the part of the durable store the key manager uses;
// storage.Durable satisfies it.
type Store interface {
	// GetKeys returns storage.ErrNotFound before the first UpdateKeys.
	GetKeys(ctx context.Context) (storage.Keys, error)
	// UpdateKeys is a compare-and-swap (see storage.Durable).
	UpdateKeys(ctx context.Context, fn func(storage.Keys) (storage.Keys, error)) (storage.Keys, error)
}

var _ Store = storage.Durable(nil)

// Defaults for Options.
const (
	DefaultRotationPeriod = 30 * 24 * time.Hour
	DefaultPrePublish     = 24 * time.Hour
	DefaultCheckInterval  = time.Minute
)

// DefaultAlgorithms are the algorithms used when Options.Algorithms is
// empty: RS256 for ID tokens (OIDC's default) and ES256 for access tokens.
var DefaultAlgorithms = []string{RS256, ES256}

// maxAttempts bounds the retries of New and Rewrap when other replicas
// keep changing the record under them.
const maxAttempts = 5

var (
	// ErrUnsupportedAlgorithm: there is no signing key for the algorithm.
	ErrUnsupportedAlgorithm = errors.New("keys: no signing key for algorithm")
	// ErrVerify: a token is malformed, signed by a key not (or no longer)
	// in the JWKS, or its signature does not verify.
	ErrVerify = errors.New("keys: token signature not valid")
)

// Options configure a Manager.
type Options struct {
	// Algorithms to keep keys for; default DefaultAlgorithms. Supported:
	// RS256, ES256, EdDSA.
	Algorithms []string
	// RotationPeriod is the time between rotations; default 30 days.
	RotationPeriod time.Duration
	// PrePublish is the least time a key is in the JWKS before it signs;
	// default 24h. It must not exceed RotationPeriod. Serve the JWKS with
	// a Cache-Control max-age well below it.
	PrePublish time.Duration
	// RetireAfter is how long a key stays in the JWKS after it stopped
	// signing. Required: it must cover the longest lifetime of any token a
	// key signs, plus CheckInterval (a replica may sign with the old key
	// until it notices the rotation), plus clock skew.
	RetireAfter time.Duration
	// CheckInterval is how often Run checks for a due rotation and for
	// changes by other replicas; default 1 minute.
	CheckInterval time.Duration
	// Keyring seals and opens private keys. Required.
	Keyring *secretbox.Keyring
	// Clock; default clock.Real.
	Clock clock.Clock
	// Rand is passed to key generation (since Go 1.26 only Ed25519 uses
	// it); default crypto/rand.
	Rand io.Reader
	// Logger; default discards.
	Logger *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	if len(o.Algorithms) == 0 {
		o.Algorithms = DefaultAlgorithms
	}
	o.Algorithms = slices.Clone(o.Algorithms)
	seen := map[string]bool{}
	for _, alg := range o.Algorithms {
		if _, ok := algorithms[alg]; !ok {
			return o, fmt.Errorf("keys: unsupported algorithm %q (supported: RS256, ES256, EdDSA)", alg)
		}
		if seen[alg] {
			return o, fmt.Errorf("keys: algorithm %q listed twice", alg)
		}
		seen[alg] = true
	}
	if o.RotationPeriod == 0 {
		o.RotationPeriod = DefaultRotationPeriod
	}
	if o.PrePublish == 0 {
		o.PrePublish = DefaultPrePublish
	}
	if o.CheckInterval == 0 {
		o.CheckInterval = DefaultCheckInterval
	}
	switch {
	case o.RotationPeriod < 0 || o.PrePublish < 0 || o.CheckInterval < 0 || o.RetireAfter < 0:
		return o, errors.New("keys: durations must not be negative")
	case o.RotationPeriod < o.PrePublish:
		return o, fmt.Errorf("keys: RotationPeriod %v is shorter than PrePublish %v: the next key would sign before relying parties have it", o.RotationPeriod, o.PrePublish)
	case o.RetireAfter == 0:
		return o, errors.New("keys: RetireAfter is required (the longest token lifetime plus a margin)")
	case o.Keyring == nil:
		return o, errors.New("keys: Keyring is required")
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// Manager holds the signing keys of this replica. It is safe for
// concurrent use; the signing and JWKS methods never touch the store.
type Manager struct {
	store Store
	o     Options
	log   *slog.Logger

	mu   sync.Mutex // serialises install
	cur  atomic.Pointer[snapshot]
	jwks atomic.Pointer[jwksCache]
}

// snapshot is one decoded, decrypted version of the keys record. It is
// never modified after install (except the signer cache, which is safe).
type snapshot struct {
	version   int64
	doc       *document
	signing   map[string]*activeKey // alg -> signing key
	published []*publishedKey       // JWKS order: signing, next, retired
	byKID     map[string]*publishedKey
	headers   sync.Map // alg+"\x00"+typ -> string: the encoded protected header and "."
}

type activeKey struct {
	kid, alg string
	key      crypto.Signer
}

type publishedKey struct {
	kid, alg string
	retireAt time.Time // zero: not retired
	jwk      jose.JSONWebKey
	json     []byte
}

func (p *publishedKey) live(now time.Time) bool {
	return p.retireAt.IsZero() || now.Before(p.retireAt)
}

type jwksCache struct {
	version    int64
	validUntil time.Time // zero: until the record changes
	body       []byte
}

// New loads the keys record, creating it (or adding keys for configured
// algorithms it lacks) with a compare-and-swap. If another replica writes
// first, New loads that record instead. Every private key in the record is
// decrypted, so a missing or wrong encryption key fails here with an error
// naming the key and the encryption key id.
func New(ctx context.Context, store Store, o Options) (*Manager, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	m := &Manager{store: store, o: o, log: o.Logger}
	for range maxAttempts {
		rec, doc, err := m.load(ctx)
		if err != nil {
			return nil, err
		}
		// Decrypt what is there first, so a missing encryption key is
		// reported as such rather than after writing.
		snap, err := m.build(rec.Version, doc)
		if err != nil {
			return nil, err
		}
		now := m.now()
		nd := doc.clone()
		var added []string
		for _, alg := range o.Algorithms {
			if ak := nd.Algorithms[alg]; ak != nil && ak.Signing.KID != "" {
				continue
			}
			signing, err := newKey(alg, o.Rand, o.Keyring, now)
			if err != nil {
				return nil, err
			}
			signing.Activated = now.UTC()
			next, err := newKey(alg, o.Rand, o.Keyring, now)
			if err != nil {
				return nil, err
			}
			ak := &algKeys{Signing: signing, Next: next}
			if old := nd.Algorithms[alg]; old != nil {
				ak.Retired = old.Retired
			}
			nd.Algorithms[alg] = ak
			added = append(added, alg)
		}
		if len(added) == 0 {
			m.install(snap)
			return m, nil
		}
		if nd.NextRotation.IsZero() {
			nd.NextRotation = now.Add(o.RotationPeriod).UTC()
		}
		snap, err = m.build(0, nd)
		if err != nil {
			return nil, err
		}
		written, err := m.swap(ctx, rec.Version, nd, "keys.created", map[string]any{"algorithms": added})
		if errors.Is(err, storage.ErrConflict) {
			m.log.DebugContext(ctx, "keys record changed while creating keys; reloading")
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("create signing keys: %w", err)
		}
		snap.version = written.Version
		m.install(snap)
		m.log.InfoContext(ctx, "signing keys created", "algorithms", added, "version", written.Version)
		return m, nil
	}
	return nil, fmt.Errorf("create signing keys: the keys record changed %d times in a row", maxAttempts)
}

func (m *Manager) now() time.Time { return m.o.Clock.Now() }

// load reads the record; a missing record is an empty document at version 0.
func (m *Manager) load(ctx context.Context) (storage.Keys, *document, error) {
	rec, err := m.store.GetKeys(ctx)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Keys{}, &document{Format: formatVersion, Algorithms: map[string]*algKeys{}}, nil
	}
	if err != nil {
		return storage.Keys{}, nil, fmt.Errorf("load signing keys: %w", err)
	}
	if rec.Version == 0 && len(rec.Data) == 0 {
		return rec, &document{Format: formatVersion, Algorithms: map[string]*algKeys{}}, nil
	}
	doc, err := parseDocument(rec.Data)
	if err != nil {
		return storage.Keys{}, nil, fmt.Errorf("load signing keys (version %d): %w", rec.Version, err)
	}
	return rec, doc, nil
}

// AuditStore is a Store that can also write audit events in the same
// transaction as a keys change; storage.Durable is one. When the Store
// given to New implements it, every change writes an event (keys.created,
// keys.rotated, keys.rewrapped) that commits or rolls back with it.
type AuditStore interface {
	Store
	Tx(ctx context.Context, fn func(ctx context.Context, tx storage.Durable) error) error
}

// swap writes doc if the record is still at version from, with the audit
// event eventType when the store can write one in the same transaction.
func (m *Manager) swap(ctx context.Context, from int64, doc *document, eventType string, eventData map[string]any) (storage.Keys, error) {
	data, err := json.Marshal(doc)
	if err != nil {
		return storage.Keys{}, fmt.Errorf("encode keys record: %w", err)
	}
	now := m.now().UTC()
	update := func(cur storage.Keys) (storage.Keys, error) {
		if cur.Version != from {
			return storage.Keys{}, fmt.Errorf("keys record is at version %d, not %d: %w", cur.Version, from, storage.ErrConflict)
		}
		return storage.Keys{Version: cur.Version, Data: data, UpdatedAt: now}, nil
	}
	as, ok := m.store.(AuditStore)
	if !ok {
		return m.store.UpdateKeys(ctx, update)
	}
	var written storage.Keys
	err = as.Tx(ctx, func(ctx context.Context, tx storage.Durable) error {
		k, err := tx.UpdateKeys(ctx, update)
		if err != nil {
			return err
		}
		written = k
		ed := map[string]any{"version": k.Version}
		for key, v := range eventData {
			ed[key] = v
		}
		return tx.AppendEvent(ctx, storage.Event{Type: eventType, Time: now, Actor: "system", Data: ed})
	})
	return written, err
}

// algOrder lists the document's algorithms: configured ones in config
// order, then any others sorted.
func (m *Manager) algOrder(doc *document) []string {
	var out []string
	for _, alg := range m.o.Algorithms {
		if doc.Algorithms[alg] != nil {
			out = append(out, alg)
		}
	}
	var rest []string
	for alg := range doc.Algorithms {
		if !slices.Contains(m.o.Algorithms, alg) {
			rest = append(rest, alg)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// build decrypts every key of doc and prepares what readers need.
func (m *Manager) build(version int64, doc *document) (*snapshot, error) {
	s := &snapshot{
		version: version,
		doc:     doc,
		signing: map[string]*activeKey{},
		byKID:   map[string]*publishedKey{},
	}
	publish := func(k storedKey, role string, retireAt time.Time) (crypto.Signer, error) {
		priv, err := k.open(m.o.Keyring, role)
		if err != nil {
			return nil, err
		}
		if _, dup := s.byKID[k.KID]; dup {
			return nil, fmt.Errorf("keys record: key id %q appears twice", k.KID)
		}
		p := &publishedKey{kid: k.KID, alg: k.Alg, retireAt: retireAt,
			jwk: jose.JSONWebKey{Key: priv.Public(), KeyID: k.KID, Algorithm: k.Alg, Use: "sig"}}
		if p.json, err = json.Marshal(p.jwk); err != nil {
			return nil, fmt.Errorf("encode public key %q: %w", k.KID, err)
		}
		s.published = append(s.published, p)
		s.byKID[k.KID] = p
		return priv, nil
	}
	order := m.algOrder(doc)
	for _, alg := range order {
		ak := doc.Algorithms[alg]
		if ak.Signing.KID == "" {
			continue
		}
		if ak.Signing.Alg != alg || ak.Next.Alg != alg {
			return nil, fmt.Errorf("keys record: %s keys have another algorithm", alg)
		}
		priv, err := publish(ak.Signing, "signing", time.Time{})
		if err != nil {
			return nil, err
		}
		s.signing[alg] = &activeKey{kid: ak.Signing.KID, alg: alg, key: priv}
	}
	for _, alg := range order {
		if ak := doc.Algorithms[alg]; ak.Next.KID != "" {
			if _, err := publish(ak.Next, "next", time.Time{}); err != nil {
				return nil, err
			}
		}
	}
	for _, alg := range order {
		for _, r := range doc.Algorithms[alg].Retired {
			if r.Alg != alg || r.RetireAt.IsZero() {
				return nil, fmt.Errorf("keys record: retired %s key %q is malformed", alg, r.KID)
			}
			if _, err := publish(r, "retired", r.RetireAt); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// install makes s current unless a newer version is already installed.
func (m *Manager) install(s *snapshot) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur := m.cur.Load(); cur != nil && cur.version > s.version {
		return
	}
	m.cur.Store(s)
}

// Version is the storage.Keys.Version of the record in use.
func (m *Manager) Version() int64 { return m.cur.Load().version }

// Refresh reloads the record if another replica changed it. On error the
// keys in use stay as they were.
func (m *Manager) Refresh(ctx context.Context) error {
	rec, err := m.store.GetKeys(ctx)
	if err != nil {
		return fmt.Errorf("refresh signing keys: %w", err)
	}
	return m.refreshFrom(rec)
}

func (m *Manager) refreshFrom(rec storage.Keys) error {
	if rec.Version <= m.cur.Load().version {
		return nil
	}
	doc, err := parseDocument(rec.Data)
	if err != nil {
		return fmt.Errorf("refresh signing keys (version %d): %w", rec.Version, err)
	}
	s, err := m.build(rec.Version, doc)
	if err != nil {
		return fmt.Errorf("refresh signing keys (version %d): %w", rec.Version, err)
	}
	m.install(s)
	return nil
}

// Run rotates the keys when due and picks up other replicas' changes every
// CheckInterval (Rotate does both), until ctx is done. Errors are logged.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.o.CheckInterval)
	defer t.Stop()
	for {
		if _, err := m.Rotate(ctx, false); err != nil && ctx.Err() == nil {
			m.log.ErrorContext(ctx, "signing key check failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// SigningKey is the key that currently signs for one algorithm.
type SigningKey struct {
	KeyID     string
	Algorithm string
	Key       crypto.Signer
}

// Signer returns the current signing key for alg. The error wraps
// ErrUnsupportedAlgorithm when there is none.
func (m *Manager) Signer(alg string) (SigningKey, error) {
	k := m.cur.Load().signing[alg]
	if k == nil {
		return SigningKey{}, fmt.Errorf("%w %q", ErrUnsupportedAlgorithm, alg)
	}
	return SigningKey{KeyID: k.kid, Algorithm: k.alg, Key: k.key}, nil
}

// Algorithms lists the algorithms with a signing key.
func (m *Manager) Algorithms() []string {
	s := m.cur.Load()
	var out []string
	for _, alg := range m.algOrder(s.doc) {
		if s.signing[alg] != nil {
			out = append(out, alg)
		}
	}
	return out
}

// Sign returns payload as a compact JWS signed with the current key for
// alg, with "kid" and, unless typ is empty, "typ" in the protected header.
//
// The JWS is put together here rather than by go-jose: the protected
// header of a key and typ is encoded once per keys record version, and
// the signature is computed directly, so a token costs its signature and
// little else (go-jose's signer re-encoded the header map every time, which
// cost about a quarter of an ES256 signature). Verify still parses with
// go-jose, and the tests check that both agree byte for byte on the header.
func (m *Manager) Sign(alg string, payload []byte, typ string) (string, error) {
	s := m.cur.Load()
	k := s.signing[alg]
	if k == nil {
		return "", fmt.Errorf("sign: %w %q", ErrUnsupportedAlgorithm, alg)
	}
	head, err := s.header(k, typ)
	if err != nil {
		return "", fmt.Errorf("sign with %s key %q: %w", alg, k.kid, err)
	}
	enc := base64.RawURLEncoding
	n := len(head) + enc.EncodedLen(len(payload))
	buf := make([]byte, n, n+1+enc.EncodedLen(maxSignatureLen(k.key)))
	copy(buf, head)
	enc.Encode(buf[len(head):], payload)
	sig, err := signJWS(k, buf)
	if err != nil {
		return "", fmt.Errorf("sign with %s key %q: %w", alg, k.kid, err)
	}
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	return string(buf), nil
}

// protectedHeader is the JWS header Latchkey signs with. Its members are
// in the order go-jose writes them (sorted by name).
type protectedHeader struct {
	Alg string `json:"alg"`
	KID string `json:"kid"`
	Typ string `json:"typ,omitempty"`
}

// header returns the base64url protected header of k with typ, and ".".
func (s *snapshot) header(k *activeKey, typ string) (string, error) {
	cacheKey := k.alg + "\x00" + typ
	if v, ok := s.headers.Load(cacheKey); ok {
		return v.(string), nil
	}
	raw, err := json.Marshal(protectedHeader{Alg: k.alg, KID: k.kid, Typ: typ})
	if err != nil {
		return "", fmt.Errorf("encode protected header: %w", err)
	}
	h := base64.RawURLEncoding.EncodeToString(raw) + "."
	s.headers.Store(cacheKey, h)
	return h, nil
}

// signJWS signs a JWS signing input (RFC 7515 §5.1) with k: RSASSA-PKCS1
// v1.5 or ECDSA over SHA-256 (the ECDSA signature as R || S, 32 bytes
// each, RFC 7518 §3.4), or Ed25519 over the input itself (RFC 8037).
func signJWS(k *activeKey, input []byte) ([]byte, error) {
	switch key := k.key.(type) {
	case ed25519.PrivateKey:
		return ed25519.Sign(key, input), nil
	case *ecdsa.PrivateKey:
		digest := sha256.Sum256(input)
		r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
		if err != nil {
			return nil, err
		}
		size := (key.Curve.Params().BitSize + 7) / 8
		out := make([]byte, 2*size)
		r.FillBytes(out[:size])
		s.FillBytes(out[size:])
		return out, nil
	case *rsa.PrivateKey:
		digest := sha256.Sum256(input)
		return rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	}
	return nil, fmt.Errorf("%w %q: key type %T", ErrUnsupportedAlgorithm, k.alg, k.key)
}

// maxSignatureLen is the length of a signature of key, for sizing.
func maxSignatureLen(key crypto.Signer) int {
	switch key := key.(type) {
	case *rsa.PrivateKey:
		return key.Size()
	case *ecdsa.PrivateKey:
		return 2 * ((key.Curve.Params().BitSize + 7) / 8)
	}
	return ed25519.SignatureSize
}

// JWKS returns the JWK Set document {"keys":[...]} of every published
// public key: for each algorithm the signing key, the next key and the
// retired keys whose retire time has not passed, each with kid, alg and
// use "sig". The bytes are prepared once per record version (and when a
// retired key leaves); callers must not modify them.
func (m *Manager) JWKS() []byte {
	s := m.cur.Load()
	now := m.now()
	if c := m.jwks.Load(); c != nil && c.version == s.version && (c.validUntil.IsZero() || now.Before(c.validUntil)) {
		return c.body
	}
	c := &jwksCache{version: s.version}
	var b strings.Builder
	b.WriteString(`{"keys":[`)
	first := true
	for _, p := range s.published {
		if !p.live(now) {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.Write(p.json)
		if !p.retireAt.IsZero() && (c.validUntil.IsZero() || p.retireAt.Before(c.validUntil)) {
			c.validUntil = p.retireAt
		}
	}
	b.WriteString("]}")
	c.body = []byte(b.String())
	m.jwks.Store(c)
	return c.body
}

// KeySet returns the published public keys (what JWKS serialises).
func (m *Manager) KeySet() jose.JSONWebKeySet {
	s := m.cur.Load()
	now := m.now()
	var set jose.JSONWebKeySet
	for _, p := range s.published {
		if p.live(now) {
			set.Keys = append(set.Keys, p.jwk)
		}
	}
	return set
}

// Verify checks a compact JWS issued by Latchkey against the published
// keys and returns its payload and protected header. It checks the
// signature only, not claims such as exp. Every failure wraps ErrVerify.
func (m *Manager) Verify(token string) ([]byte, jose.Header, error) {
	s := m.cur.Load()
	if payload, h, ok, err := s.verifyFast(token, m.now()); ok {
		return payload, h, err
	}
	algs := make([]jose.SignatureAlgorithm, 0, len(s.doc.Algorithms))
	for alg := range s.doc.Algorithms {
		algs = append(algs, jose.SignatureAlgorithm(alg))
	}
	jws, err := jose.ParseSignedCompact(token, algs)
	if err != nil {
		return nil, jose.Header{}, fmt.Errorf("%w: %v", ErrVerify, err)
	}
	h := jws.Signatures[0].Header
	p := s.byKID[h.KeyID]
	if p == nil || !p.live(m.now()) {
		return nil, h, fmt.Errorf("%w: signed by an unknown or retired key", ErrVerify)
	}
	if h.Algorithm != p.alg {
		return nil, h, fmt.Errorf("%w: token alg is not the alg of key %q (%s)", ErrVerify, p.kid, p.alg)
	}
	payload, err := jws.Verify(p.jwk)
	if err != nil {
		return nil, h, fmt.Errorf("%w: key %q: %v", ErrVerify, p.kid, err)
	}
	return payload, h, nil
}
