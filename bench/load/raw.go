package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/latchkeyid/latchkey/providers/local"
)

// rawRates are the machine's limits, measured by this process on its core
// in the same run as the load: Go's crypto without any JOSE or HTTP.
type rawRates struct {
	// Per CPU-second of this process (robust to other load on the core)
	// and per wall second.
	ES256Sign, RS256Sign, ES256Verify rate
	// Argon2idMs is one hash at local.DefaultParams, CPU milliseconds.
	Argon2idMs float64
}

type rate struct {
	PerCPUSecond  float64 `json:"per_cpu_second"`
	PerWallSecond float64 `json:"per_wall_second"`
}

// measure runs op for about d on this goroutine and returns its rate.
func measure(d time.Duration, op func()) rate {
	op() // warm
	n := 0
	c0, w0 := selfCPU(), time.Now()
	for time.Since(w0) < d {
		for range 8 {
			op()
		}
		n += 8
	}
	cpu, wall := selfCPU()-c0, time.Since(w0)
	r := rate{PerWallSecond: float64(n) / wall.Seconds()}
	if cpu > 0 {
		r.PerCPUSecond = float64(n) / cpu.Seconds()
	}
	return r
}

// measureRaw measures every raw rate, d per figure.
func measureRaw(d time.Duration) (rawRates, error) {
	var out rawRates
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return out, err
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return out, err
	}
	// About the size of an access token's signing input.
	msg := make([]byte, 420)
	_, _ = rand.Read(msg)
	digest := func() []byte { s := sha256.Sum256(msg); return s[:] }
	out.ES256Sign = measure(d, func() { _, _ = ec.Sign(rand.Reader, digest(), crypto.SHA256) })
	out.RS256Sign = measure(d, func() { _, _ = rk.Sign(rand.Reader, digest(), crypto.SHA256) })
	sig, err := ec.Sign(rand.Reader, digest(), crypto.SHA256)
	if err != nil {
		return out, err
	}
	out.ES256Verify = measure(d, func() { ecdsa.VerifyASN1(&ec.PublicKey, digest(), sig) })
	p := local.DefaultParams
	salt := make([]byte, p.SaltLength)
	pw := []byte("correct horse battery staple")
	r := measure(d, func() { argon2.IDKey(pw, salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLength) })
	if r.PerCPUSecond > 0 {
		out.Argon2idMs = 1000 / r.PerCPUSecond
	}
	return out, nil
}

// mean averages two measurements of the same rates (start and end of the
// run).
func (a rawRates) mean(b rawRates) rawRates {
	avg := func(x, y rate) rate {
		return rate{(x.PerCPUSecond + y.PerCPUSecond) / 2, (x.PerWallSecond + y.PerWallSecond) / 2}
	}
	return rawRates{avg(a.ES256Sign, b.ES256Sign), avg(a.RS256Sign, b.RS256Sign), avg(a.ES256Verify, b.ES256Verify),
		(a.Argon2idMs + b.Argon2idMs) / 2}
}
