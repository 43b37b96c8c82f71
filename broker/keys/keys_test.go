package keys_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchkeyid/latchkey/broker/keys"
	"github.com/latchkeyid/latchkey/internal/clock"
	"github.com/latchkeyid/latchkey/internal/secretbox"
	"github.com/latchkeyid/latchkey/storage"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	period      = 30 * 24 * time.Hour
	prePublish  = 24 * time.Hour
	retireAfter = 48 * time.Hour
)

// kek derives a test key-encryption key from its id, so rings built in
// different tests with the same id agree.
func kek(id string) secretbox.Key {
	sum := sha256.Sum256([]byte("test kek " + id))
	return secretbox.Key{ID: id, Secret: sum[:]}
}

func keyring(t testing.TB, ids ...string) *secretbox.Keyring {
	t.Helper()
	var ks []secretbox.Key
	for _, id := range ids {
		ks = append(ks, kek(id))
	}
	r, err := secretbox.NewKeyring(ks, rand.Reader)
	if err != nil {
		t.Fatalf("keyring: %v", err)
	}
	return r
}

func options(clk clock.Clock, ring *secretbox.Keyring, algs ...string) keys.Options {
	return keys.Options{
		Algorithms:     algs,
		RotationPeriod: period,
		PrePublish:     prePublish,
		RetireAfter:    retireAfter,
		Keyring:        ring,
		Clock:          clk,
	}
}

func newManager(t *testing.T, s keys.Store, o keys.Options) *keys.Manager {
	t.Helper()
	m, err := keys.New(t.Context(), s, o)
	if err != nil {
		t.Fatalf("keys.New: %v", err)
	}
	return m
}

func signingKID(t *testing.T, m *keys.Manager, alg string) string {
	t.Helper()
	k, err := m.Signer(alg)
	if err != nil {
		t.Fatalf("Signer(%s): %v", alg, err)
	}
	return k.KeyID
}

// kidsByState lists the kids of one state per algorithm, from List.
func kidsByState(t *testing.T, m *keys.Manager, st keys.State) map[string][]string {
	t.Helper()
	infos, err := m.List(t.Context())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	out := map[string][]string{}
	for _, k := range infos {
		if k.State == st {
			out[k.Algorithm] = append(out[k.Algorithm], k.KID)
		}
	}
	return out
}

func jwksKIDs(t *testing.T, m *keys.Manager) []string {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(m.JWKS(), &set); err != nil {
		t.Fatalf("decode JWKS: %v", err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.KeyID)
	}
	return kids
}

var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// assertNoPrivate fails if a JSON document has a member naming private key
// material at any depth.
func assertNoPrivate(t *testing.T, what string, doc []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatalf("%s: decode: %v", what, err)
	}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if slices.Contains(privateMembers, k) {
					t.Errorf("%s has private member %q", what, k)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(v)
}

