-- Free lease rows of shards that have no checkpoint any more.
DELETE FROM shard_leases WHERE owner IS NULL AND NOT EXISTS
    (SELECT 1 FROM checkpoints c WHERE c.stream_arn = shard_leases.stream_arn AND c.shard_id = shard_leases.shard_id)
