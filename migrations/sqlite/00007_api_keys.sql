-- Admin API keys: the key is never stored, only its SHA-256 (hash) and
-- its short public prefix. scopes is a JSON array. Connectors can be
-- disabled (kept, but out of the login) from the admin API and console.

-- +goose Up
CREATE TABLE api_keys (
    prefix       TEXT PRIMARY KEY,
    hash         TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL DEFAULT '',
    scopes_json  TEXT NOT NULL,
    created_by   TEXT NOT NULL DEFAULT '',
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    last_used_at TEXT,
    revoked_at   TEXT,
    replaced_by  TEXT NOT NULL DEFAULT ''
);
ALTER TABLE connectors ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE connectors DROP COLUMN disabled;
DROP TABLE api_keys;
