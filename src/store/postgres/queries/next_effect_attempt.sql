-- When the soonest pending effect may be claimed: its next attempt, or, while
-- another executor's lease on it runs, the lease's end.
SELECT MIN(CASE WHEN lease_until IS NOT NULL THEN GREATEST(next_attempt_at, lease_until) ELSE next_attempt_at END)
FROM outbox WHERE status = 'pending'
