-- Dead letters with an id below $1, newest first, at most $2.
SELECT id, at, origin, kind, reason, event_id, raw FROM dead_letters WHERE id < $1 ORDER BY id DESC LIMIT $2
