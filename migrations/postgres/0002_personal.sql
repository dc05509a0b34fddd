-- The PostgreSQL twin of migrations/sqlite/0002_personal.sql: same tables, same
-- meaning. Integers are BIGINT so both engines hand the code i64.

-- Append-only: one row per profile field an updateProfile call changed.
CREATE TABLE profile_history (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app_id      TEXT    NOT NULL REFERENCES accounts(app_id),
    field       TEXT    NOT NULL,
    old_value   TEXT    NOT NULL,
    new_value   TEXT    NOT NULL,
    changed_at  BIGINT  NOT NULL
);
CREATE INDEX profile_history_app_id ON profile_history(app_id, id);

-- The devices an account has logged in from (getSafetyInfo); one row per device,
-- its last login time moving forward.
CREATE TABLE login_devices (
    app_id      TEXT    NOT NULL REFERENCES accounts(app_id),
    uuid        TEXT    NOT NULL,
    device_name TEXT    NOT NULL,
    device_type TEXT    NOT NULL,
    last_time   BIGINT  NOT NULL,
    PRIMARY KEY (app_id, uuid)
);

-- privacySettings: the last `open` set per option; an option never set is absent.
CREATE TABLE privacy_settings (
    app_id      TEXT    NOT NULL REFERENCES accounts(app_id),
    option_id   BIGINT  NOT NULL,
    is_open     BOOLEAN NOT NULL,
    updated_at  BIGINT  NOT NULL,
    PRIMARY KEY (app_id, option_id)
);
