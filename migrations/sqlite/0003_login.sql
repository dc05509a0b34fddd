-- Login lifecycle (issue 11): the server secret, devices and their login state,
-- and login QR sessions.

-- Secrets made once per database (hex text), shared by every instance using it.
-- `server` seeds the instance token of tools/getTokenId.
CREATE TABLE server_secrets (
    name        TEXT    PRIMARY KEY,
    secret      TEXT    NOT NULL
);
