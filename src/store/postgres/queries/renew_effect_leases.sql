-- Extend $1's leases on the effects $2 (ids) it is still running by $3 µs of
-- the database's clock; returns those it still held.
UPDATE outbox SET lease_until = spindown_now_us() + $3
WHERE lease_owner = $1 AND status = 'pending' AND id = ANY($2)
RETURNING id
