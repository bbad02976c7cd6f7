-- Dead letters after id $1, oldest first, at most $2.
SELECT id, at, origin, kind, reason, event_id, raw FROM dead_letters WHERE id > $1 ORDER BY id LIMIT $2
