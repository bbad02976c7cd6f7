-- Dead letters, in the order given.
INSERT INTO dead_letters (at, origin, kind, reason, event_id, raw)
SELECT at, origin, kind, reason, event_id, raw
FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[])
    WITH ORDINALITY AS d(at, origin, kind, reason, event_id, raw, n)
ORDER BY n
