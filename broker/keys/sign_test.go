package keys_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchkeyid/latchkey/broker/keys"
	"github.com/latchkeyid/latchkey/internal/clock"
)

// TestSignMatchesGoJose: Manager.Sign puts the JWS together itself; its
// protected header and payload segments are byte for byte what go-jose
// writes for the same key and typ, and go-jose verifies the signature
// (RS256 signatures are deterministic, so there the whole token matches).
func TestSignMatchesGoJose(t *testing.T) {
	open := migrated(t, "sqlite", filepath.Join(t.TempDir(), "latchkey.db"))
	m := newManager(t, open(t), options(clock.NewFake(t0), keyring(t, "k1"), keys.RS256, keys.ES256, keys.EdDSA))
	payload := []byte(`{"iss":"https://id.example.com","sub":"u1","scope":"a b","n":1}`)
	for _, alg := range []string{keys.RS256, keys.ES256, keys.EdDSA} {
		for _, typ := range []string{"", "JWT", "at+jwt"} {
			t.Run(alg+"_"+typ, func(t *testing.T) {
				k, err := m.Signer(alg)
				if err != nil {
					t.Fatal(err)
				}
				opts := &jose.SignerOptions{}
				if typ != "" {
					opts = opts.WithType(jose.ContentType(typ))
				}
				ref, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg),
					Key: jose.JSONWebKey{Key: k.Key, KeyID: k.KeyID, Algorithm: alg, Use: "sig"}}, opts)
				if err != nil {
					t.Fatal(err)
				}
				jws, err := ref.Sign(payload)
				if err != nil {
					t.Fatal(err)
				}
				want, err := jws.CompactSerialize()
				if err != nil {
					t.Fatal(err)
				}
				got, err := m.Sign(alg, payload, typ)
				if err != nil {
					t.Fatal(err)
				}
				g, w := strings.Split(got, "."), strings.Split(want, ".")
				if len(g) != 3 || g[0] != w[0] || g[1] != w[1] {
					t.Fatalf("Sign = %s\ngo-jose %s", got, want)
				}
				if alg == keys.RS256 && got != want {
					t.Errorf("RS256 signature differs from go-jose's:\n%s\n%s", got, want)
				}
				parsed, err := jose.ParseSignedCompact(got, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
				if err != nil {
					t.Fatal(err)
				}
				if out, err := parsed.Verify(k.Key.Public()); err != nil || string(out) != string(payload) {
					t.Fatalf("go-jose verify: %q, %v", out, err)
				}
			})
		}
	}
	// Signatures are fresh each time (ES256 is randomized), tokens valid.
	a, _ := m.Sign(keys.ES256, payload, "")
	b, _ := m.Sign(keys.ES256, payload, "")
	if a == b {
		t.Error("two ES256 signatures are equal")
	}
}

// goJoseVerify is Manager.Verify as it was before its fast path: go-jose
// parses and verifies everything. The fast path must answer as it does.
func goJoseVerify(m *keys.Manager, token string) ([]byte, jose.Header, error) {
	var set jose.JSONWebKeySet
	_ = json.Unmarshal(m.JWKS(), &set)
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA})
	if err != nil {
		return nil, jose.Header{}, fmt.Errorf("%w: %v", keys.ErrVerify, err)
	}
	h := jws.Signatures[0].Header
	ks := set.Key(h.KeyID)
	if len(ks) == 0 {
		return nil, h, fmt.Errorf("%w: signed by an unknown or retired key", keys.ErrVerify)
	}
	if h.Algorithm != ks[0].Algorithm {
		return nil, h, fmt.Errorf("%w: token alg is not the alg of key %q (%s)", keys.ErrVerify, h.KeyID, ks[0].Algorithm)
	}
	payload, err := jws.Verify(ks[0])
	if err != nil {
		return nil, h, fmt.Errorf("%w: key %q: %v", keys.ErrVerify, h.KeyID, err)
	}
	return payload, h, nil
}

// FuzzVerifyMatchesGoJose: for any token, Manager.Verify (fast path or
// not) gives go-jose's answer: the same payload, header and error text.
func FuzzVerifyMatchesGoJose(f *testing.F) {
	open := migrated(f, "sqlite", filepath.Join(f.TempDir(), "latchkey.db"))
	m, err := keys.New(f.Context(), open(f), options(clock.NewFake(t0), keyring(f, "k1"), keys.RS256, keys.ES256, keys.EdDSA))
	if err != nil {
		f.Fatal(err)
	}
	b64 := base64.RawURLEncoding
	for _, alg := range []string{keys.RS256, keys.ES256, keys.EdDSA} {
		for _, typ := range []string{"", "at+jwt"} {
			tok, err := m.Sign(alg, []byte(`{"sub":"u","n":1}`), typ)
			if err != nil {
				f.Fatal(err)
			}
			parts := strings.Split(tok, ".")
			k, _ := m.Signer(alg)
			flipped := []byte(parts[2])
			flipped[3] ^= 1
			f.Add(tok)
			f.Add(parts[0] + "." + parts[1] + "." + string(flipped))
			f.Add(parts[0] + "." + b64.EncodeToString([]byte(`{"sub":"v"}`)) + "." + parts[2])
			f.Add(parts[0] + "=." + parts[1] + "." + parts[2])
			f.Add(parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-2])
			for _, h := range []string{
				`{"kid":"` + k.KeyID + `","alg":"` + alg + `"}`,
				`{"alg":"` + alg + `","kid":"` + k.KeyID + `","typ":"JWT","x":1}`,
				`{"alg":"` + alg + `", "kid":"` + k.KeyID + `"}`,
				`{"alg":"` + alg + `","kid":"nope"}`,
				`{"alg":"none","kid":"` + k.KeyID + `"}`,
				`{"alg":"` + alg + `","alg":"` + alg + `","kid":"` + k.KeyID + `"}`,
				`{"alg":"` + alg + `","kid":"` + k.KeyID + `","crit":["b64"],"b64":false}`,
			} {
				f.Add(b64.EncodeToString([]byte(h)) + "." + parts[1] + "." + parts[2])
			}
		}
	}
	f.Fuzz(func(t *testing.T, token string) {
		p1, h1, err1 := m.Verify(token)
		p2, h2, err2 := goJoseVerify(m, token)
		// Verify lists the accepted algorithms in map order.
		words := func(err error) string { w, _, _ := strings.Cut(fmt.Sprint(err), "; expected ["); return w }
		if string(p1) != string(p2) || words(err1) != words(err2) {
			t.Fatalf("Verify(%q) = %q, %v; go-jose: %q, %v", token, p1, err1, p2, err2)
		}
		if err1 == nil && (h1.KeyID != h2.KeyID || h1.Algorithm != h2.Algorithm ||
			fmt.Sprint(h1.ExtraHeaders) != fmt.Sprint(h2.ExtraHeaders)) {
			t.Fatalf("Verify(%q) header %+v, go-jose %+v", token, h1, h2)
		}
	})
}
