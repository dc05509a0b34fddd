-- Callbacks: one URL per token (setCallback), and the transactional outbox of
-- events waiting to be POSTed there. The PostgreSQL twin has the same tables.

CREATE TABLE callbacks (
    token_id    INTEGER PRIMARY KEY REFERENCES tokens(id),
    url         TEXT    NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- One row per event. `payload` holds the exact bytes every attempt sends.
-- Pending rows of one app_id are delivered in id order; a claim sets
-- lease_holder/lease_until, and a lease that runs out makes the row claimable again.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    token_id        INTEGER NOT NULL REFERENCES tokens(id),
    app_id          TEXT    NOT NULL,
    type_name       TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    age_from        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    lease_holder    TEXT,
    lease_until     INTEGER,
    last_error      TEXT,
    finished_at     INTEGER
);
CREATE INDEX outbox_pending ON outbox(state, app_id, id);
CREATE INDEX outbox_token ON outbox(token_id, id);
CREATE INDEX outbox_finished ON outbox(state, finished_at);
