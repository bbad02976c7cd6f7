-- The orphan sweep's log: instances it terminated, or found and only reported.
CREATE TABLE sweep_log (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,            -- µs since the epoch
    instance_id TEXT NOT NULL,
    meeting_id  TEXT NOT NULL,               -- the instance's tag value
    launched_at INTEGER,
    action      TEXT NOT NULL,               -- terminated, would_terminate, reported, refused, failed
    detail      TEXT NOT NULL
);
CREATE INDEX sweep_log_at ON sweep_log (at);
