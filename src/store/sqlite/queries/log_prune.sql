-- ?2 more meetings that ended before ?1 were deleted at ?3.
INSERT INTO prune_log (id, through, meetings, last_at) VALUES (1, ?1, ?2, ?3)
ON CONFLICT (id) DO UPDATE SET through = max(through, excluded.through), meetings = meetings + excluded.meetings,
    last_at = excluded.last_at
