-- Terminated instances that ended before $1 and whose outbox rows are all
-- done, oldest first, after ($2 ended at, $3 id), at most $4 (index instances_ended).
SELECT ended_at, id FROM instances m
WHERE ended_at < $1 AND (ended_at, id) > ($2, $3)
  AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.instance = m.id AND o.status <> 'done')
ORDER BY ended_at, id LIMIT $4
