-- Web console sign-ins (issue 14). The session id lives only in the browser's
-- cookie; the database keeps its SHA-256, like tokens. `principal` is `token`
-- (with `token_id`) or `operator` (no token: sees every token's accounts).
CREATE TABLE console_sessions (
    session_hash TEXT    PRIMARY KEY,
    principal    TEXT    NOT NULL,
    token_id     BIGINT  REFERENCES tokens(id),
    created_at   BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL
);
CREATE INDEX console_sessions_expires_at ON console_sessions(expires_at);
