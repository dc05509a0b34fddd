-- The PostgreSQL twin of migrations/sqlite/0003_login.sql: same tables, same columns.

-- Secrets made once per database (hex text), shared by every instance using it.
-- `server` seeds the instance token of tools/getTokenId.
CREATE TABLE server_secrets (
    name        TEXT    PRIMARY KEY,
    secret      TEXT    NOT NULL
);
