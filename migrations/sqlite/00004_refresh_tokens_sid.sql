-- Session-bound refresh tokens are revoked when their SSO session ends:
-- find them by the session's sid.

-- +goose Up
CREATE INDEX refresh_tokens_sid ON refresh_tokens (sid);

-- +goose Down
DROP INDEX refresh_tokens_sid;
