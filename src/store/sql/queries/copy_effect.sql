-- An outbox row copied as it is (`spindown migrate`): its id, status, attempts and error kept, no lease.
INSERT INTO outbox (id, key, instance, parts, done, status, attempts, next_attempt_at, last_error, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
