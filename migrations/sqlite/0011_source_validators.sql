-- The strong ETag each picture URL answered with, and the bytes (by SHA-256)
-- it was for: the same URL again is asked with If-None-Match, and a 304 reuses
-- the avatar of those bytes with nothing downloaded, hashed or decoded.
CREATE TABLE source_validators (
    url         TEXT   PRIMARY KEY,
    etag        TEXT   NOT NULL,
    source_hash TEXT   NOT NULL REFERENCES avatar_sources(source_hash),
    seen_at     BIGINT NOT NULL
);
