-- Outbox rows (of meeting $1, with status $2) with an id below $3, newest first, at most $4.
SELECT id, key, meeting_id, parts, done, status, attempts, next_attempt_at, last_error, created_at, updated_at
FROM outbox
WHERE ($1::text IS NULL OR meeting_id = $1) AND ($2::text IS NULL OR status = $2) AND id < $3
ORDER BY id DESC LIMIT $4
