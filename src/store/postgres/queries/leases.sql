-- Shard leases (of stream $1, or all); expired by the database's clock.
SELECT stream_arn, shard_id, owner, epoch, expires_at, expires_at <= spindown_now_us() AS expired
FROM shard_leases WHERE $1::text IS NULL OR stream_arn = $1 ORDER BY stream_arn, shard_id
