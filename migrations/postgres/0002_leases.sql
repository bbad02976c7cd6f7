-- Workers sharing the database, and who reads which stream shard (the model:
-- the Kinesis Client Library's lease table). Instants are µs since the epoch
-- by the database server's clock (`clock_timestamp()`), never a worker's.

CREATE TABLE workers (
    id         TEXT COLLATE "C" PRIMARY KEY, -- the worker's identity (--worker-id, or random per process)
    host       TEXT NOT NULL,
    pid        BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL               -- its last heartbeat
);

-- One lease per shard: the owner reads it and writes its checkpoint, fenced
-- by (owner, epoch) in the records' transaction; after `expires_at` another
-- worker may take it over (epoch + 1), and the old owner's next commit fails.
CREATE TABLE shard_leases (
    stream_arn TEXT COLLATE "C" NOT NULL,
    shard_id   TEXT COLLATE "C" NOT NULL,
    owner      TEXT COLLATE "C",             -- NULL: free (released, or the shard is read to its end)
    epoch      BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (stream_arn, shard_id)
);

-- The database's clock in µs since the epoch (what every lease is judged by).
CREATE FUNCTION spindown_now_us() RETURNS BIGINT LANGUAGE SQL VOLATILE AS
$$ SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint $$;
