-- Search attribute $3 with values $1 for instances $2 (pairwise); present ones are kept.
INSERT INTO search (name, value, instance)
SELECT $3, v, m FROM UNNEST($1::text[], $2::text[]) AS t(v, m)
ON CONFLICT DO NOTHING