func TestJWKS(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			open := b.newDB(t)
			clk := clock.NewFake(t0)
			m := newManager(t, open(t), options(clk, keyring(t, "k1")))
			next := kidsByState(t, m, keys.StateNext)

			raw := m.JWKS()
			assertNoPrivate(t, "JWKS", raw)
			var doc struct {
				Keys []map[string]any `json:"keys"`
			}
			if err := json.Unmarshal(raw, &doc); err != nil {
				t.Fatalf("decode JWKS: %v", err)
			}
			var set jose.JSONWebKeySet
			if err := json.Unmarshal(raw, &set); err != nil {
				t.Fatalf("decode JWKS: %v", err)
			}
			want := []struct {
				kid, alg, kty string
				members       []string
			}{
				{signingKID(t, m, keys.RS256), "RS256", "RSA", []string{"alg", "e", "kid", "kty", "n", "use"}},
				{signingKID(t, m, keys.ES256), "ES256", "EC", []string{"alg", "crv", "kid", "kty", "use", "x", "y"}},
				{next["RS256"][0], "RS256", "RSA", []string{"alg", "e", "kid", "kty", "n", "use"}},
				{next["ES256"][0], "ES256", "EC", []string{"alg", "crv", "kid", "kty", "use", "x", "y"}},
			}
			if len(set.Keys) != len(want) {
				t.Fatalf("JWKS has %d keys, want %d: %s", len(set.Keys), len(want), raw)
			}
			for i, w := range want {
				got := set.Keys[i]
				var members []string
				for k := range doc.Keys[i] {
					members = append(members, k)
				}
				slices.Sort(members)
				if !slices.Equal(members, w.members) {
					t.Errorf("key %d members = %v, want %v", i, members, w.members)
				}
				if got.KeyID != w.kid || got.Algorithm != w.alg || got.Use != "sig" || doc.Keys[i]["kty"] != w.kty {
					t.Errorf("key %d = kid %q alg %q use %q kty %v, want kid %q alg %q use sig kty %s",
						i, got.KeyID, got.Algorithm, got.Use, doc.Keys[i]["kty"], w.kid, w.alg, w.kty)
				}
				if !got.IsPublic() {
					t.Errorf("key %d is not public", i)
				}
				tp, err := got.Thumbprint(crypto.SHA256)
				if err != nil || base64.RawURLEncoding.EncodeToString(tp) != w.kid {
					t.Errorf("key %d: kid is not the RFC 7638 thumbprint", i)
				}
				switch k := got.Key.(type) {
				case *rsa.PublicKey:
					if k.N.BitLen() != 2048 || k.E != 65537 {
						t.Errorf("key %d: RSA %d bits, e=%d; want 2048, 65537", i, k.N.BitLen(), k.E)
					}
				case *ecdsa.PublicKey:
					if k.Curve != elliptic.P256() || doc.Keys[i]["crv"] != "P-256" {
						t.Errorf("key %d: curve %v, want P-256", i, doc.Keys[i]["crv"])
					}
				default:
					t.Errorf("key %d: type %T", i, got.Key)
				}
			}
			// The signing keys' public halves are exactly the signers'.
			for i, alg := range []string{keys.RS256, keys.ES256} {
				sk, _ := m.Signer(alg)
				pub, ok := sk.Key.Public().(interface{ Equal(crypto.PublicKey) bool })
				if !ok || !pub.Equal(set.Keys[i].Key) {
					t.Errorf("%s: JWKS key is not the signer's public key", alg)
				}
			}
			// Prepared once: the same bytes until the record changes.
			if again := m.JWKS(); &again[0] != &raw[0] {
				t.Error("JWKS rebuilt without a change")
			}
			// KeySet says the same as JWKS.
			ks := m.KeySet()
			if len(ks.Keys) != 4 || ks.Keys[0].KeyID != want[0].kid || ks.Keys[3].KeyID != want[3].kid {
				t.Errorf("KeySet = %v", ks.Keys)
			}
			if got := m.Algorithms(); !slices.Equal(got, []string{"RS256", "ES256"}) {
				t.Errorf("Algorithms = %v", got)
			}
		})
	}
}

func TestList(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			open := b.newDB(t)
			clk := clock.NewFake(t0)
			m := newManager(t, open(t), options(clk, keyring(t, "k1")))
			s0 := map[string]string{"RS256": signingKID(t, m, "RS256"), "ES256": signingKID(t, m, "ES256")}
			n0 := kidsByState(t, m, keys.StateNext)
			t1 := t0.Add(time.Hour)
			clk.Set(t1)
			if rotated, err := m.Rotate(t.Context(), true); err != nil || !rotated {
				t.Fatalf("Rotate = %v, %v", rotated, err)
			}
			n1 := kidsByState(t, m, keys.StateNext)

			infos, err := m.List(t.Context())
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			ts := func(tm time.Time) string {
				if tm.IsZero() {
					return "-"
				}
				return tm.UTC().Format(time.RFC3339Nano)
			}
			var got []string
			for _, k := range infos {
				got = append(got, fmt.Sprintf("%s %s %s created=%s activates=%s retires=%s kek=%s",
					k.Algorithm, k.State, k.KID, ts(k.Created), ts(k.Activates), ts(k.Retires), k.EncryptionKey))
			}
			want := []string{
				fmt.Sprintf("RS256 signing %s created=%s activates=%s retires=- kek=k1", n0["RS256"][0], ts(t0), ts(t1)),
				fmt.Sprintf("RS256 next %s created=%s activates=%s retires=- kek=k1", n1["RS256"][0], ts(t1), ts(t1.Add(period))),
				fmt.Sprintf("RS256 retired %s created=%s activates=%s retires=%s kek=k1", s0["RS256"], ts(t0), ts(t0), ts(t1.Add(retireAfter))),
				fmt.Sprintf("ES256 signing %s created=%s activates=%s retires=- kek=k1", n0["ES256"][0], ts(t0), ts(t1)),
				fmt.Sprintf("ES256 next %s created=%s activates=%s retires=- kek=k1", n1["ES256"][0], ts(t1), ts(t1.Add(period))),
				fmt.Sprintf("ES256 retired %s created=%s activates=%s retires=%s kek=k1", s0["ES256"], ts(t0), ts(t0), ts(t1.Add(retireAfter))),
			}
			if !slices.Equal(got, want) {
				t.Fatalf("List =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			out, err := json.Marshal(infos)
			if err != nil {
				t.Fatal(err)
			}
			assertNoPrivate(t, "List", out)
			if strings.Contains(string(out), "v1.k1.") || strings.Contains(string(out), "private") {
				t.Errorf("List JSON carries sealed key material: %s", out)
			}
		})
	}
}

