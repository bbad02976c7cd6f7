-- An attempt's outcome ($1 id), fenced by the lease ($8 owner).
UPDATE outbox SET done = $2, status = $3, attempts = $4, next_attempt_at = $5, last_error = $6,
                  updated_at = $7, lease_owner = NULL, lease_until = NULL
WHERE id = $1 AND lease_owner = $8
