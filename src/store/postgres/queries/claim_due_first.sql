-- due_first.sql inside a unit of work (see claim_due_after.sql).
SELECT next_due, next_kind, id FROM instances
WHERE next_due IS NOT NULL AND next_due <= $1
ORDER BY next_due, next_kind, id LIMIT $2
FOR UPDATE SKIP LOCKED
