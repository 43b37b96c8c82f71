// Package config loads Latchkey's configuration file: YAML, read once at
// start, validated whole.
//
// Data flows through it in one direction:
//
//  1. The YAML text is parsed into a yaml.Node tree (syntax errors carry a
//     line number).
//  2. Every string value in the tree is expanded: ${ENV_VAR} references are
//     replaced by the environment variable (also inside a larger string),
//     $${ is a literal ${, and a value that starts with file: is replaced by
//     the contents of that file (relative paths are relative to the config
//     file's directory), with one trailing newline trimmed.
//  3. The tree is decoded into Config by a small reflection walker of our
//     own rather than yaml.v3's Decode, so that every unknown key, type
//     error and duplicate key is reported with its key path and decoding
//     goes on after the first one.
//  4. applyDefaults fills every key the file did not set (the one place
//     defaults live); relative file paths are resolved against the config
//     file's directory.
//  5. validate checks the whole Config, including cross-references (a
//     client's allowed_connectors, id_token_signed_response_alg against
//     keys.algorithms) and, through WithConnectorTypes, the type-specific
//     connector configuration.
//
// All problems from all steps come back together as one *Problems error,
// one "path: message" line each, in file order. Secret values (client
// secrets, the PostgreSQL DSN, the Redis password, encryption keys,
// connector configuration) are typed so that printing, logging or
// JSON-encoding a Config shows REDACTED instead; no problem message quotes a
// secret or a value that came from an ${ENV} or file: reference.
//
// Only cmd imports this package. It turns ClientConfig and ConnectorConfig
// into storage records with their ToStorage methods.
package config
