-- At most $2 rows of dead_letters older than $1, oldest first.
DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters WHERE at < $1 ORDER BY at LIMIT $2)
