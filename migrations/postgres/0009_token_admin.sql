-- The PostgreSQL twin of migrations/sqlite/0009_token_admin.sql.
ALTER TABLE tokens ADD COLUMN last_used_at BIGINT;
ALTER TABLE tokens ADD COLUMN revoked_at BIGINT;
