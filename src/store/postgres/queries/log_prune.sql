-- $2 more meetings that ended before $1 were deleted at $3.
INSERT INTO prune_log (id, through, meetings, last_at) VALUES (1, $1, $2, $3)
ON CONFLICT (id) DO UPDATE SET through = GREATEST(prune_log.through, excluded.through),
    meetings = prune_log.meetings + excluded.meetings, last_at = excluded.last_at
