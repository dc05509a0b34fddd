-- The PostgreSQL twin of migrations/sqlite/0004_callbacks.sql: same tables,
-- same meaning. Integers are BIGINT so both engines hand the code i64.

CREATE TABLE callbacks (
    token_id    BIGINT  PRIMARY KEY REFERENCES tokens(id),
    url         TEXT    NOT NULL,
    updated_at  BIGINT  NOT NULL
);

-- One row per event. `payload` holds the exact bytes every attempt sends.
-- Pending rows of one app_id are delivered in id order; a claim sets
-- lease_holder/lease_until, and a lease that runs out makes the row claimable
-- again. Claims lock with FOR UPDATE SKIP LOCKED, so instances never wait on
-- each other's rows.
CREATE TABLE outbox (
    id              BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_id        BIGINT  NOT NULL REFERENCES tokens(id),
    app_id          TEXT    NOT NULL,
    type_name       TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'pending',
    attempts        BIGINT  NOT NULL DEFAULT 0,
    created_at      BIGINT  NOT NULL,
    age_from        BIGINT  NOT NULL,
    next_attempt_at BIGINT  NOT NULL,
    lease_holder    TEXT,
    lease_until     BIGINT,
    last_error      TEXT,
    finished_at     BIGINT
);
CREATE INDEX outbox_pending ON outbox(state, app_id, id);
CREATE INDEX outbox_token ON outbox(token_id, id);
CREATE INDEX outbox_finished ON outbox(state, finished_at);
