-- Shard leases (of stream ?1, or all); expired by the database's clock.
SELECT stream_arn, shard_id, owner, epoch, expires_at, expires_at <= CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER) AS expired
FROM shard_leases WHERE ?1 IS NULL OR stream_arn = ?1 ORDER BY stream_arn, shard_id
