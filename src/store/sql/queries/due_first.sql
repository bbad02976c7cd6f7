-- Meetings' first pending timers due at or before $1, in fire order, at most $2.
SELECT next_due, next_kind, id FROM instances
WHERE next_due IS NOT NULL AND next_due <= $1
ORDER BY next_due, next_kind, id LIMIT $2
