-- Lease pending effects due at $3 (the engine's clock) to $1 for $2 µs of the
-- database's clock, at most $4, oldest first: rows no one holds, rows whose
-- lease has run out (by the database's clock, the same for every worker), and
-- rows $1 already holds (a worker restarted under the same identity takes its
-- own leases back at once) but those it runs now ($5). Rows another worker is claiming right now are
-- skipped, not waited for.
UPDATE outbox SET lease_owner = $1, lease_until = spindown_now_us() + $2
WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $3
                 AND (lease_owner IS NULL OR lease_owner = $1 OR lease_until <= spindown_now_us())
                 AND id <> ALL($5::bigint[])
             ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)
RETURNING id, key, instance, parts, done, status, attempts, next_attempt_at, last_error, created_at, updated_at
