-- How many rows of each kind retention would delete before ?1.
SELECT 'dead_letters', COUNT(*) FROM dead_letters WHERE at < ?1
UNION ALL SELECT 'sweep_log', COUNT(*) FROM sweep_log WHERE at < ?1
UNION ALL SELECT 'stream_gaps', COUNT(*) FROM stream_gaps WHERE at < ?1
UNION ALL SELECT 'workers', COUNT(*) FROM workers WHERE last_seen < ?1
UNION ALL SELECT 'closed_shards', COUNT(*) FROM checkpoints WHERE closed <> 0 AND updated_at < ?1
