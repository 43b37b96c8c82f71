-- Latchkey's initial schema (SQLite). Times are TEXT in the fixed-width UTC
-- form 2006-01-02T15:04:05.000000Z; booleans are 0/1.

-- +goose Up
CREATE TABLE clients (
    id             TEXT PRIMARY KEY,
    data           TEXT NOT NULL,
    jwks           TEXT,
    disabled       INTEGER NOT NULL DEFAULT 0,
    config_managed INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);

CREATE TABLE connectors (
    id             TEXT PRIMARY KEY,
    type           TEXT NOT NULL,
    name           TEXT NOT NULL,
    config         TEXT,
    config_managed INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);

-- username is NULL for a user without one, so the unique index allows any
-- number of those.
CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    username       TEXT UNIQUE,
    email          TEXT NOT NULL DEFAULT '',
    email_verified INTEGER NOT NULL DEFAULT 0,
    name           TEXT NOT NULL DEFAULT '',
    groups_json    TEXT NOT NULL DEFAULT 'null',
    password_hash  TEXT NOT NULL DEFAULT '',
    disabled       INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX users_email ON users (email);

CREATE TABLE keys (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    version    INTEGER NOT NULL,
    data       TEXT,
    updated_at TEXT NOT NULL
);

CREATE TABLE audit_events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    type         TEXT NOT NULL,
    time         TEXT NOT NULL,
    actor        TEXT NOT NULL DEFAULT '',
    user_id      TEXT NOT NULL DEFAULT '',
    client_id    TEXT NOT NULL DEFAULT '',
    connector_id TEXT NOT NULL DEFAULT '',
    ip           TEXT NOT NULL DEFAULT '',
    user_agent   TEXT NOT NULL DEFAULT '',
    request_id   TEXT NOT NULL DEFAULT '',
    data         TEXT
);
CREATE INDEX audit_events_time ON audit_events (time, seq);
CREATE INDEX audit_events_type ON audit_events (type, time);
CREATE INDEX audit_events_user ON audit_events (user_id, time);

CREATE TABLE ephemeral (
    key        TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX ephemeral_expires_at ON ephemeral (expires_at);

-- +goose Down
DROP TABLE ephemeral;
DROP TABLE audit_events;
DROP TABLE keys;
DROP TABLE users;
DROP TABLE connectors;
DROP TABLE clients;
