-- Extend ?1's leases on the effects ?2 (a JSON array of ids) it is still
-- running by ?3 µs of the database's clock; returns those it still held.
UPDATE outbox SET lease_until = CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER) + ?3
WHERE lease_owner = ?1 AND status = 'pending' AND id IN (SELECT value FROM json_each(?2))
RETURNING id
