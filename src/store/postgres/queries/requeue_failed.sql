-- Failed effects (all, or id $2) due again at $1, their attempts reset.
UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $1, updated_at = $1
WHERE status = 'failed' AND ($2::bigint IS NULL OR id = $2)
