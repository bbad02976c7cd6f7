-- Outbox rows with an id below $1, newest first, at most $2 (the primary key, backwards).
SELECT id, key, instance, parts, done, status, attempts, next_attempt_at, last_error, created_at, updated_at
FROM outbox WHERE id < $1 ORDER BY id DESC LIMIT $2
