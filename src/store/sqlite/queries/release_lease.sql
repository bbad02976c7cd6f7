-- Give up the lease (?1 stream, ?2 shard) held as (?3 owner, ?4 epoch).
UPDATE shard_leases SET owner = NULL, expires_at = CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)
WHERE stream_arn = ?1 AND shard_id = ?2 AND owner = ?3 AND epoch = ?4
