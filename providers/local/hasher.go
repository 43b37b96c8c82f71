package local

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/latchkeyid/latchkey/providers"
)

// Params are the argon2id cost parameters.
type Params struct {
	Memory      uint32 // KiB
	Iterations  uint32
	Parallelism uint8
	SaltLength  uint32 // bytes
	KeyLength   uint32 // bytes
}

// DefaultParams is OWASP's recommended argon2id configuration (Password
// Storage Cheat Sheet: m=19456 (19 MiB), t=2, p=1), with a 16-byte salt
// and a 32-byte key.
var DefaultParams = Params{Memory: 19456, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// Bounds the reference implementation puts on the parameters, and ours on
// what Verify accepts from a stored string (a corrupt or hostile row must
// not make one verification allocate gigabytes or run for minutes).
const (
	minSaltLength = 8
	maxSaltLength = 64
	minKeyLength  = 4
	maxKeyLength  = 128

	// defaultMaxVerifyMemory (1 GiB) and defaultMaxVerifyIterations bound
	// the parameters Verify accepts from a stored hash; a Hasher whose own
	// parameters are larger accepts up to its own.
	defaultMaxVerifyMemory     = 1 << 20
	defaultMaxVerifyIterations = 64

	// DefaultQueueWait is how long a caller waits for a hashing slot when
	// NewHasher is given no queue wait.
	DefaultQueueWait = 2 * time.Second
)

// Validate reports whether the reference implementation accepts p.
func (p Params) Validate() error {
	var problems []string
	if p.Iterations < 1 {
		problems = append(problems, "iterations must be at least 1")
	}
	if p.Parallelism < 1 {
		problems = append(problems, "parallelism must be at least 1")
	}
	if p.Memory < 8*uint32(p.Parallelism) {
		problems = append(problems, "memory must be at least 8 KiB per degree of parallelism")
	}
	if p.SaltLength < minSaltLength || p.SaltLength > maxSaltLength {
		problems = append(problems, fmt.Sprintf("salt length must be %d to %d bytes", minSaltLength, maxSaltLength))
	}
	if p.KeyLength < minKeyLength || p.KeyLength > maxKeyLength {
		problems = append(problems, fmt.Sprintf("key length must be %d to %d bytes", minKeyLength, maxKeyLength))
	}
	if len(problems) > 0 {
		return fmt.Errorf("argon2id parameters: %s", strings.Join(problems, "; "))
	}
	return nil
}

// kdf computes an argon2id key; tests replace it to count or block calls.
type kdf func(password, salt []byte, p Params) []byte

func argon2id(password, salt []byte, p Params) []byte {
	return argon2.IDKey(password, salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLength)
}

// Hasher hashes and verifies passwords with argon2id, computing at most
// maxConcurrent hashes at once. It is safe for concurrent use.
type Hasher struct {
	params    Params
	sem       chan struct{}
	queueWait time.Duration
	rand      io.Reader
	kdf       kdf

	maxVerifyMemory     uint32
	maxVerifyIterations uint32
}

// NewHasher returns a Hasher that hashes new passwords under p. A zero
// field of p takes its value from DefaultParams; maxConcurrent <= 0 means
// runtime.GOMAXPROCS(0) (the CPUs this process may use, container limits
// included); queueWait <= 0 means DefaultQueueWait; random nil means
// crypto/rand. It panics if p (after defaults) fails Validate: the config
// loader validates the parameters before this is called.
func NewHasher(p Params, maxConcurrent int, queueWait time.Duration, random io.Reader) *Hasher {
	p = p.withDefaults()
	if err := p.Validate(); err != nil {
		panic("local.NewHasher: " + err.Error())
	}
	if maxConcurrent <= 0 {
		maxConcurrent = runtime.GOMAXPROCS(0)
	}
	if queueWait <= 0 {
		queueWait = DefaultQueueWait
	}
	if random == nil {
		random = rand.Reader
	}
	return &Hasher{
		params:              p,
		sem:                 make(chan struct{}, maxConcurrent),
		queueWait:           queueWait,
		rand:                random,
		kdf:                 argon2id,
		maxVerifyMemory:     max(defaultMaxVerifyMemory, p.Memory),
		maxVerifyIterations: max(defaultMaxVerifyIterations, p.Iterations),
	}
}

func (p Params) withDefaults() Params {
	d := DefaultParams
	if p.Memory == 0 {
		p.Memory = d.Memory
	}
	if p.Iterations == 0 {
		p.Iterations = d.Iterations
	}
	if p.Parallelism == 0 {
		p.Parallelism = d.Parallelism
	}
	if p.SaltLength == 0 {
		p.SaltLength = d.SaltLength
	}
	if p.KeyLength == 0 {
		p.KeyLength = d.KeyLength
	}
	return p
}

// Params returns the parameters new hashes are made with.
func (h *Hasher) Params() Params { return h.params }

// Hash returns the PHC string of password under a fresh random salt. It
// waits for a hashing slot: providers.ErrBusy when none frees up within the
// queue wait, the context's error when ctx ends first.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, h.params.SaltLength)
	if _, err := io.ReadFull(h.rand, salt); err != nil {
		return "", fmt.Errorf("local: read salt: %w", err)
	}
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	return h.hashWithSalt(password, salt), nil
}

