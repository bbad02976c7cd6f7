-- The orphan sweep's log: instances it terminated, or found and only reported.
CREATE TABLE sweep_log (
    id          BIGSERIAL PRIMARY KEY,
    at          BIGINT NOT NULL,             -- µs since the epoch
    instance_id TEXT NOT NULL,
    meeting_id  TEXT COLLATE "C" NOT NULL,   -- the instance's tag value
    launched_at BIGINT,
    action      TEXT NOT NULL,               -- terminated, would_terminate, reported, refused, failed
    detail      TEXT NOT NULL
);
CREATE INDEX sweep_log_at ON sweep_log (at);
