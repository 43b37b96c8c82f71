-- Refresh tokens, stored as the hex SHA-256 of the token and grouped in
-- rotation families. rotated_at/successor_hash are set together by the
-- rotation compare-and-swap; revoked_at by a family revocation.

-- +goose Up
CREATE TABLE refresh_tokens (
    hash              TEXT PRIMARY KEY,
    family_id         TEXT NOT NULL,
    parent_hash       TEXT NOT NULL DEFAULT '',
    client_id         TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id           TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scopes_json       TEXT NOT NULL,
    sid               TEXT NOT NULL DEFAULT '',
    auth_time         TEXT,
    amr_json          TEXT NOT NULL,
    claims            TEXT,
    issued_at         TEXT NOT NULL,
    family_created_at TEXT NOT NULL,
    rotated_at        TEXT,
    successor_hash    TEXT NOT NULL DEFAULT '',
    revoked_at        TEXT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_client ON refresh_tokens (client_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

-- +goose Down
DROP TABLE refresh_tokens;
