-- At most $2 workers last seen before $1 (gone: each start under a new identity leaves one).
DELETE FROM workers WHERE id IN (SELECT id FROM workers WHERE last_seen < $1 ORDER BY last_seen LIMIT $2)
