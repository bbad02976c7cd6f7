-- Outbox rows; the idempotency key makes a second insert of the same row a no-op.
INSERT INTO outbox (key, instance, parts, done, status, attempts, next_attempt_at, created_at, updated_at)
SELECT k, m, p, d, s, a, t, t, t
FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::bigint[], $7::bigint[])
    WITH ORDINALITY AS e(k, m, p, d, s, a, t, n)
ORDER BY n
ON CONFLICT (key) DO NOTHING