// hashWithSalt computes a PHC string without taking a slot (for the dummy
// hash made once in New).
func (h *Hasher) hashWithSalt(password string, salt []byte) string {
	key := h.kdf([]byte(password), salt, h.params)
	return encode(h.params, salt, key)
}

// Verify reports whether password matches the PHC string encoded, under the
// parameters written in encoded. A malformed string is an error (which
// never quotes the string); otherwise it waits for a slot as Hash does. The
// comparison takes constant time.
func (h *Hasher) Verify(ctx context.Context, encoded, password string) (bool, error) {
	d, err := decode(encoded)
	if err != nil {
		return false, err
	}
	if d.params.Memory > h.maxVerifyMemory || d.params.Iterations > h.maxVerifyIterations {
		return false, fmt.Errorf("local: %w: cost parameters above the accepted maximum", ErrMalformedHash)
	}
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	key := h.kdf([]byte(password), d.salt, d.params)
	return subtle.ConstantTimeCompare(key, d.key) == 1, nil
}

// NeedsRehash reports whether encoded was made under other parameters than
// the Hasher's current ones (so it should be replaced after the next
// successful login). A malformed string needs rehashing too.
func (h *Hasher) NeedsRehash(encoded string) bool {
	d, err := decode(encoded)
	return err != nil || d.params != h.params
}

// acquire takes a hashing slot, waiting up to the queue wait.
func (h *Hasher) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("local: wait for a hashing slot: %w", err)
	}
	select {
	case h.sem <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(h.queueWait)
	defer t.Stop()
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("local: wait for a hashing slot: %w", ctx.Err())
	case <-t.C:
		return fmt.Errorf("local: no hashing slot free after %s: %w", h.queueWait, providers.ErrBusy)
	}
}

func (h *Hasher) release() { <-h.sem }

// ErrMalformedHash is wrapped by the error Verify returns for a string that
// is not an argon2id PHC string it accepts.
var ErrMalformedHash = errors.New("malformed password hash")

var b64 = base64.RawStdEncoding.Strict()

func encode(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Iterations, p.Parallelism,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

type decoded struct {
	params    Params
	salt, key []byte
}

// maxEncodedLength is more than any string within the salt and key bounds.
const maxEncodedLength = 512

// decode parses "$argon2id$v=19$m=M,t=T,p=P$SALT$KEY" strictly: the
// parameters in this order, decimal without leading zeros, raw standard
// base64 with zero trailing bits. Errors wrap ErrMalformedHash and say which
// part is wrong, never quoting the input.
func decode(encoded string) (decoded, error) {
	bad := func(what string) (decoded, error) {
		return decoded{}, fmt.Errorf("local: %w: %s", ErrMalformedHash, what)
	}
	if len(encoded) > maxEncodedLength {
		return bad("too long")
	}
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" {
		return bad("want $argon2id$v=19$m=..,t=..,p=..$salt$hash")
	}
	if parts[1] != "argon2id" {
		return bad("not argon2id")
	}
	v, ok := strings.CutPrefix(parts[2], "v=")
	if !ok {
		return bad("missing version")
	}
	if n, err := parseDecimal(v); err != nil || n != argon2.Version {
		return bad("unsupported version")
	}
	var p Params
	fields := strings.Split(parts[3], ",")
	if len(fields) != 3 {
		return bad("want parameters m,t,p")
	}
	for i, name := range []string{"m", "t", "p"} {
		val, ok := strings.CutPrefix(fields[i], name+"=")
		if !ok {
			return bad("want parameters m,t,p")
		}
		n, err := parseDecimal(val)
		if err != nil {
			return bad("parameter " + name + " is not a number")
		}
		switch name {
		case "m":
			p.Memory = n
		case "t":
			p.Iterations = n
		case "p":
			if n > 255 {
				return bad("parallelism above 255")
			}
			p.Parallelism = uint8(n)
		}
	}
	// encoding/base64 skips \r and \n; a stored hash has none.
	if strings.ContainsAny(parts[4]+parts[5], "\r\n") {
		return bad("line break in salt or hash")
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return bad("salt is not base64")
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil {
		return bad("hash is not base64")
	}
	p.SaltLength, p.KeyLength = uint32(len(salt)), uint32(len(key))
	if err := p.Validate(); err != nil {
		return decoded{}, fmt.Errorf("local: %w: %w", ErrMalformedHash, err)
	}
	return decoded{params: p, salt: salt, key: key}, nil
}

// parseDecimal parses a uint32 written in ASCII digits without a sign or
// leading zeros.
func parseDecimal(s string) (uint32, error) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, errors.New("not canonical")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("not a digit")
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err
}
