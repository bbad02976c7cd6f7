-- Outbox rows from a JSON array of [key, meeting_id, parts, done, status, attempts, at];
-- a key already present is left alone (idempotent).
INSERT INTO outbox (key, meeting_id, parts, done, status, attempts, next_attempt_at, created_at, updated_at)
SELECT r.value ->> 0, r.value ->> 1, r.value -> 2, r.value ->> 3, r.value ->> 4, r.value ->> 5,
       r.value ->> 6, r.value ->> 6, r.value ->> 6
FROM json_each(?1) AS r WHERE true
ON CONFLICT (key) DO NOTHING
