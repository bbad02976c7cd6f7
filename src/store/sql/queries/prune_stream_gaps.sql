-- At most $2 rows of stream_gaps older than $1, oldest first.
DELETE FROM stream_gaps WHERE id IN (SELECT id FROM stream_gaps WHERE at < $1 ORDER BY at LIMIT $2)
