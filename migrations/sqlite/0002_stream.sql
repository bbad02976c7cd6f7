-- The DynamoDB Streams reader's positions, one row per shard, written in the
-- same transaction as the records they cover.
CREATE TABLE checkpoints (
    stream_arn      TEXT NOT NULL,
    shard_id        TEXT NOT NULL,
    parent_shard_id TEXT,
    sequence_number TEXT,                   -- the last record applied (NULL: none yet)
    closed          INTEGER NOT NULL DEFAULT 0, -- read to its end
    records         INTEGER NOT NULL DEFAULT 0,
    last_event_at   INTEGER,                -- ApproximateCreationDateTime of the last record
    caught_up       INTEGER NOT NULL DEFAULT 0, -- the last poll found nothing new
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (stream_arn, shard_id)
) WITHOUT ROWID;

-- Records lost to the stream's 24-hour retention before they were read.
CREATE TABLE stream_gaps (
    id         INTEGER PRIMARY KEY,
    stream_arn TEXT NOT NULL,
    shard_id   TEXT NOT NULL,
    at         INTEGER NOT NULL,
    detail     TEXT NOT NULL
);
