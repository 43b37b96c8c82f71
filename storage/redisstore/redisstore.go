package redisstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/latchkeyid/latchkey/storage"
)

var _ storage.Ephemeral = (*Store)(nil)

// defaultPingTimeout bounds the ping in Open when ctx has no deadline.
const defaultPingTimeout = 5 * time.Second

// Options says how to reach Redis.
type Options struct {
	// Addrs are host:port addresses. One address is a standalone server;
	// with MasterName they are the Sentinels; several addresses without
	// MasterName are Cluster seed nodes.
	Addrs []string
	// Username and Password authenticate to Redis (ACL user or
	// requirepass). With Sentinel they apply to the master, not to the
	// Sentinels.
	Username, Password string
	// DB selects a database; standalone and Sentinel only (a Cluster has
	// only database 0).
	DB int
	// TLS, when set, makes every connection use TLS with this config.
	TLS *tls.Config
	// MasterName is the Sentinel master name; setting it selects Sentinel
	// (failover) mode.
	MasterName string
	// Prefix is put in front of every key, e.g. "latchkey:".
	Prefix string
	// Logger receives connection events; nil discards them.
	Logger *slog.Logger
}

// Store is a storage.Ephemeral on Redis. It is safe for concurrent use.
type Store struct {
	c      redis.UniversalClient
	prefix string
	owned  bool
	log    *slog.Logger
}

// Open builds a client for o (standalone, Sentinel or Cluster, see
// Options.Addrs) and pings it. An unreachable server is an error naming the
// addresses. The Store owns the client: Close closes it.
func Open(ctx context.Context, o Options) (*Store, error) {
	if len(o.Addrs) == 0 {
		return nil, errors.New("redisstore: open: no Redis address configured")
	}
	addrs := strings.Join(o.Addrs, ",")
	mode := "standalone"
	switch {
	case o.MasterName != "":
		mode = "sentinel"
	case len(o.Addrs) > 1:
		mode = "cluster"
		if o.DB != 0 {
			return nil, fmt.Errorf("redisstore: open Redis Cluster at %s: db %d is not supported (a cluster has only db 0)", addrs, o.DB)
		}
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:      o.Addrs,
		Username:   o.Username,
		Password:   o.Password,
		DB:         o.DB,
		TLSConfig:  o.TLS,
		MasterName: o.MasterName,
		// go-redis retries a failed dial 5 times inside each of a
		// command's 4 attempts; 2 is enough for a blip and lets a
		// request fail in well under a second when Redis is down.
		DialerRetries: 2,
	})
	pctx := ctx
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		pctx, cancel = context.WithTimeout(ctx, defaultPingTimeout)
		defer cancel()
	}
	if err := c.Ping(pctx).Err(); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("redisstore: ping Redis (%s) at %s: %w", mode, addrs, scrub(err, o.Password))
	}
	log.InfoContext(ctx, "connected to Redis", "mode", mode, "addrs", addrs, "prefix", o.Prefix)
	return &Store{c: c, prefix: o.Prefix, owned: true, log: log}, nil
}

// scrub returns err unless its text contains the password, in which case it
// returns a plain error with the password replaced (losing the chain, which
// is the price of never printing a secret).
func scrub(err error, password string) error {
	if password == "" || !strings.Contains(err.Error(), password) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), password, "[redacted]"))
}

// New wraps a client the caller owns; Close leaves it open. Every key is
// prefix+key.
func New(c redis.UniversalClient, prefix string) *Store {
	return &Store{c: c, prefix: prefix, log: slog.New(slog.DiscardHandler)}
}

func (s *Store) key(k string) string { return s.prefix + k }

// millis rounds ttl up to whole milliseconds (Redis's resolution), at least 1.
func millis(ttl time.Duration) int64 {
	ms := int64((ttl + time.Millisecond - 1) / time.Millisecond)
	if ms < 1 {
		ms = 1
	}
	return ms
}

func checkTTL(op string, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("redisstore: %s: ttl must be > 0, got %s", op, ttl)
	}
	return nil
}

// Put implements storage.Ephemeral.
func (s *Store) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkTTL("put", ttl); err != nil {
		return err
	}
	if err := s.c.Set(ctx, s.key(key), value, time.Duration(millis(ttl))*time.Millisecond).Err(); err != nil {
		return fmt.Errorf("redisstore: put: %w", err)
	}
	return nil
}

// Create implements storage.Ephemeral with SET NX PX.
func (s *Store) Create(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkTTL("create", ttl); err != nil {
		return err
	}
	ok, err := s.c.SetNX(ctx, s.key(key), value, time.Duration(millis(ttl))*time.Millisecond).Result()
	if err != nil {
		return fmt.Errorf("redisstore: create: %w", err)
	}
	if !ok {
		return fmt.Errorf("redisstore: create: %w", storage.ErrConflict)
	}
	return nil
}

// Get implements storage.Ephemeral.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := s.c.Get(ctx, s.key(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redisstore: get: %w", storage.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("redisstore: get: %w", err)
	}
	return b, nil
}

