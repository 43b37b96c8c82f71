package bench_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/latchkeyid/latchkey/broker/token"
	"github.com/latchkeyid/latchkey/providers/local"
)

var algs = []string{token.RS256, token.ES256, token.EdDSA}

// rawKey is a bare key for the algorithm, as Go's crypto signs with it.
func rawKey(tb testing.TB, alg string) crypto.Signer {
	tb.Helper()
	var (
		k   crypto.Signer
		err error
	)
	switch alg {
	case token.RS256:
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case token.ES256:
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case token.EdDSA:
		_, k, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// rawSign is one signature as a JWS needs it, without any JOSE code.
func rawSign(k crypto.Signer, alg string, msg []byte) ([]byte, error) {
	if alg == token.EdDSA {
		return k.Sign(rand.Reader, msg, crypto.Hash(0))
	}
	sum := sha256.Sum256(msg)
	return k.Sign(rand.Reader, sum[:], crypto.SHA256)
}

func rawVerify(pub crypto.PublicKey, alg string, msg, sig []byte) bool {
	sum := sha256.Sum256(msg)
	switch alg {
	case token.RS256:
		return rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), crypto.SHA256, sum[:], sig) == nil
	case token.ES256:
		return ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), sum[:], sig)
	default:
		return ed25519.Verify(pub.(ed25519.PublicKey), msg, sig)
	}
}

// signingInput is about the size of an access token's header and payload.
var signingInput = []byte("eyJhbGciOiJFUzI1NiIsImtpZCI6ImtpZCIsInR5cCI6ImF0K2p3dCJ9." +
	"eyJpc3MiOiJodHRwOi8vMTI3LjAuMC4xOjU1NTYiLCJleHAiOjE3NzI0MDAwMDAsImF1ZCI6Imh0dHA6Ly8xMjcuMC4wLjE6NTU1NiIsInN1YiI6ImJlbmNoLWNj" +
	"IiwiY2xpZW50X2lkIjoiYmVuY2gtY2MiLCJpYXQiOjE3NzIzOTk0MDAsImp0aSI6IjAxMjM0NTY3ODlhYmNkZWYwMTIzNDUiLCJzY29wZSI6ImFwaTpyZWFkIn0")

// BenchmarkRawSign is the machine's limit: one signature per algorithm
// with Go's crypto (RSA 2048, P-256, Ed25519) and nothing else. Every
// token benchmark reads as a multiple of it.
func BenchmarkRawSign(b *testing.B) {
	for _, alg := range algs {
		b.Run(alg, func(b *testing.B) {
			k := rawKey(b, alg)
			b.ReportAllocs()
			stop := cpuPerOp(b)
			for b.Loop() {
				if _, err := rawSign(k, alg, signingInput); err != nil {
					b.Fatal(err)
				}
			}
			stop()
		})
	}
}

// BenchmarkRawVerify is one signature check per algorithm (what
// introspection and userinfo pay per token).
func BenchmarkRawVerify(b *testing.B) {
	for _, alg := range algs {
		b.Run(alg, func(b *testing.B) {
			k := rawKey(b, alg)
			sig, err := rawSign(k, alg, signingInput)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			stop := cpuPerOp(b)
			for b.Loop() {
				if !rawVerify(k.Public(), alg, signingInput, sig) {
					b.Fatal("does not verify")
				}
			}
			stop()
		})
	}
}

// BenchmarkJWS is keys.Manager.Sign: a compact JWS with kid and typ, the
// JOSE layer on top of BenchmarkRawSign.
func BenchmarkJWS(b *testing.B) {
	s := newStack(b, sqliteBackend)
	payload := signingInput[len("eyJhbGciOiJFUzI1NiIsImtpZCI6ImtpZCIsInR5cCI6ImF0K2p3dCJ9."):]
	for _, alg := range algs {
		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			stop := cpuPerOp(b)
			for b.Loop() {
				if _, err := s.keys.Sign(alg, payload, token.TypeAccessToken); err != nil {
					b.Fatal(err)
				}
			}
			stop()
		})
	}
}

