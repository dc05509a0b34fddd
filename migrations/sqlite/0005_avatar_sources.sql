-- The picture bytes each avatar was rendered from, by SHA-256: a picture sent
-- again reuses its avatar without decoding, and keeps its id across encoder
-- changes.
CREATE TABLE avatar_sources (
    source_hash TEXT   PRIMARY KEY,
    avatar_id   TEXT   NOT NULL REFERENCES avatars(id),
    created_at  BIGINT NOT NULL
);
