-- Outbox rows (of instance ?1 — its keys are "<id>/…" —, with status ?2, with id ?3), oldest first.
SELECT id, key, instance, parts, done, status, attempts, next_attempt_at, last_error, created_at, updated_at
FROM outbox
WHERE (?1 IS NULL OR (key >= ?1 || '/' AND key < ?1 || '0' AND instance = ?1))
  AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR id = ?3)
ORDER BY id