// Take implements storage.Ephemeral with GETDEL (Redis >= 6.2).
func (s *Store) Take(ctx context.Context, key string) ([]byte, error) {
	b, err := s.c.GetDel(ctx, s.key(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redisstore: take: %w", storage.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("redisstore: take: %w", err)
	}
	return b, nil
}

// casScript compares the value at KEYS[1] with ARGV[1] (byte for byte) and,
// if equal, sets it to ARGV[2] with PX ARGV[3], or KEEPTTL when ARGV[3] is
// "0". It returns -1 when the key is missing, 0 when it holds another value
// and 1 when it was swapped.
var casScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then return -1 end
if cur ~= ARGV[1] then return 0 end
if ARGV[3] == '0' then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
`)

// CompareAndSwap implements storage.Ephemeral with a Lua script.
func (s *Store) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) error {
	if ttl < 0 {
		return fmt.Errorf("redisstore: compare-and-swap: ttl must be >= 0, got %s", ttl)
	}
	var px int64
	if ttl > 0 {
		px = millis(ttl)
	}
	if old == nil {
		old = []byte{}
	}
	if value == nil {
		value = []byte{}
	}
	n, err := casScript.Run(ctx, s.c, []string{s.key(key)}, old, value, px).Int64()
	if err != nil {
		return fmt.Errorf("redisstore: compare-and-swap: %w", err)
	}
	switch n {
	case 1:
		return nil
	case 0:
		return fmt.Errorf("redisstore: compare-and-swap: %w", storage.ErrConflict)
	case -1:
		return fmt.Errorf("redisstore: compare-and-swap: %w", storage.ErrNotFound)
	default:
		return fmt.Errorf("redisstore: compare-and-swap: unexpected script result %d", n)
	}
}

// Delete implements storage.Ephemeral.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.c.Del(ctx, s.key(key)).Err(); err != nil {
		return fmt.Errorf("redisstore: delete: %w", err)
	}
	return nil
}

// incrScript increments KEYS[1] and gives it expiry ARGV[1] ms when it has
// none: on creation (result 1), and also if a counter somehow lost its
// expiry, so a counter can never live forever. Later increments keep the
// first expiry (a fixed window).
var incrScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n
`)

// incrByScript is incrScript adding ARGV[2].
var incrByScript = redis.NewScript(`
local n = redis.call('INCRBY', KEYS[1], ARGV[2])
if n == tonumber(ARGV[2]) or redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n
`)

var _ storage.CounterAdder = (*Store)(nil)

// IncrBy implements storage.CounterAdder with a Lua script.
func (s *Store) IncrBy(ctx context.Context, key string, n int64, ttl time.Duration) (int64, error) {
	if err := checkTTL("incr", ttl); err != nil {
		return 0, err
	}
	if n < 1 {
		return 0, fmt.Errorf("redisstore: incr: add %d: want at least 1", n)
	}
	if n == 1 {
		return s.Incr(ctx, key, ttl)
	}
	total, err := incrByScript.Run(ctx, s.c, []string{s.key(key)}, millis(ttl), n).Int64()
	if err != nil {
		return 0, fmt.Errorf("redisstore: incr: %w", err)
	}
	return total, nil
}

// Incr implements storage.Ephemeral with a Lua script.
func (s *Store) Incr(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	if err := checkTTL("incr", ttl); err != nil {
		return 0, err
	}
	n, err := incrScript.Run(ctx, s.c, []string{s.key(key)}, millis(ttl)).Int64()
	if err != nil {
		return 0, fmt.Errorf("redisstore: incr: %w", err)
	}
	return n, nil
}

// TTL implements storage.Ephemeral with PTTL. A key without an expiry (only
// possible if something other than this store wrote it) is an error.
func (s *Store) TTL(ctx context.Context, key string) (time.Duration, error) {
	d, err := s.c.PTTL(ctx, s.key(key)).Result()
	if err != nil {
		return 0, fmt.Errorf("redisstore: ttl: %w", err)
	}
	// go-redis passes PTTL's -2 (no such key) and -1 (no expiry) through
	// as those many nanoseconds; real values are whole milliseconds.
	switch {
	case d == -2:
		return 0, fmt.Errorf("redisstore: ttl: %w", storage.ErrNotFound)
	case d == -1:
		return 0, errors.New("redisstore: ttl: key has no expiry")
	case d < 0:
		return 0, fmt.Errorf("redisstore: ttl: unexpected PTTL reply %s", d)
	case d == 0:
		// Expires within the current millisecond; still present.
		return time.Nanosecond, nil
	}
	return d, nil
}

// Ping implements storage.Ephemeral.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redisstore: ping: %w", err)
	}
	return nil
}

// Close closes the client if Open created it; a client passed to New is
// left to its owner.
func (s *Store) Close() error {
	if !s.owned {
		return nil
	}
	if err := s.c.Close(); err != nil {
		return fmt.Errorf("redisstore: close: %w", err)
	}
	return nil
}
