-- Outbox rows (of instance $1, with status $2, with id $3), oldest first.
SELECT id, key, instance, parts, done, status, attempts, next_attempt_at, last_error, created_at, updated_at
FROM outbox
WHERE ($1::text IS NULL OR instance = $1) AND ($2::text IS NULL OR status = $2) AND ($3::bigint IS NULL OR id = $3)
ORDER BY id
