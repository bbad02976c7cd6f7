-- Lease pending effects due at ?3 (the engine's clock) to ?1 for ?2 µs of the
-- database's clock, at most ?4, oldest first: rows no one holds, rows whose
-- lease has run out, and rows ?1 already holds (a worker restarted under the
-- same identity takes its own leases back at once) but those it runs now (?5, a JSON array).
UPDATE outbox SET lease_owner = ?1, lease_until = CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER) + ?2
WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?3
                 AND (lease_owner IS NULL OR lease_owner = ?1 OR lease_until <= CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
                 AND id NOT IN (SELECT value FROM json_each(?5))
             ORDER BY next_attempt_at, id LIMIT ?4)
RETURNING id, key, instance, parts, done, status, attempts, next_attempt_at, last_error, created_at, updated_at
