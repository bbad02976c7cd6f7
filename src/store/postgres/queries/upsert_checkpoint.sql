-- A shard's position; NULLs keep what is stored, the record count adds up.
INSERT INTO checkpoints (stream_arn, shard_id, parent_shard_id, sequence_number, closed, records,
                         last_event_at, caught_up, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (stream_arn, shard_id) DO UPDATE SET
    parent_shard_id = COALESCE(excluded.parent_shard_id, checkpoints.parent_shard_id),
    sequence_number = COALESCE(excluded.sequence_number, checkpoints.sequence_number),
    closed = checkpoints.closed OR excluded.closed, records = checkpoints.records + excluded.records,
    last_event_at = COALESCE(excluded.last_event_at, checkpoints.last_event_at),
    caught_up = excluded.caught_up, updated_at = excluded.updated_at
