-- The test control plane: operator keys, the contacts and groups an account
-- talks to, its messages, the journal of GeWe calls and the fault rules.
-- The PostgreSQL twin of migrations/sqlite/0006_control_plane.sql.

-- Operator keys made by `gewe operator-key create`, stored only as SHA-256 hashes.
CREATE TABLE operator_keys (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_hash    TEXT    NOT NULL UNIQUE,
    label       TEXT,
    created_at  BIGINT  NOT NULL
);

-- Who an account knows: friends (wxid) and groups (<id>@chatroom), created
-- when a message names them or by a fixture.
CREATE TABLE contacts (
    app_id      TEXT    NOT NULL REFERENCES accounts(app_id),
    wxid        TEXT    NOT NULL,
    nick_name   TEXT    NOT NULL,
    avatar_id   TEXT    NOT NULL REFERENCES avatars(id),
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (app_id, wxid)
);

-- Messages an account received (injected) or sent (message/postText).
CREATE TABLE messages (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app_id      TEXT    NOT NULL REFERENCES accounts(app_id),
    direction   TEXT    NOT NULL,
    peer        TEXT    NOT NULL,
    sender      TEXT    NOT NULL,
    content     TEXT    NOT NULL,
    msg_id      BIGINT  NOT NULL,
    new_msg_id  BIGINT  NOT NULL UNIQUE,
    msg_seq     BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL
);
CREATE INDEX messages_app ON messages(app_id, id);

-- Every GeWe call while the operator API is on, bounded per token.
CREATE TABLE journal (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_id    BIGINT,
    at_ms       BIGINT  NOT NULL,
    route       TEXT    NOT NULL,
    app_id      TEXT,
    request     TEXT    NOT NULL,
    response    TEXT    NOT NULL,
    duration_ms BIGINT  NOT NULL
);
CREATE INDEX journal_token ON journal(token_id, id);

-- "For route R (and appId A) of token T, the next N calls, or a fraction p,
-- answer this / after this delay / by closing the connection."
CREATE TABLE fault_rules (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_id    BIGINT,
    route       TEXT    NOT NULL,
    app_id      TEXT,
    answer      TEXT,
    delay_ms    BIGINT  NOT NULL,
    close       BIGINT  NOT NULL,
    remaining   BIGINT,
    probability DOUBLE PRECISION,
    seed        BIGINT  NOT NULL,
    draws       BIGINT  NOT NULL DEFAULT 0,
    hits        BIGINT  NOT NULL DEFAULT 0,
    expires_at  BIGINT,
    created_at  BIGINT  NOT NULL
);
