-- The URL the account's current avatar came from (NULL for the avatar it was
-- created with), and the history kept by the database itself: creating an
-- account and every move of its avatar pointer append a history row in the
-- same statement. No writer can forget it, and a change of avatar is one
-- statement (one round trip, no explicit transaction) when nothing else is
-- written with it.
ALTER TABLE accounts ADD COLUMN avatar_source_url TEXT;

CREATE FUNCTION append_avatar_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO avatar_history (app_id, avatar_id, source_url, changed_at)
    VALUES (NEW.app_id, NEW.avatar_id, NEW.avatar_source_url, NEW.updated_at);
    RETURN NULL;
END
$$;

CREATE TRIGGER avatar_history_on_create AFTER INSERT ON accounts
FOR EACH ROW EXECUTE FUNCTION append_avatar_history();

CREATE TRIGGER avatar_history_on_move AFTER UPDATE OF avatar_id ON accounts
FOR EACH ROW WHEN (NEW.avatar_id <> OLD.avatar_id) EXECUTE FUNCTION append_avatar_history();
