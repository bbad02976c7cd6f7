-- Workers sharing a database, and who reads which stream shard. A single
-- worker on one SQLite file holds every lease; the same rules let several
-- workers on PostgreSQL share a stream. Instants are µs since the epoch, by
-- the database's clock (here: the machine's).

CREATE TABLE workers (
    id         TEXT PRIMARY KEY NOT NULL,   -- the worker's identity (--worker-id, or random per process)
    host       TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL             -- its last heartbeat
) WITHOUT ROWID;

-- One lease per shard: the owner reads it and writes its checkpoint, fenced
-- by (owner, epoch); after `expires_at` another worker may take it over.
CREATE TABLE shard_leases (
    stream_arn TEXT NOT NULL,
    shard_id   TEXT NOT NULL,
    owner      TEXT,                        -- NULL: free (released, or the shard is read to its end)
    epoch      INTEGER NOT NULL,            -- grows by one each time the lease is taken
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (stream_arn, shard_id)
) WITHOUT ROWID;
