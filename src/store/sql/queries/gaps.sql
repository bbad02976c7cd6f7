SELECT stream_arn, shard_id, at, detail FROM stream_gaps ORDER BY id
