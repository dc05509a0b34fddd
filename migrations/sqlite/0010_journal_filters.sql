-- The journal's filters by appId and by route answered from an index, newest
-- first: with a million calls recorded, a filter that matches few of them no
-- longer reads the whole table.
CREATE INDEX journal_app ON journal(app_id, id);
CREATE INDEX journal_route ON journal(route, id);
