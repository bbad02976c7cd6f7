-- Inside a unit of work: the lease ($1 stream, $2 shard) is still ($3 owner, $4 epoch).
-- Zero rows updated: it was lost, and the unit of work must not commit.
UPDATE shard_leases SET epoch = epoch WHERE stream_arn = $1 AND shard_id = $2 AND owner = $3 AND epoch = $4
