-- At most $2 rows of sweep_log older than $1, oldest first.
DELETE FROM sweep_log WHERE id IN (SELECT id FROM sweep_log WHERE at < $1 ORDER BY at LIMIT $2)
