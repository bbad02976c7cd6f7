SELECT stream_arn, shard_id, parent_shard_id, sequence_number, closed, records, last_event_at, caught_up, updated_at
FROM checkpoints WHERE CAST($1 AS TEXT) IS NULL OR stream_arn = $1 ORDER BY stream_arn, shard_id