func TestSignVerify(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			open := b.newDB(t)
			clk := clock.NewFake(t0)
			m := newManager(t, open(t), options(clk, keyring(t, "k1"), keys.RS256, keys.ES256, keys.EdDSA))
			var set jose.JSONWebKeySet
			if err := json.Unmarshal(m.JWKS(), &set); err != nil {
				t.Fatalf("decode JWKS: %v", err)
			}
			all := []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}
			for _, tc := range []struct{ alg, typ string }{
				{"RS256", ""}, {"RS256", "JWT"}, {"ES256", "at+jwt"}, {"ES256", ""}, {"EdDSA", "logout+jwt"},
			} {
				t.Run(tc.alg+"_"+tc.typ, func(t *testing.T) {
					payload := []byte(`{"sub":"u1","alg":"` + tc.alg + `"}`)
					tok, err := m.Sign(tc.alg, payload, tc.typ)
					if err != nil {
						t.Fatalf("Sign: %v", err)
					}
					jws, err := jose.ParseSignedCompact(tok, all)
					if err != nil {
						t.Fatalf("parse: %v", err)
					}
					h := jws.Signatures[0].Header
					if h.KeyID != signingKID(t, m, tc.alg) || h.Algorithm != tc.alg {
						t.Errorf("header kid %q alg %q, want %q %q", h.KeyID, h.Algorithm, signingKID(t, m, tc.alg), tc.alg)
					}
					typ, hasTyp := h.ExtraHeaders[jose.HeaderType]
					if (tc.typ == "") == hasTyp || (hasTyp && typ != tc.typ) {
						t.Errorf("typ header = %v (present %v), want %q", typ, hasTyp, tc.typ)
					}
					// An outside verifier with only the published JWKS.
					got, err := jws.Verify(set)
					if err != nil || string(got) != string(payload) {
						t.Fatalf("verify with JWKS: %q, %v", got, err)
					}
					got, hdr, err := m.Verify(tok)
					if err != nil || string(got) != string(payload) || hdr.KeyID != h.KeyID {
						t.Fatalf("Manager.Verify: %q, %v, %v", got, hdr.KeyID, err)
					}
				})
			}

			good, err := m.Sign("ES256", []byte(`{"a":1}`), "")
			if err != nil {
				t.Fatal(err)
			}
			parts := strings.Split(good, ".")
			foreign, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			forge := func(kid string, alg jose.SignatureAlgorithm, key any) string {
				s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, nil)
				if err != nil {
					t.Fatal(err)
				}
				j, err := s.Sign([]byte(`{"a":1}`))
				if err != nil {
					t.Fatal(err)
				}
				out, _ := j.CompactSerialize()
				return out
			}
			edKID := signingKID(t, m, "EdDSA")
			_, edForeign, _ := ed25519.GenerateKey(rand.Reader)
			for _, tc := range []struct{ name, token, want string }{
				{"tampered payload", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"a":2}`)) + "." + parts[2],
					fmt.Sprintf("keys: token signature not valid: key %q: go-jose/go-jose: error in cryptographic primitive", signingKID(t, m, "ES256"))},
				{"foreign key, our kid", forge(signingKID(t, m, "ES256"), jose.ES256, foreign),
					fmt.Sprintf("keys: token signature not valid: key %q: go-jose/go-jose: error in cryptographic primitive", signingKID(t, m, "ES256"))},
				{"unknown kid", forge("nope", jose.ES256, foreign), "keys: token signature not valid: signed by an unknown or retired key"},
				{"alg does not match key", forge(edKID, jose.ES256, foreign), fmt.Sprintf("keys: token signature not valid: token alg is not the alg of key %q (EdDSA)", edKID)},
				{"foreign EdDSA", forge(edKID, jose.EdDSA, edForeign), fmt.Sprintf("keys: token signature not valid: key %q: go-jose/go-jose: error in cryptographic primitive", edKID)},
				{"garbage", "a.b", "keys: token signature not valid: go-jose/go-jose: compact JWS format must have three parts"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					p, _, err := m.Verify(tc.token)
					if p != nil || !errors.Is(err, keys.ErrVerify) || err.Error() != tc.want {
						t.Fatalf("Verify = %q, %v; want %q", p, err, tc.want)
					}
				})
			}
			if _, err := m.Sign("HS256", []byte("{}"), ""); !errors.Is(err, keys.ErrUnsupportedAlgorithm) || err.Error() != `sign: keys: no signing key for algorithm "HS256"` {
				t.Errorf("Sign(HS256) = %v", err)
			}
			if _, err := m.Signer("PS256"); !errors.Is(err, keys.ErrUnsupportedAlgorithm) {
				t.Errorf("Signer(PS256) = %v", err)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			open := b.newDB(t)
			clk := clock.NewFake(t0)
			m := newManager(t, open(t), options(clk, keyring(t, "k1")))
			s0 := signingKID(t, m, "RS256")
			n0 := kidsByState(t, m, keys.StateNext)["RS256"][0]
			es0 := signingKID(t, m, "ES256")
			esn0 := kidsByState(t, m, keys.StateNext)["ES256"][0]
			v0 := m.Version()
			oldToken, err := m.Sign("RS256", []byte(`{"n":0}`), "")
			if err != nil {
				t.Fatal(err)
			}

			for _, at := range []time.Duration{0, prePublish, period - time.Nanosecond} {
				clk.Set(t0.Add(at))
				rotated, err := m.Rotate(ctx, false)
				if err != nil || rotated {
					t.Fatalf("Rotate(false) at t0+%v = %v, %v; want false, nil", at, rotated, err)
				}
				if m.Version() != v0 || signingKID(t, m, "RS256") != s0 {
					t.Fatalf("at t0+%v: version %d kid %q; want unchanged %d %q", at, m.Version(), signingKID(t, m, "RS256"), v0, s0)
				}
			}

			t1 := t0.Add(period)
			clk.Set(t1)
			rotated, err := m.Rotate(ctx, false)
			if err != nil || !rotated {
				t.Fatalf("Rotate(false) at rotation time = %v, %v; want true", rotated, err)
			}
			if got := signingKID(t, m, "RS256"); got != n0 {
				t.Fatalf("RS256 signs with %q, want the pre-published %q", got, n0)
			}
			if got := signingKID(t, m, "ES256"); got != esn0 {
				t.Fatalf("ES256 signs with %q, want the pre-published %q", got, esn0)
			}
			n1 := kidsByState(t, m, keys.StateNext)
			wantJWKS := []string{n0, esn0, n1["RS256"][0], n1["ES256"][0], s0, es0}
			if got := jwksKIDs(t, m); !slices.Equal(got, wantJWKS) {
				t.Fatalf("JWKS after rotation = %v, want %v", got, wantJWKS)
			}
			newToken, _ := m.Sign("RS256", []byte(`{"n":1}`), "")
			if _, h, err := m.Verify(newToken); err != nil || h.KeyID != n0 {
				t.Fatalf("new token: kid %q, %v", h.KeyID, err)
			}
			// Not due again right after.
			if rotated, err := m.Rotate(ctx, false); err != nil || rotated {
				t.Fatalf("second Rotate(false) = %v, %v", rotated, err)
			}

			clk.Set(t1.Add(retireAfter - time.Nanosecond))
			if got := jwksKIDs(t, m); !slices.Equal(got, wantJWKS) {
				t.Fatalf("JWKS just before retire time = %v, want %v", got, wantJWKS)
			}
			if p, _, err := m.Verify(oldToken); err != nil || string(p) != `{"n":0}` {
				t.Fatalf("old token before retire time: %q, %v", p, err)
			}

			clk.Set(t1.Add(retireAfter))
			if got := jwksKIDs(t, m); !slices.Equal(got, wantJWKS[:4]) {
				t.Fatalf("JWKS at retire time = %v, want %v", got, wantJWKS[:4])
			}
			if _, _, err := m.Verify(oldToken); !errors.Is(err, keys.ErrVerify) {
				t.Fatalf("old token after retire time: %v, want ErrVerify", err)
			}
			if len(m.KeySet().Keys) != 4 {
				t.Fatalf("KeySet after retire time has %d keys", len(m.KeySet().Keys))
			}
			// Still in the record until the next rotation drops it.
			if got := kidsByState(t, m, keys.StateRetired)["RS256"]; !slices.Equal(got, []string{s0}) {
				t.Fatalf("retired in record = %v", got)
			}
			clk.Set(t1.Add(period))
			if rotated, err := m.Rotate(ctx, false); err != nil || !rotated {
				t.Fatalf("third Rotate = %v, %v", rotated, err)
			}
			if got := kidsByState(t, m, keys.StateRetired)["RS256"]; !slices.Equal(got, []string{n0}) {
				t.Fatalf("retired after second rotation = %v, want only %q", got, n0)
			}
			if got := signingKID(t, m, "RS256"); got != n1["RS256"][0] {
				t.Fatalf("RS256 signs with %q, want %q", got, n1["RS256"][0])
			}
		})
	}
}

func TestForcedRotation(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			open := b.newDB(t)
			clk := clock.NewFake(t0)
			m := newManager(t, open(t), options(clk, keyring(t, "k1"), keys.ES256))
			n0 := kidsByState(t, m, keys.StateNext)["ES256"][0]
			clk.Advance(time.Minute)
			if rotated, err := m.Rotate(t.Context(), true); err != nil || !rotated {
				t.Fatalf("Rotate(true) = %v, %v", rotated, err)
			}
			if got := signingKID(t, m, "ES256"); got != n0 {
				t.Fatalf("signs with %q, want %q", got, n0)
			}
			infos, _ := m.List(t.Context())
			if next := infos[1]; next.State != keys.StateNext || !next.Activates.Equal(t0.Add(time.Minute+period)) {
				t.Fatalf("next key %+v: want activation at the new rotation time", next)
			}
		})
	}
}

// Two replicas on one database rotate at the same moment: one wins, both
// end up signing with the same key.
func TestReplicaRace(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			open := b.newDB(t)
			clk := clock.NewFake(t0)
			ring := keyring(t, "k1")
			replicas := []*keys.Manager{
				newManager(t, open(t), options(clk, ring, keys.ES256, keys.RS256)),
				newManager(t, open(t), options(clk, ring, keys.ES256, keys.RS256)),
			}
			if a, b := signingKID(t, replicas[0], "ES256"), signingKID(t, replicas[1], "ES256"); a != b {
				t.Fatalf("replicas start with different keys: %q, %q", a, b)
			}
			for round := range 5 {
				prevNext := kidsByState(t, replicas[0], keys.StateNext)
				clk.Advance(period)
				var wg sync.WaitGroup
				start := make(chan struct{})
				results := make([]bool, len(replicas))
				errs := make([]error, len(replicas))
				for i, m := range replicas {
					wg.Go(func() {
						<-start
						results[i], errs[i] = m.Rotate(ctx, false)
					})
				}
				close(start)
				wg.Wait()
				wins := 0
				for i := range replicas {
					if errs[i] != nil {
						t.Fatalf("round %d: replica %d: %v", round, i, errs[i])
					}
					if results[i] {
						wins++
					}
				}
				if wins != 1 {
					t.Fatalf("round %d: %d replicas rotated (%v), want exactly 1", round, wins, results)
				}
				for i, m := range replicas {
					if err := m.Refresh(ctx); err != nil {
						t.Fatalf("round %d: Refresh replica %d: %v", round, i, err)
					}
					for _, alg := range []string{"ES256", "RS256"} {
						if got := signingKID(t, m, alg); got != prevNext[alg][0] {
							t.Fatalf("round %d: replica %d signs %s with %q, want the pre-published %q", round, i, alg, got, prevNext[alg][0])
						}
					}
				}
				if a, b := string(replicas[0].JWKS()), string(replicas[1].JWKS()); a != b {
					t.Fatalf("round %d: replicas publish different JWKS", round)
				}
			}
		})
	}
}

// Replicas starting together on an empty database create the record once.
func TestCreationRace(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			open := b.newDB(t)
			clk := clock.NewFake(t0)
			ring := keyring(t, "k1")
			stores := []keys.Store{open(t), open(t), open(t)}
			ms := make([]*keys.Manager, len(stores))
			errs := make([]error, len(stores))
			var wg sync.WaitGroup
			for i, s := range stores {
				wg.Go(func() { ms[i], errs[i] = keys.New(t.Context(), s, options(clk, ring, keys.ES256)) })
			}
			wg.Wait()
			for i := range ms {
				if errs[i] != nil {
					t.Fatalf("replica %d: %v", i, errs[i])
				}
				if ms[i].Version() != 1 {
					t.Errorf("replica %d: version %d, want 1", i, ms[i].Version())
				}
				if signingKID(t, ms[i], "ES256") != signingKID(t, ms[0], "ES256") {
					t.Errorf("replica %d signs with another key", i)
				}
			}
		})
	}
}

func TestEncryptionKeys(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			open := b.newDB(t)
			clk := clock.NewFake(t0)
			m := newManager(t, open(t), options(clk, keyring(t, "k1")))
			rs := signingKID(t, m, "RS256")
			es := signingKID(t, m, "ES256")
			if _, err := m.Rotate(ctx, true); err != nil { // so there are retired keys too
				t.Fatal(err)
			}
			rs1 := signingKID(t, m, "RS256")

			// A ring without k1 cannot load the keys.
			_, err := keys.New(ctx, open(t), options(clk, keyring(t, "k2")))
			want := fmt.Sprintf(`decrypt signing key %q (sealed under encryption key "k1"): encryption key "k1" is not configured`, rs1)
			if !errors.Is(err, secretbox.ErrUnknownKey) || err.Error() != want {
				t.Fatalf("New without k1 = %v\nwant %s", err, want)
			}
			// A different key under the same id.
			wrong, _ := secretbox.NewKeyring([]secretbox.Key{{ID: "k1", Secret: make([]byte, 32)}}, nil)
			_, err = keys.New(ctx, open(t), options(clk, wrong))
			want = fmt.Sprintf(`decrypt signing key %q (sealed under encryption key "k1"): secretbox: cannot decrypt: sealed under encryption key "k1": wrong key, wrong additional data or tampered value`, rs1)
			if !errors.Is(err, secretbox.ErrDecrypt) || err.Error() != want {
				t.Fatalf("New with a wrong k1 = %v\nwant %s", err, want)
			}

			// Rotate the encryption key: k2 first, k1 still there.
			both := newManager(t, open(t), options(clk, keyring(t, "k2", "k1")))
			n, err := both.Rewrap(ctx)
			if err != nil || n != 6 {
				t.Fatalf("Rewrap = %d, %v; want 6 (signing, next, retired for 2 algorithms)", n, err)
			}
			if n, err := both.Rewrap(ctx); err != nil || n != 0 {
				t.Fatalf("second Rewrap = %d, %v; want 0", n, err)
			}
			infos, err := both.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range infos {
				if k.EncryptionKey != "k2" {
					t.Errorf("%s %s still under %q", k.Algorithm, k.State, k.EncryptionKey)
				}
			}
			// Now k2 alone opens everything; the keys are the same keys.
			only := newManager(t, open(t), options(clk, keyring(t, "k2")))
			if got := signingKID(t, only, "RS256"); got != rs1 {
				t.Fatalf("after rewrap signs with %q, want %q", got, rs1)
			}
			kids := jwksKIDs(t, only)
			if !slices.Contains(kids, rs) || !slices.Contains(kids, es) {
				t.Fatalf("retired keys missing after rewrap: %v", kids)
			}
			// The first manager (k1 only) cannot open the rewrapped record
			// and keeps the keys it has; a new one cannot start.
			v := m.Version()
			if err := m.Refresh(ctx); !errors.Is(err, secretbox.ErrUnknownKey) || m.Version() != v || signingKID(t, m, "RS256") != rs1 {
				t.Fatalf("Refresh with only k1 = %v (version %d, was %d)", err, m.Version(), v)
			}
			if _, err := keys.New(ctx, open(t), options(clk, keyring(t, "k1"))); !errors.Is(err, secretbox.ErrUnknownKey) {
				t.Fatalf("New with only k1 after rewrap = %v, want ErrUnknownKey", err)
			}
		})
	}
}

// A replica that cannot open a newer record keeps signing with what it has.
func TestRefreshKeepsKeysOnError(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			open := b.newDB(t)
			clk := clock.NewFake(t0)
			old := newManager(t, open(t), options(clk, keyring(t, "k1"), keys.ES256))
			kid := signingKID(t, old, "ES256")
			v := old.Version()
			newer := newManager(t, open(t), options(clk, keyring(t, "k2", "k1"), keys.ES256))
			if _, err := newer.Rotate(ctx, true); err != nil {
				t.Fatal(err)
			}
			err := old.Refresh(ctx)
			// The new signing key was the next key, sealed by old under
			// k1; the new next key is sealed under k2.
			newNext := kidsByState(t, newer, keys.StateNext)["ES256"][0]
			want := fmt.Sprintf(`refresh signing keys (version %d): decrypt next key %q (sealed under encryption key "k2"): encryption key "k2" is not configured`, v+1, newNext)
			if err == nil || err.Error() != want {
				t.Fatalf("Refresh = %v\nwant %s", err, want)
			}
			if old.Version() != v || signingKID(t, old, "ES256") != kid {
				t.Fatal("failed Refresh changed the keys in use")
			}
		})
	}
}

// An algorithm dropped from the config is retired at the next rotation,
// and added back by New.
func TestAlgorithmChanges(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			open := b.newDB(t)
			clk := clock.NewFake(t0)
			ring := keyring(t, "k1")
			m := newManager(t, open(t), options(clk, ring, keys.ES256))
			es := signingKID(t, m, "ES256")

			withEd := newManager(t, open(t), options(clk, ring, keys.ES256, keys.EdDSA))
			if got := signingKID(t, withEd, "ES256"); got != es {
				t.Fatalf("adding EdDSA changed the ES256 key: %q", got)
			}
			ed := signingKID(t, withEd, "EdDSA")
			edNext := kidsByState(t, withEd, keys.StateNext)["EdDSA"][0]
			if err := m.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			if got := signingKID(t, m, "EdDSA"); got != ed {
				t.Fatalf("a replica configured without EdDSA should still sign with the record's EdDSA key, got %q", got)
			}

			clk.Advance(time.Hour)
			if rotated, err := m.Rotate(ctx, true); err != nil || !rotated {
				t.Fatalf("Rotate = %v, %v", rotated, err)
			}
			if _, err := m.Signer("EdDSA"); !errors.Is(err, keys.ErrUnsupportedAlgorithm) {
				t.Fatalf("Signer(EdDSA) after retiring = %v", err)
			}
			kids := jwksKIDs(t, m)
			if !slices.Contains(kids, ed) || slices.Contains(kids, edNext) {
				t.Fatalf("JWKS = %v: want retired EdDSA %q, not the never-used next %q", kids, ed, edNext)
			}
			clk.Advance(retireAfter)
			if rotated, err := m.Rotate(ctx, true); err != nil || !rotated {
				t.Fatalf("Rotate = %v, %v", rotated, err)
			}
			infos, _ := m.List(ctx)
			for _, k := range infos {
				if k.Algorithm == "EdDSA" {
					t.Fatalf("EdDSA key left in the record after its retire time: %+v", k)
				}
			}
			again := newManager(t, open(t), options(clk, ring, keys.EdDSA, keys.ES256))
			if got := again.Algorithms(); !slices.Equal(got, []string{"EdDSA", "ES256"}) {
				t.Fatalf("Algorithms = %v", got)
			}
		})
	}
}

func TestOptionsErrors(t *testing.T) {
	ring := keyring(t, "k1")
	clk := clock.NewFake(t0)
	for _, tc := range []struct {
		name string
		edit func(*keys.Options)
		want string
	}{
		{"unknown alg", func(o *keys.Options) { o.Algorithms = []string{"HS256"} }, `keys: unsupported algorithm "HS256" (supported: RS256, ES256, EdDSA)`},
		{"duplicate alg", func(o *keys.Options) { o.Algorithms = []string{"ES256", "ES256"} }, `keys: algorithm "ES256" listed twice`},
		{"period below prepublish", func(o *keys.Options) { o.RotationPeriod = time.Hour }, "keys: RotationPeriod 1h0m0s is shorter than PrePublish 24h0m0s: the next key would sign before relying parties have it"},
		{"no retire", func(o *keys.Options) { o.RetireAfter = 0 }, "keys: RetireAfter is required (the longest token lifetime plus a margin)"},
		{"negative", func(o *keys.Options) { o.PrePublish = -time.Second }, "keys: durations must not be negative"},
		{"no keyring", func(o *keys.Options) { o.Keyring = nil }, "keys: Keyring is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := options(clk, ring)
			tc.edit(&o)
			_, err := keys.New(t.Context(), nil, o)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// A record this version cannot read is an error, not a panic or a reset.
func TestCorruptRecord(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			open := b.newDB(t)
			s := open(t)
			if _, err := s.UpdateKeys(t.Context(), func(storage.Keys) (storage.Keys, error) {
				return storage.Keys{Data: json.RawMessage(`{"format":2}`)}, nil
			}); err != nil {
				t.Fatal(err)
			}
			_, err := keys.New(t.Context(), s, options(clock.NewFake(t0), keyring(t, "k1")))
			if want := "load signing keys (version 1): decode keys record: format 2 is not supported (want 1)"; err == nil || err.Error() != want {
				t.Fatalf("New = %v, want %q", err, want)
			}
		})
	}
}

func TestRun(t *testing.T) {
	b := backends()[0]
	open := b.newDB(t)
	clk := clock.NewFake(t0)
	o := options(clk, keyring(t, "k1"), keys.ES256)
	o.CheckInterval = 5 * time.Millisecond
	m := newManager(t, open(t), o)
	other := newManager(t, open(t), o)
	next := kidsByState(t, m, keys.StateNext)["ES256"][0]
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	clk.Set(t0.Add(period))
	deadline := time.Now().Add(10 * time.Second)
	for signingKID(t, m, "ES256") != next {
		if time.Now().After(deadline) {
			t.Fatal("Run did not rotate")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Run also picks up another replica's rotation.
	if _, err := other.Rotate(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	for m.Version() != other.Version() {
		if time.Now().After(deadline) {
			t.Fatal("Run did not refresh")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}

// Verify parses tokens from the outside (bearer access tokens at
// userinfo): it must never panic and accept nothing it did not sign.
func FuzzVerify(f *testing.F) {
	open := migrated(f, "sqlite", f.TempDir()+"/latchkey.db")
	m, err := keys.New(f.Context(), open(f), options(clock.NewFake(t0), keyring(f, "k1"), keys.ES256, keys.EdDSA))
	if err != nil {
		f.Fatal(err)
	}
	good, err := m.Sign("ES256", []byte(`{"sub":"u"}`), "at+jwt")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{good, "", "..", "a.b.c", good + "x", strings.Replace(good, ".", "..", 1),
		`eyJhbGciOiJub25lIn0.e30.`, `eyJhbGciOiJFUzI1NiIsImtpZCI6MX0.e30.AA`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		p, _, err := m.Verify(token)
		// Another encoding of the one signed token may verify (base64
		// padding bits); another payload must not.
		if err == nil && string(p) != `{"sub":"u"}` {
			t.Fatalf("Verify accepted a payload it did not sign: %q -> %q", token, p)
		}
		if err != nil && (p != nil || !errors.Is(err, keys.ErrVerify)) {
			t.Fatalf("Verify = %q, %v", p, err)
		}
	})
}
