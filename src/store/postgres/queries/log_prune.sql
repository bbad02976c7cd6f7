-- $2 more instances that ended before $1 were deleted at $3.
INSERT INTO prune_log (id, through, instances, last_at) VALUES (1, $1, $2, $3)
ON CONFLICT (id) DO UPDATE SET through = GREATEST(prune_log.through, excluded.through),
    instances = prune_log.instances + excluded.instances, last_at = excluded.last_at
