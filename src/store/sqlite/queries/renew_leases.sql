-- Extend the unexpired leases ?2 holds on stream ?1 by ?3 µs from now.
UPDATE shard_leases SET expires_at = CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER) + ?3
WHERE stream_arn = ?1 AND owner = ?2 AND expires_at > CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)
RETURNING shard_id, epoch
