// Package redisstore implements storage.Ephemeral on Redis: auth requests,
// codes, sessions, challenges, rate-limit counters and replay caches, each a
// byte value under one key with a TTL.
//
// It talks to Redis through one redis.UniversalClient, so the same code runs
// on a standalone server (one address), behind Sentinel (MasterName set) or
// on a Redis Cluster (several addresses). Every operation touches exactly one
// key, prefixed with Options.Prefix, so every command and script is routed to
// the one node that owns the key's slot.
//
// Single-use values are taken with GETDEL; Create is SET NX PX;
// CompareAndSwap and Incr are small Lua scripts (run with EVALSHA, falling
// back to EVAL) so the read and the write are one atomic step on the server.
// All expiries are in milliseconds (PX, PEXPIRE, PTTL).
package redisstore
