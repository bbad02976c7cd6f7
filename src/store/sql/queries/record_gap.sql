INSERT INTO stream_gaps (stream_arn, shard_id, at, detail) VALUES ($1, $2, $3, $4)
