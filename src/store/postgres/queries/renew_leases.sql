-- Extend the unexpired leases $2 holds on stream $1 by $3 µs from now.
UPDATE shard_leases SET expires_at = spindown_now_us() + $3
WHERE stream_arn = $1 AND owner = $2 AND expires_at > spindown_now_us()
RETURNING shard_id, epoch
