-- Take shard (?1 stream, ?2 shard) for ?3 for ?4 µs: if free, expired, or ?3's and live
-- (then the epoch is kept: a renewal). Returns nothing when another worker holds it.
INSERT INTO shard_leases (stream_arn, shard_id, owner, epoch, expires_at) VALUES (?1, ?2, ?3, 1, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER) + ?4)
ON CONFLICT (stream_arn, shard_id) DO UPDATE SET
    epoch = CASE WHEN shard_leases.owner = excluded.owner AND shard_leases.expires_at > CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)
                 THEN shard_leases.epoch ELSE shard_leases.epoch + 1 END,
    owner = excluded.owner,
    expires_at = excluded.expires_at
WHERE shard_leases.owner IS NULL OR shard_leases.owner = excluded.owner OR shard_leases.expires_at <= CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)
RETURNING owner, epoch
