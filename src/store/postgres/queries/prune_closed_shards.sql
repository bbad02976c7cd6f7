-- At most $2 checkpoints of shards read to their end before $1 (the stream
-- keeps a closed shard 24 h; long after, it is no longer listed).
DELETE FROM checkpoints WHERE (stream_arn, shard_id) IN
    (SELECT stream_arn, shard_id FROM checkpoints WHERE closed AND updated_at < $1 LIMIT $2)
