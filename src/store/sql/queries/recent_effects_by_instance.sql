-- Outbox rows of instance $1 (with status $2, if given) and an id below $3, newest first, at most $4 (index outbox_instance).
SELECT id, key, instance, parts, done, status, attempts, next_attempt_at, last_error, created_at, updated_at
FROM outbox WHERE instance = $1 AND (CAST($2 AS TEXT) IS NULL OR status = $2) AND id < $3 ORDER BY id DESC LIMIT $4
