-- `gewe token list` shows when a token was last used (to the minute);
-- `gewe token revoke` marks it revoked: it no longer authenticates, and the
-- accounts it owns stay as they were.
ALTER TABLE tokens ADD COLUMN last_used_at INTEGER;
ALTER TABLE tokens ADD COLUMN revoked_at INTEGER;
