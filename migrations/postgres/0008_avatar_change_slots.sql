-- The PostgreSQL twin of migrations/sqlite/0008_avatar_change_slots.sql.
-- Avatar changes reserved but not committed yet, for the per-account change
-- limit (GEWE_AVATAR_CHANGE_LIMIT): an update takes a slot before its download,
-- counted with the committed changes under the account row's lock, so racing
-- updates on any instance sharing the database cannot pass the limit. The
-- change's commit deletes its slot in the same transaction; a failed update
-- releases it; one left by a killed process no longer counts after expires_at.
CREATE TABLE avatar_change_slots (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app_id      TEXT    NOT NULL REFERENCES accounts(app_id) ON DELETE CASCADE,
    reserved_at BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL
);
CREATE INDEX avatar_change_slots_app_id ON avatar_change_slots (app_id);
