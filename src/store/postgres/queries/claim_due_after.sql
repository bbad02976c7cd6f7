-- due_after.sql inside a unit of work: the instances are locked until it ends,
-- and instances another worker holds are skipped (it is firing or changing them).
SELECT next_due, next_kind, id FROM instances
WHERE next_due IS NOT NULL AND (next_due, next_kind, id) > ($1, $2, $3) AND next_due <= $4
ORDER BY next_due, next_kind, id LIMIT $5
FOR UPDATE SKIP LOCKED
