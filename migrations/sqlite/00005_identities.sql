-- Upstream identities linked to users: (connector_id, subject) names one
-- user. connector_data is the connector's own sealed document (an
-- upstream refresh token). No foreign key to connectors: a connector
-- deleted and re-created keeps its links.

-- +goose Up
CREATE TABLE identities (
    connector_id   TEXT NOT NULL,
    subject        TEXT NOT NULL,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email          TEXT NOT NULL DEFAULT '',
    connector_data BLOB,
    created_at     TEXT NOT NULL,
    last_login_at  TEXT,
    PRIMARY KEY (connector_id, subject)
);
CREATE INDEX identities_user ON identities (user_id, created_at);

-- +goose Down
DROP TABLE identities;
