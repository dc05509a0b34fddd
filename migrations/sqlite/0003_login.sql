-- Login lifecycle (issue 11): the server secret, devices and their login state,
-- and login QR sessions.

-- Secrets made once per database (hex text), shared by every instance using it.
-- `server` seeds the instance token of tools/getTokenId.
CREATE TABLE server_secrets (
    name        TEXT    PRIMARY KEY,
    secret      TEXT    NOT NULL
);

-- Devices beyond accounts: a device made by getLoginQrCode has no account until a
-- login completes (wxid NULL), and every device that went through a login, a
-- logout or a kick has its state here. An account with no row here is a device
-- bound to its wxid and online (how `gewe account create` makes them).
CREATE TABLE devices (
    app_id      TEXT    PRIMARY KEY,
    token_id    INTEGER NOT NULL REFERENCES tokens(id),
    wxid        TEXT,
    login_state TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX devices_token_id ON devices(token_id);

-- Login QRs (and dialogLogin prompts), by uuid. The scanner columns hold the
-- account the emulated phone presents once scanned.
CREATE TABLE login_sessions (
    uuid              TEXT    PRIMARY KEY,
    app_id            TEXT    NOT NULL,
    token_id          INTEGER NOT NULL REFERENCES tokens(id),
    device_type       TEXT    NOT NULL,
    stage             TEXT    NOT NULL,
    scan_wxid         TEXT,
    scan_nick_name    TEXT,
    scan_avatar_id    TEXT,
    scan_avatar_side  INTEGER,
    captcha           TEXT,
    created_at        INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL,
    completed_at      INTEGER
);
CREATE INDEX login_sessions_app_id ON login_sessions(app_id);
