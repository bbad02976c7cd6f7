-- Give up the lease ($1 stream, $2 shard) held as ($3 owner, $4 epoch).
UPDATE shard_leases SET owner = NULL, expires_at = spindown_now_us()
WHERE stream_arn = $1 AND shard_id = $2 AND owner = $3 AND epoch = $4
