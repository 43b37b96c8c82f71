-- Second-factor credentials (TOTP, recovery codes, ...). data is the
-- factor's own document with its secrets sealed or hashed.

-- +goose Up
CREATE TABLE mfa_credentials (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type         TEXT NOT NULL,
    label        TEXT NOT NULL DEFAULT '',
    data         BYTEA NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ
);
CREATE INDEX mfa_credentials_user ON mfa_credentials (user_id, created_at);

-- +goose Down
DROP TABLE mfa_credentials;
