-- The test control plane: operator keys, the contacts and groups an account
-- talks to, its messages, the journal of GeWe calls and the fault rules.
-- The PostgreSQL twin has the same tables.

-- Operator keys made by `gewe operator-key create`, stored only as SHA-256 hashes.
CREATE TABLE operator_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    key_hash    TEXT    NOT NULL UNIQUE,
    label       TEXT,
    created_at  INTEGER NOT NULL
);

-- Who an account knows: friends (wxid) and groups (<id>@chatroom), created
-- when a message names them or by a fixture.
CREATE TABLE contacts (
    app_id      TEXT    NOT NULL REFERENCES accounts(app_id),
    wxid        TEXT    NOT NULL,
    nick_name   TEXT    NOT NULL,
    avatar_id   TEXT    NOT NULL REFERENCES avatars(id),
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (app_id, wxid)
);

-- Messages an account received (injected) or sent (message/postText).
CREATE TABLE messages (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id      TEXT    NOT NULL REFERENCES accounts(app_id),
    direction   TEXT    NOT NULL,
    peer        TEXT    NOT NULL,
    sender      TEXT    NOT NULL,
    content     TEXT    NOT NULL,
    msg_id      INTEGER NOT NULL,
    new_msg_id  INTEGER NOT NULL UNIQUE,
    msg_seq     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX messages_app ON messages(app_id, id);

-- Every GeWe call while the operator API is on, bounded per token.
CREATE TABLE journal (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    token_id    INTEGER,
    at_ms       INTEGER NOT NULL,
    route       TEXT    NOT NULL,
    app_id      TEXT,
    request     TEXT    NOT NULL,
    response    TEXT    NOT NULL,
    duration_ms INTEGER NOT NULL
);
CREATE INDEX journal_token ON journal(token_id, id);

-- "For route R (and appId A) of token T, the next N calls, or a fraction p,
-- answer this / after this delay / by closing the connection."
CREATE TABLE fault_rules (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    token_id    INTEGER,
    route       TEXT    NOT NULL,
    app_id      TEXT,
    answer      TEXT,
    delay_ms    INTEGER NOT NULL,
    close       INTEGER NOT NULL,
    remaining   INTEGER,
    probability REAL,
    seed        INTEGER NOT NULL,
    draws       INTEGER NOT NULL DEFAULT 0,
    hits        INTEGER NOT NULL DEFAULT 0,
    expires_at  INTEGER,
    created_at  INTEGER NOT NULL
);
