-- Meetings' first pending timers after ($1 due, $2 kind, $3 id) in fire order, due at or before $4, at most $5.
SELECT next_due, next_kind, id FROM instances
WHERE next_due IS NOT NULL AND (next_due, next_kind, id) > ($1, $2, $3) AND next_due <= $4
ORDER BY next_due, next_kind, id LIMIT $5
