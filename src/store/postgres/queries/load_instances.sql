-- The instances of an array of ids, as one JSON document (committed state, no locks).
-- A join on the unnested ids, not `id = ANY($1)`: a generic plan for ANY over
-- a table whose statistics are not yet gathered compares every row with
-- every id (seconds per call on a young database); the join is linear either way.
SELECT COALESCE(json_agg(d.doc), '[]')::text FROM unnest($1::text[]) AS k(id) JOIN instance_docs d ON d.id = k.id