// BenchmarkAccessToken is token.Issuer.AccessToken (claims, JSON, jti,
// JWS) signed with each algorithm, for a client_credentials grant.
func BenchmarkAccessToken(b *testing.B) {
	s := newStack(b, sqliteBackend)
	for _, alg := range algs {
		b.Run(alg, func(b *testing.B) {
			iss, err := token.New(token.Options{Issuer: issuerURL, Signer: s.keys, AccessTokenAlg: alg})
			if err != nil {
				b.Fatal(err)
			}
			g := token.Grant{ClientID: ccClient, Scopes: []string{ccScope}}
			b.ReportAllocs()
			stop := cpuPerOp(b)
			for b.Loop() {
				if _, _, _, err := iss.AccessToken(b.Context(), token.Subject{UserID: ccClient}, g); err != nil {
					b.Fatal(err)
				}
			}
			stop()
		})
	}
}

// BenchmarkIDToken is token.Issuer.IDToken with each algorithm (the
// client's id_token_signed_response_alg), with at_hash and profile claims.
func BenchmarkIDToken(b *testing.B) {
	s := newStack(b, sqliteBackend)
	subj := token.Subject{UserID: s.user.ID, Username: username, Name: "Bench User", Email: "bench@example.com", EmailVerified: true}
	for _, alg := range algs {
		b.Run(alg, func(b *testing.B) {
			g := token.Grant{ClientID: appClient, Scopes: []string{"openid", "profile", "email"}, Nonce: "n",
				AuthTime: time.Now(), AMR: []string{"pwd"}, SID: "sid", IDTokenAlg: alg}
			at, _, _, err := s.tokens.AccessToken(context.Background(), subj, g)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			stop := cpuPerOp(b)
			for b.Loop() {
				if _, err := s.tokens.IDToken(b.Context(), subj, g, at); err != nil {
					b.Fatal(err)
				}
			}
			stop()
		})
	}
}

// BenchmarkVerifyAccessToken is token.Issuer.VerifyAccessToken (header
// checks, keys.Manager.Verify, claims) per algorithm: the core of
// introspection and userinfo.
func BenchmarkVerifyAccessToken(b *testing.B) {
	s := newStack(b, sqliteBackend)
	for _, alg := range algs {
		b.Run(alg, func(b *testing.B) {
			iss, err := token.New(token.Options{Issuer: issuerURL, Signer: s.keys, AccessTokenAlg: alg})
			if err != nil {
				b.Fatal(err)
			}
			at, _, _, err := iss.AccessToken(context.Background(), token.Subject{UserID: ccClient},
				token.Grant{ClientID: ccClient, Scopes: []string{ccScope}})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			stop := cpuPerOp(b)
			for b.Loop() {
				if _, err := iss.VerifyAccessToken(b.Context(), at); err != nil {
					b.Fatal(err)
				}
			}
			stop()
		})
	}
}

// BenchmarkJWKS is the JWKS document as /keys serves it (bytes prepared
// once per keys record version).
func BenchmarkJWKS(b *testing.B) {
	s := newStack(b, sqliteBackend)
	b.ReportAllocs()
	stop := cpuPerOp(b)
	for b.Loop() {
		if len(s.keys.JWKS()) == 0 {
			b.Fatal("empty JWKS")
		}
	}
	stop()
}

// BenchmarkPasswordHash is one argon2id verification at the production
// parameters (local.DefaultParams) and at the cheap ones the login
// benchmarks use: subtract it from a login to get the login without the
// hash.
func BenchmarkPasswordHash(b *testing.B) {
	for _, c := range []struct {
		name string
		p    local.Params
	}{{"default", local.DefaultParams}, {"bench", cheapHash}} {
		b.Run(c.name, func(b *testing.B) {
			h := local.NewHasher(c.p, 1, time.Minute, nil)
			enc, err := h.Hash(context.Background(), password)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			stop := cpuPerOp(b)
			for b.Loop() {
				if ok, err := h.Verify(b.Context(), enc, password); err != nil || !ok {
					b.Fatal(ok, err)
				}
			}
			stop()
		})
	}
}
