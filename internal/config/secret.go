package config

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
)

// redacted is what every secret prints as.
const redacted = "REDACTED"

// Secret is a string from the configuration that must not be printed by
// accident: fmt (every verb), encoding/json, encoding.TextMarshaler, yaml.v3
// and log/slog all show REDACTED. An empty Secret shows as empty, since
// whether a secret is set is not itself secret. Reveal returns the value.
type Secret string

// Reveal returns the secret value. Call it only where the value is used.
func (s Secret) Reveal() string { return string(s) }

func (s Secret) shown() string {
	if s == "" {
		return ""
	}
	return redacted
}

// String returns REDACTED (or "" for an empty secret).
func (s Secret) String() string { return s.shown() }

// GoString returns REDACTED (or "" for an empty secret).
func (s Secret) GoString() string { return s.shown() }

// Format prints REDACTED for every verb, so that %x or %d cannot reveal it.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, s.shown()) }

// MarshalJSON encodes the secret as the JSON string "REDACTED".
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.shown()) }

// MarshalText returns REDACTED.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.shown()), nil }

// MarshalYAML returns REDACTED (yaml.v3's Marshaler).
func (s Secret) MarshalYAML() (any, error) { return s.shown(), nil }

// LogValue makes log/slog print REDACTED.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.shown()) }

// SecretBytes is binary key material from the configuration (written there
// in base64). It prints, encodes and logs as REDACTED, like Secret.
type SecretBytes []byte

// Reveal returns a copy of the bytes.
func (b SecretBytes) Reveal() []byte { return append([]byte(nil), b...) }

func (b SecretBytes) shown() string {
	if len(b) == 0 {
		return ""
	}
	return redacted
}

// String returns REDACTED (or "" when empty).
func (b SecretBytes) String() string { return b.shown() }

// GoString returns REDACTED (or "" when empty).
func (b SecretBytes) GoString() string { return b.shown() }

// Format prints REDACTED for every verb.
func (b SecretBytes) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, b.shown()) }

// MarshalJSON encodes the bytes as the JSON string "REDACTED".
func (b SecretBytes) MarshalJSON() ([]byte, error) { return json.Marshal(b.shown()) }

// MarshalText returns REDACTED.
func (b SecretBytes) MarshalText() ([]byte, error) { return []byte(b.shown()), nil }

// MarshalYAML returns REDACTED.
func (b SecretBytes) MarshalYAML() (any, error) { return b.shown(), nil }

// LogValue makes log/slog print REDACTED.
func (b SecretBytes) LogValue() slog.Value { return slog.StringValue(b.shown()) }

// ConnectorSettings is a connector's type-specific configuration: the
// `config` mapping of a connector entry, kept as JSON because the connector
// type, not this package, knows its schema. It usually holds an upstream
// client secret, so it prints, encodes and logs as REDACTED; JSON and Map
// give the content.
type ConnectorSettings struct {
	raw json.RawMessage
}

// JSON returns a copy of the configuration as a JSON object.
func (c ConnectorSettings) JSON() json.RawMessage {
	if len(c.raw) == 0 {
		return json.RawMessage("{}")
	}
	return append(json.RawMessage(nil), c.raw...)
}

// Map returns the configuration decoded into a fresh map (numbers as
// float64, as encoding/json decodes them).
func (c ConnectorSettings) Map() map[string]any {
	m := map[string]any{}
	// The bytes were produced by json.Marshal of a map, so they decode.
	_ = json.Unmarshal(c.JSON(), &m)
	return m
}

// String returns REDACTED.
func (c ConnectorSettings) String() string { return redacted }

// GoString returns REDACTED.
func (c ConnectorSettings) GoString() string { return redacted }

// Format prints REDACTED for every verb.
func (c ConnectorSettings) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// MarshalJSON encodes the settings as the JSON string "REDACTED".
func (c ConnectorSettings) MarshalJSON() ([]byte, error) { return json.Marshal(redacted) }

// MarshalText returns REDACTED.
func (c ConnectorSettings) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// MarshalYAML returns REDACTED.
func (c ConnectorSettings) MarshalYAML() (any, error) { return redacted, nil }

// LogValue makes log/slog print REDACTED.
func (c ConnectorSettings) LogValue() slog.Value { return slog.StringValue(redacted) }

// Format prints the section with its DSN redacted. Postgres and Redis
// implement fmt.Formatter because Config holds them by pointer, and fmt
// prints a pointer under a verb it does not support (%s, %q, ...) without
// consulting the pointee's fields' methods.
func (p Postgres) Format(f fmt.State, verb rune) {
	type plain Postgres // no methods: fmt prints the fields
	_, _ = fmt.Fprintf(f, fmt.FormatString(f, verb), plain(p))
}

// Format prints the section with its password redacted (see
// Postgres.Format).
func (r Redis) Format(f fmt.State, verb rune) {
	type plain Redis
	_, _ = fmt.Fprintf(f, fmt.FormatString(f, verb), plain(r))
}
