-- Outbox rows with status $1 and an id below $2, newest first, at most $3 (index outbox_status).
SELECT id, key, instance, parts, done, status, attempts, next_attempt_at, last_error, created_at, updated_at
FROM outbox WHERE status = $1 AND id < $2 ORDER BY status DESC, id DESC LIMIT $3
