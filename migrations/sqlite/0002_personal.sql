-- The personal module: profile changes, login devices, privacy settings, and the
-- server's own secrets.

-- Append-only: one row per profile field an updateProfile call changed.
CREATE TABLE profile_history (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id      TEXT    NOT NULL REFERENCES accounts(app_id),
    field       TEXT    NOT NULL,
    old_value   TEXT    NOT NULL,
    new_value   TEXT    NOT NULL,
    changed_at  INTEGER NOT NULL
);
CREATE INDEX profile_history_app_id ON profile_history(app_id, id);

-- The devices an account has logged in from (getSafetyInfo); one row per device,
-- its last login time moving forward.
CREATE TABLE login_devices (
    app_id      TEXT    NOT NULL REFERENCES accounts(app_id),
    uuid        TEXT    NOT NULL,
    device_name TEXT    NOT NULL,
    device_type TEXT    NOT NULL,
    last_time   INTEGER NOT NULL,
    PRIMARY KEY (app_id, uuid)
);

-- privacySettings: the last `open` set per option; an option never set is absent.
CREATE TABLE privacy_settings (
    app_id      TEXT    NOT NULL REFERENCES accounts(app_id),
    option_id   INTEGER NOT NULL,
    is_open     BOOLEAN NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (app_id, option_id)
);
