-- The meetings of an array of ids, as one JSON document (committed state, no locks).
SELECT COALESCE(json_agg(doc), '[]')::text FROM meeting_docs WHERE id = ANY($1)
