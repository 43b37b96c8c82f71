-- Latchkey's initial schema (PostgreSQL). Raw JSON the caller owns (jwks,
-- connector config, keys data) is json, which keeps the text byte for byte;
-- documents the store writes itself are jsonb.

-- +goose Up
CREATE TABLE clients (
    id             TEXT PRIMARY KEY,
    data           JSONB NOT NULL,
    jwks           JSON,
    disabled       BOOLEAN NOT NULL DEFAULT FALSE,
    config_managed BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);

CREATE TABLE connectors (
    id             TEXT PRIMARY KEY,
    type           TEXT NOT NULL,
    name           TEXT NOT NULL,
    config         JSON,
    config_managed BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);

-- username is NULL for a user without one, so the unique constraint allows
-- any number of those.
CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    username       TEXT UNIQUE,
    email          TEXT NOT NULL DEFAULT '',
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    name           TEXT NOT NULL DEFAULT '',
    groups_json    JSONB NOT NULL DEFAULT 'null',
    password_hash  TEXT NOT NULL DEFAULT '',
    disabled       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX users_email ON users (email);

CREATE TABLE keys (
    id         SMALLINT PRIMARY KEY CHECK (id = 1),
    version    BIGINT NOT NULL,
    data       JSON,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE audit_events (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    type         TEXT NOT NULL,
    time         TIMESTAMPTZ NOT NULL,
    actor        TEXT NOT NULL DEFAULT '',
    user_id      TEXT NOT NULL DEFAULT '',
    client_id    TEXT NOT NULL DEFAULT '',
    connector_id TEXT NOT NULL DEFAULT '',
    ip           TEXT NOT NULL DEFAULT '',
    user_agent   TEXT NOT NULL DEFAULT '',
    request_id   TEXT NOT NULL DEFAULT '',
    data         JSONB
);
CREATE INDEX audit_events_time ON audit_events (time, seq);
CREATE INDEX audit_events_type ON audit_events (type, time);
CREATE INDEX audit_events_user ON audit_events (user_id, time);

CREATE TABLE ephemeral (
    key        TEXT PRIMARY KEY,
    value      BYTEA NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX ephemeral_expires_at ON ephemeral (expires_at);

-- +goose Down
DROP TABLE ephemeral;
DROP TABLE audit_events;
DROP TABLE keys;
DROP TABLE users;
DROP TABLE connectors;
DROP TABLE clients;
