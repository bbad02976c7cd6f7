-- A page of instances in id order ($1 state, $2 reason, $3 after this id, $4 limit), as one JSON document.
SELECT COALESCE(json_agg(doc ORDER BY id), '[]')::text FROM (
    SELECT id, doc FROM instance_docs
    WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR reason = $2) AND id > COALESCE($3, '')
    ORDER BY id LIMIT $4
) page
