-- The PostgreSQL twin of migrations/sqlite/0001_init.sql: same tables, same
-- meaning. Integers are BIGINT so both engines hand the code i64.

-- Tokens are stored only as SHA-256 hashes; the plaintext is shown once, when issued.
CREATE TABLE tokens (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash  TEXT    NOT NULL UNIQUE,
    label       TEXT,
    created_at  BIGINT  NOT NULL
);

-- One avatar = one content-addressed set of JPEG variants in blob storage.
CREATE TABLE avatars (
    id          TEXT    PRIMARY KEY,
    side        BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL
);

CREATE TABLE accounts (
    app_id      TEXT    PRIMARY KEY,
    token_id    BIGINT  NOT NULL REFERENCES tokens(id),
    wxid        TEXT    NOT NULL UNIQUE,
    nick_name   TEXT    NOT NULL,
    alias       TEXT    NOT NULL,
    mobile      TEXT    NOT NULL,
    uin         BIGINT  NOT NULL,
    sex         BIGINT  NOT NULL,
    province    TEXT    NOT NULL,
    city        TEXT    NOT NULL,
    signature   TEXT    NOT NULL,
    country     TEXT    NOT NULL,
    reg_country TEXT    NOT NULL,
    sns_bg_img  TEXT    NOT NULL,
    avatar_id   TEXT    NOT NULL REFERENCES avatars(id),
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
CREATE INDEX accounts_token_id ON accounts(token_id);

-- Append-only: every avatar an account has had, oldest first. Rows of one account
-- are appended while its accounts row is locked, so id order is commit order.
CREATE TABLE avatar_history (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app_id      TEXT    NOT NULL REFERENCES accounts(app_id),
    avatar_id   TEXT    NOT NULL REFERENCES avatars(id),
    source_url  TEXT,
    changed_at  BIGINT  NOT NULL
);
CREATE INDEX avatar_history_app_id ON avatar_history(app_id, id);
